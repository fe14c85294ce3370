namespace Backprop.Autograd;

/// <summary>
/// The backward of one op: what it saved from the forward pass, under names and types of its own,
/// and the vector-Jacobian product that maps the output gradient to its inputs' gradients. An op
/// declares it as a small struct next to its forward and hands its inputs their gradients with
/// <see cref="Tensor.AccumulateGrad(Tensor)"/>. With <see cref="Engine.CreateGraph"/> set, it must
/// build those gradients from recorded (differentiable) tensor ops, so that the backward pass is
/// itself a graph; without it, it may use fused kernels that record nothing.
/// </summary>
internal interface IBackward
{
    /// <summary>Pushes <paramref name="dy"/>, the gradient of the op's output, to the op's inputs.</summary>
    void Backward(Tensor dy);
}

/// <summary>
/// One recorded operation in the graph: its inputs (the edges the backward walk follows), the
/// versions of its inputs and saved tensors at record time (so an in-place change is caught), and
/// its typed backward state (<see cref="Node{TOp}"/>). Recording allocates only this object.
/// </summary>
public abstract class Node
{
    /// <summary>Name of the operation (for errors and printing), e.g. "Tanh".</summary>
    public abstract string Name { get; }

    // Inputs (edges of the graph): up to three inline, any number in InMany. Internal to the engine;
    // an op's backward reads its inputs from its own typed state.
    internal Tensor? In0, In1, In2;

    internal Tensor[]? InMany
    {
        get => _rare?.InMany;
        set { if (value != null || _rare != null) (_rare ??= new()).InMany = value; }
    }

    // Tensors the backward reads besides its inputs (an output, a mask, indices): version-checked and,
    // when op-internal scratch, recycled with the node.
    internal Tensor? Saved0, Saved1;

    private int _v0, _v1, _v2, _vs0, _vs1;

    // What few nodes need (a retained gradient, hooks, the anomaly call site, the versions of many
    // inputs) lives in one side object, so that the node every op records stays small.
    private sealed class Rare
    {
        public Tensor[]? InMany;
        public int[]? VMany;
        public Tensor? RetainTarget;
        public List<Func<Tensor, Tensor?>>? Hooks;
        public string? CreatedAt;
        public string? Name;
    }

    private Rare? _rare;

    internal Tensor? RetainTarget
    {
        get => _rare?.RetainTarget;
        set => (_rare ??= new()).RetainTarget = value;
    }

    internal List<Func<Tensor, Tensor?>>? Hooks
    {
        get => _rare?.Hooks;
        set => (_rare ??= new()).Hooks = value;
    }

    // Gradient of the output accumulated during a backward pass; Owned when we may add into it in place.
    internal Tensor? Grad;
    internal bool GradOwned;

    internal int VisitMark;
    internal bool Released;

    internal string? CreatedAt
    {
        get => _rare?.CreatedAt;
        set => (_rare ??= new()).CreatedAt = value;
    }

    /// <summary>A name the node's type keeps in its table is given by index (one byte, not a reference per node); others live in the side object.</summary>
    private protected string? RareName
    {
        get => _rare?.Name;
        set => (_rare ??= new()).Name = value;
    }

    /// <summary>Runs the op's backward on the gradient of its output.</summary>
    internal abstract void Apply(Tensor dy);

    /// <summary>Drops the typed state (saved tensors, indices) so that nothing is kept alive after release.</summary>
    private protected abstract void ClearState();

    internal void SnapshotVersions()
    {
        _v0 = In0?.Version ?? 0;
        _v1 = In1?.Version ?? 0;
        _v2 = In2?.Version ?? 0;
        _vs0 = Saved0?.Version ?? 0;
        _vs1 = Saved1?.Version ?? 0;
        if (InMany != null)
        {
            var v = (_rare ??= new()).VMany = new int[InMany.Length];
            for (int i = 0; i < InMany.Length; i++) v[i] = InMany[i].Version;
        }
    }

    internal void CheckVersions()
    {
        Check(In0, _v0, "its first input");
        Check(In1, _v1, "its second input");
        Check(In2, _v2, "its third input");
        Check(Saved0, _vs0, "a tensor it saved");
        Check(Saved1, _vs1, "a tensor it saved");
        if (InMany != null)
            for (int i = 0; i < InMany.Length; i++)
                if (InMany[i].Version != _rare!.VMany![i]) Check(InMany[i], _rare.VMany[i], $"input {i}"); // the name only on the error path
    }

    private void Check(Tensor? t, int version, string what)
    {
        if (t != null && t.Version != version)
            throw new InvalidOperationException(
                $"Backward: {what} of {Name} (shape {t.Shape}) was modified in place after the forward pass " +
                $"(version {t.Version}, expected {version}); its gradient would be wrong. Clone the tensor before modifying it.");
    }

    internal void AccumulateOutputGrad(Tensor g)
    {
        if (Engine.CreateGraph)
        {
            // Differentiable accumulation: the sum is itself recorded.
            Grad = Grad == null ? g : Tensor.Add(Grad, g);
            return;
        }
        if (Grad == null)
        {
            // Borrow: the gradient may be shared (e.g. Add hands dy to both inputs), so never add into it.
            Grad = g;
            GradOwned = false;
            g.EngineRefs++;
        }
        else if (GradOwned)
        {
            Dispatch.AddInPlace(Grad, g);
        }
        else
        {
            var old = Grad;
            Grad = Dispatch.AddNew(old, g);
            GradOwned = true;
            Grad.EngineRefs++;
            Engine.Unref(old);
        }
    }

    internal void Release(bool recycleScratch)
    {
        // Op-internal scratch saved for backward is unreachable from user code: recycle it (unless a
        // recorded backward graph may still read it).
        if (recycleScratch)
        {
            ReleaseScratch(In0); ReleaseScratch(In1); ReleaseScratch(In2); ReleaseScratch(Saved0); ReleaseScratch(Saved1);
        }
        Released = true;
        ClearState();
        In0 = In1 = In2 = Saved0 = Saved1 = null;
        InMany = null;
        Grad = null;
    }

    private static void ReleaseScratch(Tensor? t)
    {
        t?.ReleaseIfScratch();
    }

    /// <summary>Number of input edges.</summary>
    internal int EdgeCount => InMany?.Length ?? (In2 != null ? 3 : In1 != null ? 2 : In0 != null ? 1 : 0);

    /// <summary>Input edge <paramref name="i"/> (null for an absent optional input).</summary>
    internal Tensor? Edge(int i) => InMany != null ? InMany[i] : i == 0 ? In0 : i == 1 ? In1 : In2;

    /// <summary>The node's inputs that take part in the graph.</summary>
    internal IEnumerable<Tensor> Edges()
    {
        if (In0 != null) yield return In0;
        if (In1 != null) yield return In1;
        if (In2 != null) yield return In2;
        if (InMany != null) foreach (var t in InMany) yield return t;
    }

    /// <summary>The tensors this op was applied to (empty once the graph was freed by a backward pass).</summary>
    public IReadOnlyList<Tensor> Inputs => [.. Edges()];

    /// <summary>The nodes that produced this node's inputs (the next step of the backward walk).</summary>
    public IEnumerable<Node> NextFunctions() => Edges().Where(t => t._gradFn != null).Select(t => t._gradFn!);

    /// <inheritdoc/>
    public override string ToString() => $"<{Name}Backward>";
}

/// <summary>A node whose backward state is the struct <typeparamref name="TOp"/> (one allocation: this object).</summary>
internal sealed class Node<TOp> : Node where TOp : struct, IBackward
{
    // The names nodes of this type were recorded under (an op type has one or a few: "Linear", "Linear+Gelu"),
    // copied on write; each node keeps the index of its own.
    private static string[] _names = [];
    private static readonly Lock NamesLock = new();
    private const byte NotInTable = byte.MaxValue;

    private readonly byte _name;
    private TOp _op;

    public Node(string name, TOp op)
    {
        _op = op;
        _name = IndexOf(name);
        if (_name == NotInTable) RareName = name;
    }

    public override string Name => _name == NotInTable ? RareName! : _names[_name];

    private static byte IndexOf(string name)
    {
        var names = _names;
        for (int i = 0; i < names.Length; i++)
            if (ReferenceEquals(names[i], name) || names[i] == name) return (byte)i;
        lock (NamesLock)
        {
            names = _names;
            for (int i = 0; i < names.Length; i++)
                if (names[i] == name) return (byte)i;
            if (names.Length >= NotInTable) return NotInTable;
            _names = [.. names, name];
            return (byte)names.Length;
        }
    }

    internal override void Apply(Tensor dy) => _op.Backward(dy);

    private protected override void ClearState() => _op = default;
}
