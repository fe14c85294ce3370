using Backprop.Backends;
using Backprop.NN;

namespace Backprop.Tests;

/// <summary>
/// The fused recurrent kernels (IBackend.RecurrentForward / RecurrentBackward) on the CPU backend against the
/// reference backend's scalar definitions: outputs, final states and every gradient, float32 and float64,
/// at hidden sizes that exercise the SIMD bodies and tails, and at a batch large enough that the LSTM and GRU steps split across two threads.
/// </summary>
public class RecurrentOracleTests
{
    public static IEnumerable<object[]> Cases =>
        from cell in new[] { "rnn", "lstm", "gru" }
        from c in new[] { (D: DType.Float32, B: 3, T: 4, I: 5, H: 37), (D: DType.Float64, B: 3, T: 4, I: 5, H: 37), (D: DType.Float32, B: 66, T: 2, I: 3, H: 128) }
        select new object[] { cell, c.D, c.B, c.T, c.I, c.H };

    [Theory]
    [MemberData(nameof(Cases))]
    public void CpuAgreesWithReference(string cell, DType dtype, int b, int t, int i, int h)
    {
        int g = (cell == "lstm" ? 4 : cell == "gru" ? 3 : 1) * h;
        var gen = new Generator(5);
        double scale = 1 / Math.Sqrt(h);
        Tensor R(params int[] s) => Tensor.Randn(s, gen, dtype) * scale;
        var inputs = new[] { Tensor.Randn([b, t, i], gen, dtype), R(b, h), R(b, h), R(g, i), R(g, h), R(g), R(g) };
        using var threads = Threads.Use(2);
        Agree(a => cell switch
        {
            "lstm" => Cat(Functional.Lstm(a[0], a[1], a[2], a[3], a[4], a[5], a[6]) is var (y, hh, cc) ? [y, hh, cc] : []),
            "gru" => Cat(Functional.Gru(a[0], a[1], a[3], a[4], a[5], a[6]) is var (y, hh) ? [y, hh] : []),
            _ => Cat(Functional.Rnn(a[0], a[1], a[3], a[4], a[5], a[6]) is var (y, hh) ? [y, hh] : []),
        }, dtype == DType.Float32 ? 2e-5 : 1e-11, inputs, skipUnused: cell != "lstm" ? 2 : -1);
    }

    /// <summary>One assertion per tensor (the worst element), so large tensors cost linear time.</summary>
    private static void Close(Tensor expected, Tensor actual, double tol, string what)
    {
        var e = expected.ToDoubleArray();
        var a = actual.ToDoubleArray();
        Assert.Equal(e.Length, a.Length);
        int worst = -1;
        double excess = 0;
        for (int i = 0; i < e.Length; i++)
        {
            double d = Math.Abs(e[i] - a[i]) - tol * Math.Max(1, Math.Abs(e[i]));
            if (!(d <= excess)) (worst, excess) = (i, double.IsNaN(d) ? double.PositiveInfinity : d);
        }
        Assert.True(worst < 0, worst < 0 ? "" : $"{what}: element {worst}: reference {e[worst]}, cpu {a[worst]}");
    }

    private static Tensor Cat(Tensor[] ts) => Tensor.Concat(ts.Select(x => x.Reshape(-1)).ToArray(), 0);

    private static void Agree(Func<Tensor[], Tensor> f, double tol, Tensor[] inputs, int skipUnused)
    {
        var cpu = inputs.Select(x => x.Detach().RequiresGrad_()).ToArray();
        var reference = inputs.Select(x => x.To(Device.Reference).RequiresGrad_()).ToArray();
        var yc = f(cpu);
        var yr = f(reference);
        Assert.Equal(Device.Reference, yr.Device);
        Close(yr, yc, tol, "output");
        var proj = Tensor.Randn([.. yc.Shape.AsSpan()], new Generator(7), yc.DType);
        (yc * proj).Sum().Backward();
        (yr * proj.To(Device.Reference)).Sum().Backward();
        for (int k = 0; k < cpu.Length; k++)
        {
            if (k == skipUnused) continue; // c0 for the cells without one
            Assert.NotNull(cpu[k].Grad);
            Close(reference[k].Grad!, cpu[k].Grad!, tol, $"gradient of input {k}");
        }
    }
}
