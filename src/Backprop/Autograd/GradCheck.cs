using System.Globalization;
using System.Text;

namespace Backprop.Autograd;

/// <summary>How autodiff and finite differences compare for one input of a gradient check.</summary>
/// <param name="Index">Position of the input in the argument list.</param>
/// <param name="Shape">Shape of the input.</param>
/// <param name="MaxAbsError">Largest |analytic − numeric| over the input's elements.</param>
/// <param name="MaxRelError">Largest |analytic − numeric| / max(|analytic|, |numeric|, 1e-8).</param>
/// <param name="WorstElement">Flat index of the element with the largest violation of the tolerance.</param>
/// <param name="Analytic">Autodiff gradient at that element.</param>
/// <param name="Numeric">Central-difference gradient at that element.</param>
/// <param name="Passed">Whether every element satisfied |a − n| ≤ atol + rtol·|n|.</param>
public sealed record GradCheckInput(int Index, Shape Shape, double MaxAbsError, double MaxRelError, int WorstElement,
    double Analytic, double Numeric, bool Passed);

/// <summary>The result of <see cref="GradCheck.Run"/>: one entry per floating-point input.</summary>
public sealed class GradCheckReport
{
    internal GradCheckReport(IReadOnlyList<GradCheckInput> inputs, int forwardPasses)
    {
        Inputs = inputs;
        ForwardPasses = forwardPasses;
    }

    /// <summary>Per-input comparison.</summary>
    public IReadOnlyList<GradCheckInput> Inputs { get; }

    /// <summary>How many forward evaluations the finite differences needed (2 per element).</summary>
    public int ForwardPasses { get; }

    /// <summary>True when every input passed.</summary>
    public bool Passed => Inputs.All(i => i.Passed);

    /// <summary>One line per input: shape, worst absolute and relative error.</summary>
    public override string ToString()
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        foreach (var i in Inputs)
            sb.AppendLine(string.Create(ci,
                $"input {i.Index} {i.Shape}: max abs error {i.MaxAbsError:E2}, max rel error {i.MaxRelError:E2}, " +
                $"worst element {i.WorstElement} (autodiff {i.Analytic:G6}, numeric {i.Numeric:G6}) {(i.Passed ? "ok" : "FAILED")}"));
        return sb.ToString().TrimEnd();
    }
}

/// <summary>
/// Numerical gradient checking: compares the gradients backprop computes with central finite
/// differences (f(x + ε) − f(x − ε)) / 2ε, all in float64.
/// </summary>
public static class GradCheck
{
    /// <summary>
    /// Checks the gradient of <paramref name="f"/> with respect to every floating-point input.
    /// Inputs are copied to float64 leaves; a non-scalar output is reduced to a scalar with a fixed
    /// random projection Σ r·f(x), which checks the full vector-Jacobian product.
    /// </summary>
    /// <param name="f">The function; it must be deterministic (seed any randomness inside it).</param>
    /// <param name="inputs">Inputs; int64 tensors are passed through unchanged and not checked.</param>
    /// <param name="eps">Finite-difference step.</param>
    /// <param name="atol">Absolute tolerance.</param>
    /// <param name="rtol">Relative tolerance.</param>
    /// <param name="seed">Seed of the projection.</param>
    public static GradCheckReport Run(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-6, double atol = 1e-5,
        double rtol = 1e-3, ulong seed = 1234)
    {
        var xs = inputs.Select(t => t.DType.IsFloatingPoint() ? t.Detach().To(DType.Float64).Clone().Detach().RequiresGrad_() : t).ToArray();
        var y0 = f(xs);
        if (y0.DType != DType.Float64)
            throw new InvalidOperationException($"GradCheck: the function returned {y0.DType.Name()}; with float64 inputs it should compute in float64.");
        var r = Tensor.Randn([.. y0._shape], new Generator(seed), DType.Float64);
        var loss = (y0 * r).Sum();
        if (loss.RequiresGrad) loss.Backward(); // else f does not depend on its inputs: every gradient is 0

        double Objective()
        {
            using (Tensor.NoGrad()) return (f(xs) * r).Sum().ItemDouble();
        }

        var results = new List<GradCheckInput>();
        int passes = 0;
        for (int i = 0; i < xs.Length; i++)
        {
            var x = xs[i];
            if (!x.DType.IsFloatingPoint()) continue;
            var analytic = x.Grad?.ToDoubleArray() ?? new double[x.NumElements];
            double maxAbs = 0, maxRel = 0, worstViolation = double.NegativeInfinity, worstA = 0, worstN = 0;
            int worst = -1;
            bool ok = true;
            for (int j = 0; j < x.NumElements; j++)
            {
                double orig = x.GetFlat(j);
                x.SetFlat(j, orig + eps);
                double fp = Objective();
                x.SetFlat(j, orig - eps);
                double fm = Objective();
                x.SetFlat(j, orig);
                passes += 2;
                double numeric = (fp - fm) / (2 * eps);
                double a = analytic[j];
                double abs = Math.Abs(a - numeric);
                if (double.IsNaN(abs)) abs = double.PositiveInfinity;
                double rel = abs / Math.Max(Math.Max(Math.Abs(a), Math.Abs(numeric)), 1e-8);
                maxAbs = Math.Max(maxAbs, abs);
                maxRel = Math.Max(maxRel, rel);
                double violation = abs - (atol + rtol * Math.Abs(numeric));
                if (violation > 0) ok = false;
                if (violation > worstViolation) { worstViolation = violation; worst = j; worstA = a; worstN = numeric; }
            }
            results.Add(new GradCheckInput(i, x.Shape, maxAbs, maxRel, worst, worstA, worstN, ok));
        }
        return new GradCheckReport(results, passes);
    }

    /// <summary>Runs <see cref="Run"/> and throws with the report if any input fails.</summary>
    public static GradCheckReport Assert(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3)
    {
        var report = Run(f, inputs, eps, atol, rtol);
        if (!report.Passed) throw new InvalidOperationException("GradCheck failed:\n" + report);
        return report;
    }
}

/// <summary>
/// Second-derivative checking: the gradient that backprop computes with <c>createGraph</c> is itself
/// differentiated by backprop and compared with central finite differences of that gradient, all in
/// float64. This checks every op's backward formula as a differentiable function (a Hessian-vector
/// product for each random projection).
/// </summary>
public static class GradGradCheck
{
    /// <summary>
    /// Checks the derivative of g(x) = ∂⟨r, f(x)⟩/∂x (for a fixed random r of f's output shape) with
    /// respect to every floating-point input, by <see cref="GradCheck.Run"/> on g.
    /// </summary>
    /// <param name="f">The function; it must be deterministic.</param>
    /// <param name="inputs">Inputs; int64 tensors are passed through unchanged and not checked.</param>
    /// <param name="eps">Finite-difference step.</param>
    /// <param name="atol">Absolute tolerance.</param>
    /// <param name="rtol">Relative tolerance.</param>
    /// <param name="seed">Seed of the projections.</param>
    public static GradCheckReport Run(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-6, double atol = 1e-5,
        double rtol = 1e-3, ulong seed = 4321) =>
        GradCheck.Run(xs => Gradient(f, xs, seed), inputs, eps, atol, rtol, seed + 1);

    /// <summary>Runs <see cref="Run"/> and throws with the report if any input fails.</summary>
    public static GradCheckReport Assert(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3)
    {
        var report = Run(f, inputs, eps, atol, rtol);
        if (!report.Passed) throw new InvalidOperationException("GradGradCheck failed:\n" + report);
        return report;
    }

    /// <summary>All input gradients of ⟨r, f(xs)⟩, flattened and joined, built with createGraph so that they can be differentiated.</summary>
    private static Tensor Gradient(Func<Tensor[], Tensor> f, Tensor[] xs, ulong seed)
    {
        using var grad = Tensor.EnableGrad(); // GradCheck evaluates under NoGrad; the gradient needs a graph
        var floats = xs.Where(x => x.DType.IsFloatingPoint()).ToArray();
        var y = f(xs);
        var r = Tensor.Randn([.. y._shape], new Generator(seed), y.DType);
        if (!y.RequiresGrad) return Tensor.Zeros([floats.Sum(x => x.NumElements)], DType.Float64);
        var grads = Gradients.Compute([y], floats, [r], createGraph: true, allowUnused: true);
        var parts = new Tensor[floats.Length];
        for (int i = 0; i < floats.Length; i++)
            parts[i] = (grads[i] ?? Tensor.ZerosLike(floats[i])).Reshape(-1);
        return parts.Length == 1 ? parts[0] : Tensor.Concat(parts);
    }
}
