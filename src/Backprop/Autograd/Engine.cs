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

    /// <summary>Remembers a storage allocated during backward, to recycle it when the pass ends.</summary>
    public static void TrackTemp(Storage s) => (_temps ??= []).Add(s);

    /// <summary>Drops one pending-gradient reference; a backward temporary nobody refers to goes back to the pool.</summary>
    internal static void Unref(Tensor t)
    {
        var s = t._storage;
        if (--s.EngineRefs <= 0 && s.BackwardTemp) s.Release();
    }
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
    /// Makes <paramref name="output"/> a graph node computed from the inputs, if any of them
    /// requires grad (and grad mode is on). Returns the node (to attach extra saved values) or null.
    /// </summary>
    public static Node? Record(Tensor output, string name, BackwardFn backward, Tensor a, Tensor? b = null, Tensor? c = null,
        Tensor? s0 = null, Tensor? s1 = null, int i0 = 0, int i1 = 0, double d0 = 0, double d1 = 0, object? obj = null)
    {
        if (GradMode.AnomalyDetection && !_inBackward) Anomaly.CheckForward(name, output, a, b, c);
        if (!ShouldRecord(a, b, c)) return null;
        var n = new Node(name, backward)
        {
            A = a,
            B = b,
            C = c,
            S0 = s0,
            S1 = s1,
            I0 = i0,
            I1 = i1,
            D0 = d0,
            D1 = d1,
            Obj = obj,
        };
        Attach(output, n);
        return n;
    }

    /// <summary>Records an op with any number of inputs.</summary>
    public static Node? RecordMany(Tensor output, string name, BackwardFn backward, Tensor[] inputs,
        Tensor? s0 = null, int i0 = 0, int i1 = 0, object? obj = null)
    {
        if (GradMode.AnomalyDetection && !_inBackward) Anomaly.CheckForward(name, output, inputs);
        if (!ShouldRecord(inputs)) return null;
        var n = new Node(name, backward) { Inputs = inputs, S0 = s0, I0 = i0, I1 = i1, Obj = obj };
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
    /// Null for non-leaves, or when the existing Grad cannot be written in place.
    /// </summary>
    public static Tensor? LeafGradTarget(Tensor t)
    {
        if (t._gradFn != null || !t.RequiresGrad) return null;
        if (t.Grad == null)
        {
            t.Grad = Tensor.Zeros(t._shape, t.DType); // the Grad setter marks it as escaped: it outlives the pass
            return t.Grad;
        }
        var g = t.Grad;
        return g.IsContiguous && g.DType == t.DType && g.Shape.Equals(t.Shape) ? g : null;
    }

    public static void AccumulateLeaf(Tensor leaf, Tensor g)
    {
        if (leaf.Grad == null)
        {
            // The leaf gets its own buffer: the incoming gradient may alias another tensor's.
            leaf.Grad = Kernels.Copy.ToContiguous(g);
        }
        else
        {
            if (!leaf.Grad.Shape.Equals(leaf.Shape) || leaf.Grad.DType != leaf.DType)
                throw new InvalidOperationException(
                    $"Backward: the existing Grad of a leaf has shape {leaf.Grad.Shape} ({leaf.Grad.DType.Name()}) but the tensor has shape {leaf.Shape} ({leaf.DType.Name()}).");
            Kernels.Elementwise.AddInPlace(leaf.Grad, g);
        }
    }

    public static void Backward(Tensor root, Tensor? gradient, bool retainGraph)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException(
                $"Backward: tensor of shape {root.Shape} does not require grad and has no grad_fn; " +
                "set RequiresGrad on the leaves you want gradients for before computing it.");
        if (gradient == null)
        {
            if (root.NumElements != 1)
                throw new InvalidOperationException(
                    $"Backward: an implicit gradient can only be created for a scalar output, but this tensor has shape {root.Shape}; " +
                    "pass the output gradient explicitly: Backward(gradient).");
            gradient = null; // created below, inside the pass, as a temporary
        }
        else
        {
            if (!gradient.Shape.Equals(root.Shape))
                throw new ArgumentException($"Backward: gradient has shape {gradient.Shape} but the output has shape {root.Shape}.", nameof(gradient));
            if (gradient.DType != root.DType)
                throw new ArgumentException($"Backward: gradient is {gradient.DType.Name()} but the output is {root.DType.Name()}.", nameof(gradient));
        }

        var rootNode = root._gradFn;
        if (rootNode == null)
        {
            AccumulateLeaf(root, gradient ?? Tensor.Ones([.. root._shape], root.DType));
            return;
        }
        if (rootNode.Released) throw Freed(rootNode);
        if (_inBackward) throw new InvalidOperationException("Backward: cannot start a backward pass from inside another one.");

        var order = TopologicalOrder(rootNode);
        bool anomaly = GradMode.AnomalyDetection;
        _inBackward = true;
        try
        {
            rootNode.AccumulateOutputGrad(gradient ?? OneLike(root));
            using (Tensor.NoGrad())
            {
                for (int i = order.Count - 1; i >= 0; i--)
                {
                    var n = order[i];
                    var g = n.Grad;
                    if (g == null) continue; // no gradient reached this node
                    n.Grad = null;
                    n.CheckVersions();
                    if (n.RetainTarget != null)
                        n.RetainTarget.Grad = n.RetainTarget.Grad == null ? Kernels.Copy.ToContiguous(g) : Kernels.Elementwise.AddNew(n.RetainTarget.Grad, g);
                    if (anomaly) Anomaly.CheckBackwardInput(n, g);
                    n.Fn!(n, g);
                    if (anomaly) Anomaly.CheckBackwardOutputs(n);
                    Unref(g); // the consumed gradient: recycled now unless another pending slot still refers to it
                    if (!retainGraph) n.Release();
                }
            }
        }
        finally
        {
            _inBackward = false;
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

    private static readonly Tensor OneF = EscapedOne(DType.Float32), OneD = EscapedOne(DType.Float64);

    private static Tensor EscapedOne(DType dtype)
    {
        var t = Tensor.Ones([], dtype);
        t._storage.Escaped = true;
        return t;
    }

    /// <summary>dL/dL = 1 for a scalar root. The shared 0-d ones are safe to reuse: a borrowed pending gradient is never written in place.</summary>
    private static Tensor OneLike(Tensor root) =>
        root.Rank == 0 ? (root.DType == DType.Float32 ? OneF : OneD) : Tensor.Ones([.. root._shape], root.DType);

    private static Exception Freed(Node n) => new InvalidOperationException(
        $"Backward: the graph through {n.Name} was already freed by an earlier Backward(); " +
        "call Backward(retainGraph: true) the first time if you need to run backward through it again.");

    /// <summary>Nodes reachable from <paramref name="root"/>, each after all the nodes it depends on (inputs first).</summary>
    private static List<Node> TopologicalOrder(Node root)
    {
        var order = _order ??= new List<Node>();
        var stack = _stack ??= new Stack<(Node, int)>();
        order.Clear();
        stack.Clear();
        int mark = Interlocked.Increment(ref _pass);
        root.VisitMark = mark;
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
                stack.Push((next, 0));
            }
        }
        return order;
    }

    /// <summary>The next input node (starting at edge index <paramref name="edge"/>), advancing the index past it.</summary>
    private static Node? NextEdgeNode(Node n, ref int edge)
    {
        while (true)
        {
            Tensor? t;
            int e = edge++;
            if (e == 0) t = n.A;
            else if (e == 1) t = n.B;
            else if (e == 2) t = n.C;
            else if (n.Inputs != null && e - 3 < n.Inputs.Length) t = n.Inputs[e - 3];
            else return null;
            if (t?._gradFn != null) return t._gradFn;
        }
    }
}
