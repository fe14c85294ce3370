using Backprop.Autograd;
using Backprop.NN;

namespace Backprop.Cli.Explain;

/// <summary>
/// For a small network, the finite-difference slope of every parameter (two forward passes each)
/// agrees with backprop (one forward and one backward pass for all of them).
/// </summary>
public sealed class NumericalVsBackpropExample : WorkedExample
{
    /// <inheritdoc/>
    public override string Name => "numerical-vs-backprop";

    /// <inheritdoc/>
    public override string Summary => "finite-difference slopes of every parameter of a 2-3-2 network agree with backprop; count the forward passes";

    /// <summary>Numbers the example computes.</summary>
    public sealed record Result(int Parameters, int NumericalForwardPasses, int BackpropForwardPasses, int BackpropBackwardPasses,
        double MaxAbsDifference, double MaxRelDifference, IReadOnlyList<(string Name, double Numerical, double Backprop)> Slopes);

    /// <summary>Computes the example.</summary>
    public Result Compute()
    {
        var g = new Generator(7);
        var model = new Sequential(new Linear(2, 3, generator: g, dtype: DType.Float64), new Tanh(), new Linear(3, 2, generator: g, dtype: DType.Float64));
        var x = Tensor.Randn([4, 2], g, DType.Float64);
        var y = Tensor.FromArray(new long[] { 0, 1, 1, 0 });
        var named = model.NamedParameters().ToList();
        var ps = named.Select(p => (Tensor)p.Param).ToArray();

        // GradCheck swaps in float64 copies of the parameters; the function feeds them through the same layers.
        Tensor LossOf(Tensor[] t) => Loss.CrossEntropy(Functional.Linear(Functional.Linear(x, t[0], t[1]).Tanh(), t[2], t[3]), y);
        var report = GradCheck.Run(LossOf, ps, eps: 1e-6);

        model.ZeroGrad();
        var loss = Loss.CrossEntropy(model.Forward(x), y);
        loss.Backward();
        var slopes = new List<(string, double, double)>();
        double maxAbs = 0, maxRel = 0;
        // recompute the numerical slopes for display (GradCheck reports the worst case per input)
        for (int i = 0; i < named.Count; i++)
        {
            var p = named[i].Param;
            var data = p.Detach();
            var grad = p.Grad!.ToDoubleArray();
            for (int j = 0; j < p.NumElements; j++)
            {
                var idx = Unflatten(p.Shape.ToArray(), j);
                double orig = data.GetDouble(idx);
                double lp, lm;
                using (Tensor.NoGrad())
                {
                    data.SetElement(idx, orig + 1e-6);
                    lp = Loss.CrossEntropy(model.Forward(x), y).ItemDouble();
                    data.SetElement(idx, orig - 1e-6);
                    lm = Loss.CrossEntropy(model.Forward(x), y).ItemDouble();
                    data.SetElement(idx, orig);
                }
                double numerical = (lp - lm) / 2e-6;
                string name = $"{named[i].Name}[{string.Join(",", idx)}]";
                slopes.Add((name, numerical, grad[j]));
                double abs = Math.Abs(numerical - grad[j]);
                maxAbs = Math.Max(maxAbs, abs);
                maxRel = Math.Max(maxRel, abs / Math.Max(Math.Max(Math.Abs(numerical), Math.Abs(grad[j])), 1e-8));
            }
        }
        if (!report.Passed) throw new InvalidOperationException("numerical-vs-backprop: gradient check failed:\n" + report);
        int count = (int)model.NumParameters();
        return new Result(count, report.ForwardPasses, 1, 1, maxAbs, maxRel, slopes);
    }

    private static int[] Unflatten(int[] shape, int flat)
    {
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = flat % shape[d]; flat /= shape[d]; }
        return idx;
    }

    /// <inheritdoc/>
    public override void Run(TextWriter o)
    {
        var r = Compute();
        o.WriteLine("Numerical slope versus backprop for a 2-3-2 tanh network (cross-entropy on 4 samples)");
        o.WriteLine();
        o.WriteLine("  parameter              numerical (L(p+e)-L(p-e))/2e     backprop");
        foreach (var (name, num, bp) in r.Slopes)
            o.WriteLine($"  {name,-22} {F(num, 8),18}            {F(bp, 8),12}");
        o.WriteLine();
        o.WriteLine($"  largest difference: {r.MaxAbsDifference:E2} absolute, {r.MaxRelDifference:E2} relative");
        o.WriteLine($"  cost: numerical slopes needed {r.NumericalForwardPasses} forward passes ({r.Parameters} parameters x 2);");
        o.WriteLine($"        backprop needed {r.BackpropForwardPasses} forward and {r.BackpropBackwardPasses} backward pass for all {r.Parameters}.");
        o.WriteLine("  A network with a million parameters would need two million forward passes for one numerical gradient.");
    }
}
