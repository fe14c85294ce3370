using Backprop.Autograd;

namespace Backprop.Tests;

internal static class TestUtil
{
    /// <summary>A command-line failure as the CLI promises it: exit code 2 and exactly one line "error: ..." naming the problem.</summary>
    public static void OneLineError(int code, string err, string message)
    {
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", err);
        Assert.Contains(message, err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    public static void Close(IReadOnlyList<double> expected, Tensor actual, double tol = 1e-5)
    {
        var a = actual.ToDoubleArray();
        Assert.True(expected.Count == a.Length, $"length {a.Length} != expected {expected.Count}");
        for (int i = 0; i < a.Length; i++)
            if (!(Math.Abs(expected[i] - a[i]) <= tol * Math.Max(1, Math.Abs(expected[i])))) // the message (the whole tensor) only on failure
                Assert.Fail($"element {i}: expected {expected[i]}, got {a[i]} (tensor {actual})");
    }

    public static void Close(float[] expected, Tensor actual, double tol = 1e-5) =>
        Close(expected.Select(v => (double)v).ToArray(), actual, tol);

    public static void Close(double expected, double actual, double tol = 1e-5) =>
        Assert.True(Math.Abs(expected - actual) <= tol * Math.Max(1, Math.Abs(expected)), $"expected {expected}, got {actual}");

    public static Tensor R(Generator g, params int[] shape) => Tensor.Randn(shape, g, DType.Float64);

    /// <summary>Every value's bits (float64 folded to 32 bits), for tests that compare two computations bit for bit.</summary>
    public static int[] Bits(Tensor t) => t.DType == DType.Float32
        ? t.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray()
        : t.ToDoubleArray().Select(v => (int)(BitConverter.DoubleToInt64Bits(v) ^ (BitConverter.DoubleToInt64Bits(v) >> 32))).ToArray();

    /// <summary>Each tensor of <paramref name="actual"/> has the bits of the one at the same place in <paramref name="expected"/>.</summary>
    public static void AssertSameBits(Tensor[] expected, Tensor[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Bits(expected[i]).SequenceEqual(Bits(actual[i])), $"tensor {i} of {expected.Length} differs");
    }

    /// <summary>Random values bounded away from zero (for Log, Div, Sqrt, Pow).</summary>
    public static Tensor Pos(Generator g, params int[] shape) => Tensor.Uniform(shape, 0.5, 2.0, g, DType.Float64);

    /// <summary>
    /// An op's gradient against finite differences, its second derivative (the backward recorded with
    /// createGraph, differentiated again) against finite differences of the gradient, and the fused
    /// backward against the recorded one.
    /// </summary>
    public static void Check(Func<Tensor[], Tensor> f, params Tensor[] inputs)
    {
        var report = GradCheck.Run(f, inputs);
        Assert.True(report.Passed, "gradient check failed:\n" + report);
        var second = GradGradCheck.Run(f, inputs);
        Assert.True(second.Passed, "second-derivative check failed:\n" + second);
        FusedAndRecordedBackwardAgree(f, inputs);
    }

    /// <summary>The gradients of ⟨r, f(x)⟩ from the fused backward kernels and from the recorded (createGraph) formulas.</summary>
    public static void FusedAndRecordedBackwardAgree(Func<Tensor[], Tensor> f, Tensor[] inputs, double tol = 1e-9)
    {
        var xs = inputs.Select(t => t.DType.IsFloatingPoint() ? t.Detach().To(DType.Float64).Clone().Detach().RequiresGrad_() : t).ToArray();
        var floats = xs.Where(x => x.DType.IsFloatingPoint()).ToArray();
        Tensor?[] Grads(bool createGraph)
        {
            var y = f(xs);
            if (!y.RequiresGrad) return new Tensor?[floats.Length];
            var r = Tensor.Randn([.. y.Shape.AsSpan()], new Generator(99), y.DType);
            return Gradients.Compute([y], floats, [r], createGraph: createGraph, allowUnused: true);
        }
        var fused = Grads(false);
        var recorded = Grads(true);
        for (int i = 0; i < floats.Length; i++)
        {
            Assert.Equal(fused[i] == null, recorded[i] == null);
            if (fused[i] == null) continue;
            Close(fused[i]!.ToDoubleArray(), recorded[i]!, tol);
        }
    }
}
