using System.Runtime.CompilerServices;
using Backprop.Autograd;

namespace Backprop.Cli.Explain;

/// <summary>
/// The backward pass is itself a network: for the two-tanh example, dL/dw1 computed with
/// createGraph is a graph of ordinary ops (multiplications, the tanh derivative 1 − h², ...), drawn
/// here node by node; backpropagating through that graph gives the second derivative d²L/dw1²,
/// which is checked against finite differences of the gradient.
/// </summary>
public sealed class BackwardNetworkExample : WorkedExample
{
    /// <inheritdoc/>
    public override string Name => "backward-network";

    /// <inheritdoc/>
    public override string Summary => "the two-tanh backward pass drawn as its own graph of ops, and d2L/dw1^2 by backprop through it";

    /// <summary>Numbers the example computes.</summary>
    /// <param name="DLdW1">dL/dw1 from the recorded backward pass.</param>
    /// <param name="D2LdW1">d²L/dw1² by backprop through the backward graph.</param>
    /// <param name="FiniteDifference">(dL/dw1(w1 + ε) − dL/dw1(w1 − ε)) / 2ε.</param>
    /// <param name="ClosedForm">d²L/dw1² written out by hand.</param>
    /// <param name="Ops">Ops in the backward graph of dL/dw1.</param>
    /// <param name="Graph">The backward graph, one line per op.</param>
    public sealed record Result(double DLdW1, double D2LdW1, double FiniteDifference, double ClosedForm, int Ops, IReadOnlyList<string> Graph);

    /// <summary>Computes the example.</summary>
    public Result Compute(double x = 0.5, double y = 0.8, double w1 = 0.6, double w2 = -0.4, double eps = 1e-5)
    {
        var names = new Dictionary<Tensor, string>(ReferenceEqualityComparer.Instance);
        var forward = new Dictionary<Node, string>(ReferenceEqualityComparer.Instance);
        Tensor Gradient(double w1Value, bool createGraph, out Tensor tw1)
        {
            tw1 = Tensor.Scalar(w1Value, DType.Float64).RequiresGrad_();
            var tw2 = Tensor.Scalar(w2, DType.Float64).RequiresGrad_();
            var a1 = tw1 * x;
            var h = a1.Tanh();
            var a2 = tw2 * h;
            var o = a2.Tanh();
            var diff = y - o;
            var loss = 0.5 * diff.Pow(2);
            if (createGraph)
            {
                names[tw1] = "w1";
                names[tw2] = "w2";
                forward[a1.GradFn!] = "w1*x";
                forward[h.GradFn!] = "h = tanh(w1*x)";
                forward[a2.GradFn!] = "w2*h";
                forward[o.GradFn!] = "o = tanh(w2*h)";
                forward[diff.GradFn!] = "y - o";
            }
            return Gradients.Compute(loss, [tw1], createGraph)[0];
        }

        var g1 = Gradient(w1, createGraph: true, out var w1t);
        var lines = new List<string>();
        int ops = Draw(g1, names, forward, lines);
        double d2 = Gradients.Compute(g1, w1t)[0].ItemDouble();
        double fd = (Gradient(w1 + eps, false, out _).ItemDouble() - Gradient(w1 - eps, false, out _).ItemDouble()) / (2 * eps);

        // by hand: with h' = dh/dw1 = (1 − h²)x and o' = do/dw1 = (1 − o²)·w2·h',
        // dL/dw1 = −(y − o)·o'  and  d²L/dw1² = o'² − (y − o)·w2·x·(−2o·o'(1 − h²) − 2(1 − o²)·h·h')
        double hv = Math.Tanh(w1 * x), ov = Math.Tanh(w2 * hv);
        double hp = (1 - hv * hv) * x, op = (1 - ov * ov) * w2 * hp;
        double closed = op * op - (y - ov) * w2 * x * (-2 * ov * op * (1 - hv * hv) - 2 * (1 - ov * ov) * hv * hp);
        return new Result(g1.ItemDouble(), d2, fd, closed, ops, lines);
    }

    /// <summary>Writes the graph that produced <paramref name="t"/>, inputs indented below each op; returns the number of ops.</summary>
    private static int Draw(Tensor t, Dictionary<Tensor, string> names, Dictionary<Node, string> forward, List<string> lines)
    {
        var ids = new Dictionary<Node, int>(ReferenceEqualityComparer.Instance);
        void Walk(Tensor u, string indent, string edge)
        {
            if (u.GradFn is not Node n)
            {
                string what = names.TryGetValue(u, out var nm) ? nm
                    : u.NumElements == 1 ? $"constant {F(u.ItemDouble(), 4)}" : $"constant {u.Shape}";
                lines.Add($"{indent}{edge}{what}");
                return;
            }
            if (ids.TryGetValue(n, out int seen))
            {
                lines.Add($"{indent}{edge}[{seen}] {n.Name} (shared, see above)");
                return;
            }
            int id = ids.Count + 1;
            ids[n] = id;
            lines.Add($"{indent}{edge}[{id}] {n.Name} = {F(u.ItemDouble(), 4)}" + (forward.TryGetValue(n, out var fw) ? $"   <- forward pass: {fw}" : ""));
            var inputs = n.Inputs;
            string childIndent = indent + (edge.Length == 0 ? "" : edge.StartsWith('`') ? "    " : "|   ");
            for (int i = 0; i < inputs.Count; i++) Walk(inputs[i], childIndent, i == inputs.Count - 1 ? "`-- " : "|-- ");
        }
        Walk(t, "", "");
        return ids.Count;
    }

    /// <inheritdoc/>
    public override void Run(TextWriter o)
    {
        var r = Compute();
        o.WriteLine("The backward pass is a network too: h = tanh(w1*x), o = tanh(w2*h), L = 1/2 (y - o)^2");
        o.WriteLine("with x = 0.50, y = 0.80, w1 = 0.60, w2 = -0.40 (the numbers of `backprop explain two-tanh`).");
        o.WriteLine();
        o.WriteLine($"  Computing dL/dw1 with createGraph records every step of the backward pass as an op.");
        o.WriteLine($"  dL/dw1 = {F(r.DLdW1, 6)} is the output of this graph of {r.Ops} ops (each with its value;");
        o.WriteLine("  the inputs of an op are listed below it; w1 and w2 are the weights, the rest constants):");
        o.WriteLine();
        foreach (var line in r.Graph) o.WriteLine("    " + line);
        o.WriteLine();
        o.WriteLine("  Its ops are the chain-rule factors: dL/do = 1/2 * 2(y - o) negated, tanh's derivatives 1 - o^2 and");
        o.WriteLine("  1 - h^2 as Sub/Mul of the saved outputs, then w2 and x. The saved h and o are forward-pass ops, so");
        o.WriteLine("  the gradient still depends on w1 through them: that dependence is what the second derivative follows.");
        o.WriteLine();
        o.WriteLine("  Backpropagating through this graph gives the second derivative:");
        o.WriteLine($"    d2L/dw1^2 by backprop through the backward network = {F(r.D2LdW1, 8)}");
        o.WriteLine($"    finite differences of dL/dw1 (eps = 1e-5)            = {F(r.FiniteDifference, 8)}");
        o.WriteLine($"    written out by hand                                  = {F(r.ClosedForm, 8)}");
    }
}
