using System.Text;

namespace Backprop.Autograd;

/// <summary>Raised inside a <see cref="Tensor.DetectAnomaly"/> scope when an op produces NaN or infinity.</summary>
public sealed class AnomalyException : InvalidOperationException
{
    /// <summary>Name of the op whose forward or backward produced the bad value.</summary>
    public string Op { get; }

    /// <summary>Creates the exception.</summary>
    public AnomalyException(string op, string message) : base(message) => Op = op;
}

/// <summary>Checks for NaN and infinity op by op while anomaly detection is on.</summary>
internal static class Anomaly
{
    public static void CheckForward(string op, Tensor output, Tensor a, Tensor? b, Tensor? c)
    {
        if (!output.DType.IsFloatingPoint() || Dispatch.AllFinite(output)) return;
        throw new AnomalyException(op,
            $"DetectAnomaly: {op} produced {Dispatch.DescribeNonFinite(output)} in its forward output of shape {output.Shape}; " +
            $"inputs {Shapes(a, b, c)}; called {CallSite()}.");
    }

    public static void CheckForward(string op, Tensor output, Tensor[] inputs)
    {
        if (!output.DType.IsFloatingPoint() || Dispatch.AllFinite(output)) return;
        throw new AnomalyException(op,
            $"DetectAnomaly: {op} produced {Dispatch.DescribeNonFinite(output)} in its forward output of shape {output.Shape}; " +
            $"inputs {string.Join(", ", inputs.Select(t => t.Shape.ToString()))}; called {CallSite()}.");
    }

    public static void CheckBackwardInput(Node n, Tensor g)
    {
        if (Dispatch.AllFinite(g)) return;
        throw new AnomalyException(n.Name,
            $"DetectAnomaly: the gradient flowing into the backward of {n.Name} contains {Dispatch.DescribeNonFinite(g)} (shape {g.Shape}); " +
            $"{n.Name} was created {n.CreatedAt ?? "(outside the anomaly scope)"}.");
    }

    public static void CheckBackwardOutputs(Node n)
    {
        foreach (var t in n.Edges())
        {
            var g = t._gradFn != null ? t._gradFn.Grad : t.Grad;
            if (g == null || Dispatch.AllFinite(g)) continue;
            throw new AnomalyException(n.Name,
                $"DetectAnomaly: the backward of {n.Name} produced {Dispatch.DescribeNonFinite(g)} in the gradient of an input of shape {t.Shape}; " +
                $"inputs {string.Join(", ", n.Edges().Select(e => e.Shape.ToString()))}; {n.Name} was created {n.CreatedAt ?? "(outside the anomaly scope)"}.");
        }
    }

    private static string Shapes(Tensor a, Tensor? b, Tensor? c)
    {
        var sb = new StringBuilder(a.Shape.ToString());
        if (b != null) sb.Append(", ").Append(b.Shape);
        if (c != null) sb.Append(", ").Append(c.Shape);
        return sb.ToString();
    }

    /// <summary>The first stack frame outside this library: where the user's code called the op.</summary>
    public static string CallSite()
    {
        var lib = typeof(Tensor).Assembly;
        var trace = new StackTrace(1, fNeedFileInfo: true);
        foreach (var f in trace.GetFrames())
        {
            var m = f.GetMethod();
            if (m?.DeclaringType == null || m.DeclaringType.Assembly == lib) continue;
            var file = f.GetFileName();
            var where = file != null ? $" in {Path.GetFileName(file)}:line {f.GetFileLineNumber()}" : "";
            return $"at {m.DeclaringType.FullName}.{m.Name}{where}";
        }
        return "(call site unknown)";
    }
}
