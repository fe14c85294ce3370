namespace Backprop.Autograd;

/// <summary>Maps the gradient of a node's output to gradients of its inputs (a vector-Jacobian product).</summary>
internal delegate void BackwardFn(Node node, Tensor dy);

/// <summary>
/// One recorded operation in the graph: its inputs, what it saved from the forward pass, and its
/// backward function. Ops pass a static lambda plus saved values, so recording allocates only
/// this node.
/// </summary>
public sealed class Node
{
    /// <summary>Name of the operation (for errors and printing), e.g. "Tanh".</summary>
    public string Name { get; }

    // Inputs (edges of the graph). Most ops have at most three; n-ary ops use Inputs.
    internal Tensor? A, B, C;
    internal Tensor[]? Inputs;

    // What backward needs from forward: tensors, integers, reals, anything else.
    internal Tensor? S0, S1;
    internal int I0, I1;
    internal double D0, D1;
    internal object? Obj;

    internal BackwardFn? Fn;
    internal Tensor? RetainTarget;

    // Gradient of the output accumulated during a backward pass; Owned when we may add into it in place.
    internal Tensor? Grad;
    internal bool GradOwned;

    // Versions of saved/inputs at record time (in-place modification detection).
    private int _vA, _vB, _vS0, _vS1;
    internal int VisitMark;
    internal bool Released;
    internal string? CreatedAt;

    internal Node(string name, BackwardFn fn)
    {
        Name = name;
        Fn = fn;
    }

    internal void SnapshotVersions()
    {
        _vA = A?._storage.Version ?? 0;
        _vB = B?._storage.Version ?? 0;
        _vS0 = S0?._storage.Version ?? 0;
        _vS1 = S1?._storage.Version ?? 0;
    }

    internal void CheckVersions()
    {
        Check(A, _vA, "its first input");
        Check(B, _vB, "its second input");
        Check(S0, _vS0, "a tensor it saved");
        Check(S1, _vS1, "a tensor it saved");
    }

    private void Check(Tensor? t, int version, string what)
    {
        if (t != null && t._storage.Version != version)
            throw new InvalidOperationException(
                $"Backward: {what} of {Name} (shape {t.Shape}) was modified in place after the forward pass " +
                $"(version {t._storage.Version}, expected {version}); its gradient would be wrong. Clone the tensor before modifying it.");
    }

    internal void AccumulateOutputGrad(Tensor g)
    {
        if (Grad == null)
        {
            // Borrow: the gradient may be shared (e.g. Add hands dy to both inputs), so never add into it.
            Grad = g;
            GradOwned = false;
            g._storage.EngineRefs++;
        }
        else if (GradOwned)
        {
            Kernels.Elementwise.AddInPlace(Grad, g);
        }
        else
        {
            var old = Grad;
            Grad = Kernels.Elementwise.AddNew(old, g);
            GradOwned = true;
            Grad._storage.EngineRefs++;
            Engine.Unref(old);
        }
    }

    internal void Release()
    {
        // Op-internal scratch saved for backward is unreachable from user code: recycle it.
        ReleaseScratch(A); ReleaseScratch(B); ReleaseScratch(C); ReleaseScratch(S0); ReleaseScratch(S1);
        Released = true;
        Fn = null;
        A = B = C = S0 = S1 = null;
        Inputs = null;
        Obj = null;
        Grad = null;
    }

    private static void ReleaseScratch(Tensor? t)
    {
        if (t != null && t._storage.Scratch) t._storage.Release();
    }

    /// <summary>The node's inputs that take part in the graph.</summary>
    internal IEnumerable<Tensor> Edges()
    {
        if (A != null) yield return A;
        if (B != null) yield return B;
        if (C != null) yield return C;
        if (Inputs != null) foreach (var t in Inputs) yield return t;
    }

    /// <inheritdoc/>
    public override string ToString() => $"<{Name}Backward>";
}
