namespace Backprop.Autograd;

/// <summary>Records operations into the graph and walks it backwards.</summary>
internal static class Engine
{
    private static int _pass;

    [ThreadStatic] private static List<Node>? _order;
    [ThreadStatic] private static bool _inBackward;
    [ThreadStatic] private static List<Storage>? _temps;

    /// <summary>True while a backward pass runs on this thread: allocations are then temporaries.</summary>
    public static bool InBackward => _inBackward;

    /// <summary>
    /// A profiling probe (bench/Backprop.Bench `gpt-profile`), null unless a profiler sets it (then one test per
    /// op): called with an op's name when the op is recorded in forward (the profiler charges it the time since
    /// the previous call: the op's work plus any unrecorded view or module code before it), and in backward with
    /// null before each node's backward and with its name after it.
    /// </summary>
    internal static Action<string?, bool>? Probe;

    /// <summary>Remembers a storage allocated during backward, to recycle it when the pass ends.</summary>
    public static void TrackTemp(Storage s) => (_temps ??= []).Add(s);

    /// <summary>Drops one pending-gradient reference; a backward temporary nobody refers to goes back to the pool.</summary>
    internal static void Unref(Tensor t) => t.Unref();
    [ThreadStatic] private static Stack<(Node node, int edge)>? _stack;

    /// <summary>True when an op applied to these inputs must be recorded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool ShouldRecord(Tensor a) => GradMode.IsEnabled && a.RequiresGrad;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool ShouldRecord(Tensor a, Tensor? b) =>
        GradMode.IsEnabled && (a.RequiresGrad || (b != null && b.RequiresGrad));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool ShouldRecord(Tensor a, Tensor? b, Tensor? c) =>
        GradMode.IsEnabled && (a.RequiresGrad || (b != null && b.RequiresGrad) || (c != null && c.RequiresGrad));

    public static bool ShouldRecord(ReadOnlySpan<Tensor> inputs)
    {
        if (!GradMode.IsEnabled) return false;
        foreach (var t in inputs) if (t.RequiresGrad) return true;
        return false;
    }

    /// <summary>
    /// Makes <paramref name="output"/> a graph node computed from the inputs <paramref name="a"/>,
    /// <paramref name="b"/>, <paramref name="c"/>, if any of them requires grad (and grad mode is on),
    /// with <paramref name="op"/> as its typed backward state. <paramref name="saved0"/> and
    /// <paramref name="saved1"/> are tensors the backward reads besides its inputs: they are checked for
    /// in-place changes (and recycled with the node when they are op-internal scratch).
    /// </summary>
    public static Node? Record<TOp>(Tensor output, string name, in TOp op, Tensor a, Tensor? b = null, Tensor? c = null,
        Tensor? saved0 = null, Tensor? saved1 = null) where TOp : struct, IBackward
    {
        if (GradMode.AnomalyDetection && !_inBackward) Anomaly.CheckForward(name, output, a, b, c);
        if (Probe != null && !_inBackward) Probe(name, false);
        if (!ShouldRecord(a, b, c)) return null;
        var n = new Node<TOp>(name, op) { In0 = a, In1 = b, In2 = c, Saved0 = saved0, Saved1 = saved1 };
        Attach(output, n);
        return n;
    }

    /// <summary>Records an op with any number of inputs.</summary>
    public static Node? RecordMany<TOp>(Tensor output, string name, in TOp op, Tensor[] inputs, Tensor? saved0 = null)
        where TOp : struct, IBackward
    {
        if (GradMode.AnomalyDetection && !_inBackward) Anomaly.CheckForward(name, output, inputs);
        if (Probe != null && !_inBackward) Probe(name, false);
        if (!ShouldRecord(inputs)) return null;
        var n = new Node<TOp>(name, op) { InMany = inputs, Saved0 = saved0 };
        Attach(output, n);
        return n;
    }

    private static void Attach(Tensor output, Node n)
    {
        if (output._gradFn != null)
            throw new InvalidOperationException($"{n.Name}: output tensor already belongs to {output._gradFn.Name} (internal error).");
        n.SnapshotVersions();
        if (GradMode.AnomalyDetection) n.CreatedAt = Anomaly.CallSite();
        output._gradFn = n;
    }

    /// <summary>
    /// For a leaf that requires grad: its Grad buffer (allocated as zeros on first use), so a backward
    /// can accumulate into it directly (GEMM with beta = 1) instead of allocating a temporary.
    /// Null for non-leaves, when the existing Grad cannot be written in place, and whenever the
    /// gradient must take the general path: a graph of the backward is being built, gradients are being
    /// returned rather than accumulated (<see cref="Gradients"/>.Compute), or the leaf has hooks.
    /// </summary>
    public static Tensor? LeafGradTarget(Tensor t)
    {
        if (t._gradFn != null || !t.RequiresGrad || _createGraph || _capture != null || t._hooks != null) return null;
        if (t.Grad == null)
        {
            t.Grad = Tensor.ZerosLike(t); // the Grad setter marks it as escaped: it outlives the pass
            return t.Grad;
        }
        var g = t.Grad;
        return g.IsContiguous && g.DType == t.DType && g.Shape.Equals(t.Shape) && !g.RequiresGrad ? g : null;
    }

    /// <summary>A gradient reaching a leaf: captured (Gradients.Compute), held for the leaf's hooks, or added into its Grad.</summary>
    public static void AccumulateLeaf(Tensor leaf, Tensor g)
    {
        if (leaf._hooks != null && _pendingLeaves != null && _pendingLeaves.ContainsKey(leaf))
        {
            // Held until every node that uses the leaf has run, so the hooks see the whole gradient once.
            var held = _heldLeafGrads!;
            held[leaf] = held.TryGetValue(leaf, out var sum) && sum != null ? Sum(sum, g) : g;
            return;
        }
        DeliverLeaf(leaf, g);
    }

    private static Tensor Sum(Tensor a, Tensor b) => _createGraph ? Tensor.Add(a, b) : Dispatch.AddNew(a, b);

    private static void DeliverLeaf(Tensor leaf, Tensor g)
    {
        if (_capture != null)
        {
            Capture(leaf, g);
            return;
        }
        if (_createGraph)
        {
            // The gradient keeps its graph: Grad = Grad + g, recorded, so it can be differentiated again.
            leaf.Grad = leaf.Grad == null ? g.Clone() : Tensor.Add(leaf.Grad, g);
            return;
        }
        if (leaf.Grad == null)
        {
            // The leaf gets its own buffer: the incoming gradient may alias another tensor's.
            leaf.Grad = Dispatch.ToContiguous(g);
        }
        else
        {
            if (!leaf.Grad.Shape.Equals(leaf.Shape) || leaf.Grad.DType != leaf.DType)
                throw new InvalidOperationException(
                    $"Backward: the existing Grad of a leaf has shape {leaf.Grad.Shape} ({leaf.Grad.DType.Name()}) but the tensor has shape {leaf.Shape} ({leaf.DType.Name()}).");
            if (leaf.Grad.RequiresGrad) leaf.Grad = Dispatch.AddNew(leaf.Grad.NoGraph(), g); // a Grad built with createGraph: do not write into its graph
            else Dispatch.AddInPlace(leaf.Grad, g);
        }
    }

    // ---------------------------------------------------------------- the backward pass

    [ThreadStatic] private static bool _createGraph;
    [ThreadStatic] private static Tensor[]? _capture;
    [ThreadStatic] private static Tensor?[]? _captured;
    [ThreadStatic] private static Dictionary<Tensor, int>? _pendingLeaves;
    [ThreadStatic] private static Dictionary<Tensor, Tensor?>? _heldLeafGrads;

    /// <summary>
    /// True while a backward pass records its own graph (createGraph): an op's backward must then
    /// build its gradients from recorded tensor ops, not from fused kernels that record nothing.
    /// </summary>
    public static bool CreateGraph => _inBackward && _createGraph;

    [ThreadStatic] private static bool _retainGraph;

    /// <summary>
    /// True inside a backward pass that frees the graph as it goes (no retainGraph, no createGraph):
    /// a node's backward runs once, so it may overwrite its own op-internal scratch (saved only for it).
    /// </summary>
    internal static bool ConsumesScratch => _inBackward && !_retainGraph && !_createGraph;

    /// <summary>True when storages allocated now are temporaries of a backward pass (recycled when it ends).</summary>
    public static bool AllocatesTemporaries => _inBackward && !_createGraph;

    public static void Backward(Tensor root, Tensor? gradient, bool retainGraph, bool createGraph = false)
    {
        // one-element arrays reused per thread: a training step's backward allocates none
        var roots = _oneRoot ??= new Tensor[1];
        var grads = _oneGradient ??= new Tensor?[1];
        roots[0] = root;
        grads[0] = gradient;
        try
        {
            Run(roots, gradient == null ? null : grads, retainGraph || createGraph, createGraph, capture: null, "Backward");
        }
        finally
        {
            roots[0] = null!;
            grads[0] = null;
        }
    }

    [ThreadStatic] private static Tensor[]? _oneRoot;
    [ThreadStatic] private static Tensor?[]? _oneGradient;

    /// <summary>
    /// Gradients of the sum of <paramref name="outputs"/> (each weighted by its gradient) with respect to
    /// <paramref name="inputs"/>, returned instead of accumulated: no tensor's Grad changes.
    /// </summary>
    public static Tensor?[] Grad(Tensor[] outputs, Tensor[] inputs, Tensor?[]? gradOutputs, bool retainGraph, bool createGraph, bool allowUnused)
    {
        if (outputs.Length == 0) throw new ArgumentException("Gradients.Compute: give at least one output.", nameof(outputs));
        if (gradOutputs != null && gradOutputs.Length != outputs.Length)
            throw new ArgumentException($"Gradients.Compute: {gradOutputs.Length} output gradients given for {outputs.Length} outputs.", nameof(gradOutputs));
        for (int i = 0; i < inputs.Length; i++)
            if (!inputs[i].RequiresGrad)
                throw new ArgumentException($"Gradients.Compute: input {i} (shape {inputs[i].Shape}) does not require grad, so no gradient can be computed for it.", nameof(inputs));
        var captured = new Tensor?[inputs.Length];
        Run(outputs, gradOutputs, retainGraph, createGraph, (inputs, captured), "Gradients.Compute");
        if (!allowUnused)
            for (int i = 0; i < inputs.Length; i++)
                if (captured[i] == null)
                    throw new InvalidOperationException(
                        $"Gradients.Compute: input {i} (shape {inputs[i].Shape}) is not reached from the outputs; pass allowUnused: true to get null for it.");
        return captured;
    }

    private static void Capture(Tensor input, Tensor g)
    {
        var inputs = _capture!;
        for (int i = 0; i < inputs.Length; i++)
        {
            if (!ReferenceEquals(inputs[i], input)) continue;
            var prev = _captured![i];
            Tensor sum;
            if (_createGraph) sum = prev == null ? g : Tensor.Add(prev, g);
            else
            {
                sum = prev == null ? Dispatch.ToContiguous(g) : Dispatch.AddNew(prev, g);
                sum.MarkEscaped(); // returned to the caller: not a temporary
            }
            _captured[i] = sum;
            return;
        }
    }

    private static void Run(Tensor[] roots, Tensor?[]? gradients, bool retainGraph, bool createGraph, (Tensor[] Inputs, Tensor?[] Grads)? capture, string what)
    {
        for (int r = 0; r < roots.Length; r++)
        {
            var root = roots[r];
            var gradient = gradients?[r];
            if (!root.RequiresGrad)
                throw new InvalidOperationException(
                    $"{what}: tensor of shape {root.Shape} does not require grad and has no grad_fn; " +
                    "set RequiresGrad on the leaves you want gradients for before computing it.");
            if (gradient == null)
            {
                if (root.NumElements != 1)
                    throw new InvalidOperationException(
                        $"{what}: an implicit gradient can only be created for a scalar output, but this tensor has shape {root.Shape}; " +
                        "pass the output gradient explicitly: Backward(gradient).");
            }
            else
            {
                if (!gradient.Shape.Equals(root.Shape))
                    throw new ArgumentException($"{what}: gradient has shape {gradient.Shape} but the output has shape {root.Shape}.", nameof(gradients));
                if (gradient.DType != root.DType)
                    throw new ArgumentException($"{what}: gradient is {gradient.DType.Name()} but the output is {root.DType.Name()}.", nameof(gradients));
            }
            if (root._gradFn is { Released: true } rn) throw Freed(rn);
        }
        if (_inBackward) throw new InvalidOperationException($"{what}: cannot start a backward pass from inside another one.");

        var order = TopologicalOrder(roots);
        bool anomaly = GradMode.AnomalyDetection;
        _inBackward = true;
        _createGraph = createGraph;
        _retainGraph = retainGraph;
        if (capture is var (ci, cg)) { _capture = ci; _captured = cg; }
        int savedDepth = createGraph ? GradMode.Suspend() : 0;
        var noGrad = createGraph ? default : GradMode.Push();
        try
        {
            for (int r = 0; r < roots.Length; r++)
            {
                var root = roots[r];
                var g = gradients?[r] ?? (createGraph ? Tensor.OnesLike(root) : OneLike(root));
                if (root._gradFn == null) AccumulateLeaf(root, g);
                else root._gradFn.AccumulateOutputGrad(g);
            }
            for (int i = order.Count - 1; i >= 0; i--)
            {
                var n = order[i];
                var g = n.Grad;
                if (g != null)
                {
                    n.Grad = null;
                    n.CheckVersions();
                    var consumed = g;
                    if (n.Hooks != null)
                        foreach (var hook in n.Hooks)
                            if (hook(g) is Tensor replaced) g = CheckHookResult(n.Name, g, replaced);
                    if (_capture != null) CaptureNode(n, g);
                    else if (n.RetainTarget != null)
                        n.RetainTarget.Grad = createGraph
                            ? n.RetainTarget.Grad == null ? g : Tensor.Add(n.RetainTarget.Grad, g)
                            : n.RetainTarget.Grad == null ? Dispatch.ToContiguous(g) : Dispatch.AddNew(n.RetainTarget.Grad, g);
                    if (anomaly) Anomaly.CheckBackwardInput(n, g);
                    Probe?.Invoke(null, true);
                    n.Apply(g);
                    Probe?.Invoke(n.Name, true);
                    if (anomaly) Anomaly.CheckBackwardOutputs(n);
                    if (!createGraph) Unref(consumed); // the consumed gradient: recycled now unless another pending slot still refers to it
                }
                if (_pendingLeaves is { Count: > 0 }) FinishLeafEdges(n);
                if (!retainGraph) n.Release(recycleScratch: !createGraph);
            }
            // Leaves reached only as roots, or whose last user was skipped before any pending count reached them.
            if (_pendingLeaves is { Count: > 0 })
                foreach (var leaf in _pendingLeaves.Keys.ToArray()) FinishLeaf(leaf);
        }
        finally
        {
            if (createGraph) GradMode.Restore(savedDepth);
            else noGrad.Dispose();
            _inBackward = false;
            _createGraph = false;
            _capture = null;
            _captured = null;
            _pendingLeaves?.Clear();
            _heldLeafGrads?.Clear();
            foreach (var n in order) { n.Grad = null; n.GradOwned = false; }
            order.Clear();
            // Everything allocated during the pass that did not escape into a leaf's Grad is a temporary.
            var temps = _temps;
            if (temps != null)
            {
                foreach (var t in temps)
                {
                    t.EngineRefs = 0;
                    t.Release();
                }
                temps.Clear();
            }
        }
    }

    private static Tensor CheckHookResult(string op, Tensor g, Tensor replaced)
    {
        if (!replaced.Shape.Equals(g.Shape) || replaced.DType != g.DType)
            throw new InvalidOperationException(
                $"Backward: a hook on the output of {op} returned a gradient of shape {replaced.Shape} ({replaced.DType.Name()}), " +
                $"but the gradient has shape {g.Shape} ({g.DType.Name()}).");
        return replaced;
    }

    /// <summary>Gradients.Compute of a non-leaf input: its gradient is complete when its node is reached.</summary>
    private static void CaptureNode(Node n, Tensor g)
    {
        var inputs = _capture!;
        for (int i = 0; i < inputs.Length; i++)
            if (ReferenceEquals(inputs[i]._gradFn, n)) Capture(inputs[i], g);
    }

    /// <summary>After node <paramref name="n"/> ran (or was skipped): leaves with hooks that no other node will reach get their gradient.</summary>
    private static void FinishLeafEdges(Node n)
    {
        int count = n.EdgeCount;
        for (int e = 0; e < count; e++)
        {
            var t = n.Edge(e);
            if (t == null || t._hooks == null || !_pendingLeaves!.TryGetValue(t, out int left)) continue;
            if (left > 1) _pendingLeaves[t] = left - 1;
            else FinishLeaf(t);
        }
    }

    /// <summary>Runs a leaf's gradient hooks on its whole gradient, accumulates it, then runs its post-accumulate hooks.</summary>
    private static void FinishLeaf(Tensor leaf)
    {
        _pendingLeaves!.Remove(leaf);
        if (!_heldLeafGrads!.Remove(leaf, out var g) || g == null) return;
        var hooks = leaf._hooks!;
        foreach (var hook in hooks.Gradient)
            if (hook(g) is Tensor replaced) g = CheckHookResult("a leaf", g, replaced);
        DeliverLeaf(leaf, g);
        if (_capture == null)
            foreach (var hook in hooks.PostAccumulate) hook(leaf);
    }

    private static readonly Tensor OneF = EscapedOne(DType.Float32), OneD = EscapedOne(DType.Float64);

    private static Tensor EscapedOne(DType dtype)
    {
        var t = Tensor.Ones([], dtype);
        t.MarkEscaped();
        return t;
    }

    /// <summary>dL/dL = 1 for a scalar root. The shared 0-d ones are safe to reuse: a borrowed pending gradient is never written in place.</summary>
    private static Tensor OneLike(Tensor root) =>
        root.Rank == 0 && root.Device == Backends.Device.Cpu ? (root.DType == DType.Float32 ? OneF : OneD) : Tensor.OnesLike(root);

    private static Exception Freed(Node n) => new InvalidOperationException(
        $"Backward: the graph through {n.Name} was already freed by an earlier Backward(); " +
        "call Backward(retainGraph: true) the first time if you need to run backward through it again.");

    /// <summary>
    /// Nodes reachable from the roots, each after all the nodes it depends on (inputs first). Leaves
    /// with hooks are counted once per edge that reaches them, so their hooks can run when the last one has.
    /// </summary>
    private static List<Node> TopologicalOrder(Tensor[] roots)
    {
        var order = _order ??= new List<Node>();
        var stack = _stack ??= new Stack<(Node, int)>();
        order.Clear();
        stack.Clear();
        int mark = Interlocked.Increment(ref _pass);
        foreach (var rootTensor in roots)
        {
            if (rootTensor._gradFn is not Node root)
            {
                if (rootTensor._hooks != null) CountLeafEdge(rootTensor, 0);
                continue;
            }
            if (root.VisitMark == mark) continue;
            root.VisitMark = mark;
            CountLeafEdges(root);
            stack.Push((root, 0));
            while (stack.Count > 0)
            {
                var (node, edge) = stack.Pop();
                var next = NextEdgeNode(node, ref edge);
                if (next == null)
                {
                    order.Add(node); // all inputs done: post-order
                    continue;
                }
                stack.Push((node, edge));
                if (next.VisitMark != mark)
                {
                    if (next.Released) throw Freed(next);
                    next.VisitMark = mark;
                    CountLeafEdges(next);
                    stack.Push((next, 0));
                }
            }
        }
        return order;
    }

    private static void CountLeafEdges(Node n)
    {
        int count = n.EdgeCount;
        for (int e = 0; e < count; e++)
            if (n.Edge(e) is { _hooks: not null, _gradFn: null } leaf) CountLeafEdge(leaf, 1);
    }

    private static void CountLeafEdge(Tensor leaf, int edges)
    {
        var pending = _pendingLeaves ??= new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        _heldLeafGrads ??= new Dictionary<Tensor, Tensor?>(ReferenceEqualityComparer.Instance);
        pending[leaf] = pending.GetValueOrDefault(leaf) + edges;
    }

    /// <summary>The next input node (starting at edge index <paramref name="edge"/>), advancing the index past it.</summary>
    private static Node? NextEdgeNode(Node n, ref int edge)
    {
        int count = n.EdgeCount;
        while (edge < count)
        {
            var t = n.Edge(edge++);
            if (t?._gradFn != null) return t._gradFn;
        }
        return null;
    }
}
