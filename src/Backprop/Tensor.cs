
using Backprop.Autograd;

namespace Backprop;

/// <summary>
/// An n-dimensional array of float32 (default), float64 or int64 values with a shape and strides
/// over a flat storage, which views share. Tensors that require grad record the operations applied
/// to them so that <see cref="Backward"/> can compute gradients.
/// </summary>
public partial class Tensor
{
    internal readonly Storage _storage;
    internal readonly int _offset;
    internal readonly int[] _shape;
    internal readonly int[] _strides;
    internal readonly int _numel;

    internal Node? _gradFn;

    // What only some tensors need (a gradient, hooks, requires-grad on a leaf) lives in a side table,
    // not in fields, so that the many tensors a training step creates stay small (56 bytes: storage,
    // shape, strides, node, offset, count). The table holds its entries as long as the tensor lives.
    private sealed class Extra
    {
        public Tensor? Grad;
        public TensorHooks? Hooks;
        public bool RequiresGrad;
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Tensor, Extra> Extras = new();

    private Extra? _extra => Extras.TryGetValue(this, out var e) ? e : null;

    private Extra NewExtra() => Extras.GetOrCreateValue(this);

    /// <summary>Whether the elements are laid out densely in row-major order (computed from the shape and strides, not stored).</summary>
    internal bool _contiguous => Backprop.Shape.IsContiguous(_shape, _strides);

    private bool _requiresGrad => _extra?.RequiresGrad ?? false;

    /// <summary>Takes ownership of <paramref name="shape"/> and <paramref name="strides"/> (never mutated afterwards).</summary>
    internal Tensor(Storage storage, int offset, int[] shape, int[] strides)
    {
        _storage = storage;
        _offset = offset;
        _shape = shape;
        _strides = strides;
        long n = Backprop.Shape.Product(shape);
        if (n > int.MaxValue)
            throw new ArgumentException($"Tensor: shape {Backprop.Shape.Format(shape)} has {n} elements, more than the supported {int.MaxValue}.");
        _numel = (int)n;
    }

    /// <summary>A contiguous tensor over a new storage; takes ownership of <paramref name="shape"/>.</summary>
    internal Tensor(Storage storage, int[] shape) : this(storage, 0, shape, ShapeCache.ContiguousStrides(shape)) { }

    /// <summary>Wraps the storage of <paramref name="other"/> (used by <see cref="Parameter"/>).</summary>
    protected Tensor(Tensor other)
    {
        _storage = other._storage;
        _offset = other._offset;
        _shape = other._shape;
        _strides = other._strides;
        _numel = other._numel;
    }

    // ---------------------------------------------------------------- shape and layout

    /// <summary>The size of each dimension.</summary>
    public Shape Shape => new(_shape, share: true);

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements.</summary>
    public int NumElements => _numel;

    /// <summary>Element type.</summary>
    public DType DType => _storage.DType;

    /// <summary>Size of dimension <paramref name="dim"/> (negative counts from the end).</summary>
    public int Size(int dim) => _shape[NormalizeDim(dim, Rank, "Size")];

    /// <summary>Element strides of each dimension.</summary>
    public IReadOnlyList<int> Strides => _strides;

    /// <summary>True when elements are laid out row-major without gaps.</summary>
    public bool IsContiguous => _contiguous;

    /// <summary>Offset of the first element in the underlying storage.</summary>
    internal int Offset => _offset;

    internal static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            s[i] = acc;
            acc *= Math.Max(shape[i], 1);
        }
        return s;
    }


    internal static int NormalizeDim(int dim, int rank, string op)
    {
        int d = dim < 0 ? dim + rank : dim;
        if ((uint)d >= (uint)Math.Max(rank, 0) && !(rank == 0 && (dim == 0 || dim == -1)))
            throw new ArgumentOutOfRangeException(nameof(dim), dim,
                $"{op}: dimension {dim} is out of range for a tensor of rank {rank} (expected {-Math.Max(rank, 1)}..{Math.Max(rank, 1) - 1}).");
        return rank == 0 ? 0 : d;
    }

    // ---------------------------------------------------------------- device and backend

    /// <summary>The device this tensor's buffer lives on.</summary>
    public Backends.Device Device => _storage.Backend.Device;

    /// <summary>The backend that computes on this tensor.</summary>
    internal Backends.IBackend Backend => _storage.Backend;

    /// <summary>What a backend kernel sees of this tensor (allocates nothing).</summary>
    internal Backends.View V => new(_storage, _offset, _shape, _strides, _numel, _contiguous);

    /// <summary>Version of the buffer: incremented by every in-place write.</summary>
    internal int Version => _storage.Version;

    /// <summary>Another view of this tensor's buffer (no copy, not recorded).</summary>
    internal Tensor Alias(int offset, int[] shape, int[] strides) => new(_storage, offset, shape, strides);

    /// <summary>A view over this storage whose shape and strides are the interned copies of these spans (no per-view arrays).</summary>
    internal Tensor Alias(int offset, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides) =>
        new(_storage, offset, ShapeCache.Intern(shape), ShapeCache.Intern(strides));

    /// <summary>Pending-gradient slots of a backward pass that refer to this tensor's buffer.</summary>
    internal ref int EngineRefs => ref _storage.EngineRefs;

    /// <summary>Drops one pending-gradient reference; a backward temporary nobody refers to goes back to the pool.</summary>
    internal void Unref()
    {
        if (--_storage.EngineRefs <= 0 && _storage.BackwardTemp) _storage.Release();
    }

    /// <summary>Keeps this tensor's buffer from being recycled (it is handed to the user).</summary>
    internal void MarkEscaped() => _storage.Escaped = true;

    /// <summary>Recycles the buffer if it is op-internal scratch (when the node that saved it is released).</summary>
    internal void ReleaseIfScratch()
    {
        if (_storage.Scratch) _storage.Release();
    }

    /// <summary>A copy of this tensor on <paramref name="device"/> (this tensor itself if it is already there; not recorded).</summary>
    public Tensor To(Backends.Device device)
    {
        if (device == Device) return this;
        var host = ToHostArray();
        var y = Allocate(_shape, DType, Backends.Backend.For(device));
        switch (host)
        {
            case float[] f: y.Backend.Upload<float>(f, y.V); break;
            case double[] d: y.Backend.Upload<double>(d, y.V); break;
            case long[] l: y.Backend.Upload<long>(l, y.V); break;
            case bool[] b: y.Backend.Upload<bool>(b, y.V); break;
        }
        return y;
    }

    // ---------------------------------------------------------------- typed access (CPU backend only)

    /// <summary>The CPU backend's array (host code that knows the tensor is on the CPU: data loading, file IO).</summary>
    internal T[] Data<T>() where T : unmanaged => ((Backends.Cpu.CpuStorage<T>)_storage).Data;

    /// <summary>True when this tensor's buffer was recycled (reading it would throw).</summary>
    internal bool IsReleased => _storage.Released;

    /// <summary>The elements as a span; only for contiguous tensors.</summary>
    internal Span<T> Span<T>() where T : unmanaged
    {
        Debug.Assert(_contiguous);
        // an empty view may start past the end of its storage (narrowing an empty tensor)
        return _numel == 0 ? default : ((Backends.Cpu.CpuStorage<T>)_storage).Data.AsSpan(_offset, _numel);
    }

    /// <summary>The tensor itself if contiguous, else a contiguous copy (not recorded).</summary>
    internal Tensor ContiguousData() => _contiguous ? this : Dispatch.ToContiguous(this);

    // ---------------------------------------------------------------- autograd state

    /// <summary>
    /// Whether gradients flow to this tensor. Settable on leaves only; a tensor produced by an
    /// operation on something that requires grad requires grad itself.
    /// </summary>
    public bool RequiresGrad
    {
        get => _gradFn != null || _requiresGrad;
        set
        {
            if (_gradFn != null)
                throw new InvalidOperationException(
                    $"RequiresGrad can only be set on leaf tensors; this tensor was produced by {_gradFn.Name}. Use Detach() to get a leaf.");
            if (value && !DType.IsFloatingPoint())
                throw new InvalidOperationException($"RequiresGrad: only floating-point tensors can require gradients, this one is {DType.Name()}.");
            if (value || _extra != null) NewExtra().RequiresGrad = value;
        }
    }

    /// <summary>Sets <see cref="RequiresGrad"/> and returns this tensor (for chaining).</summary>
    public Tensor RequiresGrad_(bool value = true)
    {
        RequiresGrad = value;
        return this;
    }

    private Tensor? _grad => _extra?.Grad;

    /// <summary>The accumulated gradient of a leaf (or of a tensor that called <see cref="RetainGrad"/>).</summary>
    public Tensor? Grad
    {
        get => _grad;
        set
        {
            if (value != null) value._storage.Escaped = true; // a gradient the user can reach is never recycled
            if (value != null || _extra != null) NewExtra().Grad = value;
        }
    }

    /// <summary>True for tensors not produced by a recorded operation.</summary>
    public bool IsLeaf => _gradFn == null;

    /// <summary>The operation that produced this tensor (null for leaves).</summary>
    public Node? GradFn => _gradFn;

    /// <summary>
    /// A tensor sharing this one's storage but cut from the graph (requires no grad). The storage is
    /// then kept even if it was produced inside a <see cref="TensorScope"/>.
    /// </summary>
    public Tensor Detach()
    {
        _storage.Escaped = true;
        return new(_storage, _offset, _shape, _strides);
    }

    /// <summary>A view without the graph, for internal use: unlike <see cref="Detach"/> it does not keep the storage alive past its scope.</summary>
    internal Tensor NoGraph() => _gradFn == null && !_requiresGrad ? this : new(_storage, _offset, _shape, _strides);

    /// <summary>Marks this op-internal tensor as scratch: it is recycled when the node that saved it is released.</summary>
    internal Tensor MarkScratch()
    {
        _storage.Scratch = true;
        return this;
    }

    /// <summary>Keeps this non-leaf tensor's gradient in <see cref="Grad"/> after backward.</summary>
    public Tensor RetainGrad()
    {
        if (_gradFn != null) _gradFn.RetainTarget = this;
        return this;
    }

    /// <summary>
    /// Computes the gradient of this tensor with respect to every leaf that requires grad,
    /// accumulating (+=) into their <see cref="Grad"/>. A scalar needs no
    /// <paramref name="gradient"/>; any other tensor needs one of its own shape.
    /// </summary>
    /// <param name="gradient">dL/dthis; defaults to 1 for a scalar.</param>
    /// <param name="retainGraph">Keep the graph so that Backward can run through it again (always kept with <paramref name="createGraph"/>).</param>
    /// <param name="createGraph">
    /// Record the backward pass itself, so that the gradients it leaves in <see cref="Grad"/> are part
    /// of a graph and can be differentiated again (second and higher derivatives).
    /// </param>
    public void Backward(Tensor? gradient = null, bool retainGraph = false, bool createGraph = false) =>
        Engine.Backward(this, gradient, retainGraph, createGraph);

    internal TensorHooks? _hooks
    {
        get => _extra?.Hooks;
        set { if (value != null || _extra != null) NewExtra().Hooks = value; }
    }

    /// <summary>
    /// Registers a hook that sees the gradient of this tensor during backward and may replace it by
    /// returning a tensor of the same shape (or return null to keep it). On a leaf it runs once per
    /// backward pass on the whole gradient, before it is added into <see cref="Grad"/>; on a non-leaf,
    /// before the gradient flows on to the inputs. Outside a <c>createGraph</c> pass the gradient is a
    /// temporary of the pass: <see cref="Detach"/> or clone it to keep it. Dispose the result to remove the hook.
    /// </summary>
    public IDisposable RegisterHook(Func<Tensor, Tensor?> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        if (!RequiresGrad)
            throw new InvalidOperationException($"RegisterHook: tensor of shape {Shape} does not require grad, so no gradient will reach a hook on it.");
        if (_gradFn != null)
        {
            var list = _gradFn.Hooks ??= [];
            list.Add(hook);
            return new HookHandle(() => list.Remove(hook));
        }
        var hooks = _hooks ??= new TensorHooks();
        hooks.Gradient.Add(hook);
        return new HookHandle(() => hooks.Remove(this, hook));
    }

    /// <summary>
    /// On a leaf (a parameter): runs <paramref name="hook"/> with the leaf once per backward pass, right
    /// after the last contribution of that pass has been added into its <see cref="Grad"/>, while the
    /// rest of the backward pass may still be running (like PyTorch's register_post_accumulate_grad_hook;
    /// data-parallel training starts communicating a gradient from here). Not run by
    /// <see cref="Gradients"/>.Compute, which leaves Grad alone. Dispose the result to remove the hook.
    /// </summary>
    public IDisposable RegisterPostAccumulateGradHook(Action<Tensor> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        if (_gradFn != null)
            throw new InvalidOperationException($"RegisterPostAccumulateGradHook: only leaf tensors accumulate gradients; this one was produced by {_gradFn.Name}.");
        if (!RequiresGrad)
            throw new InvalidOperationException($"RegisterPostAccumulateGradHook: tensor of shape {Shape} does not require grad.");
        var hooks = _hooks ??= new TensorHooks();
        hooks.PostAccumulate.Add(hook);
        return new HookHandle(() => hooks.Remove(this, hook));
    }

    /// <summary>Adds <paramref name="g"/> (of this tensor's shape) into this tensor's gradient.</summary>
    internal void AccumulateGrad(Tensor g)
    {
        if (!RequiresGrad) return;
        if (!g._shape.AsSpan().SequenceEqual(_shape))
            throw new InvalidOperationException(
                $"Backward: a gradient of shape {Backprop.Shape.Format(g._shape)} reached a tensor of shape {Backprop.Shape.Format(_shape)}" +
                (_gradFn != null ? $" produced by {_gradFn.Name}" : "") + " (internal error in an op's backward).");
        if (_gradFn != null)
            _gradFn.AccumulateOutputGrad(g);
        else
            Engine.AccumulateLeaf(this, g);
    }

    /// <summary>Records that <see cref="Storage"/> changed in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void BumpVersion() => _storage.Version++;
}

public partial class Tensor
{
    /// <summary>PyTorch-style printout of the values, with the shape, a non-default dtype and the grad_fn.</summary>
    public override string ToString() => TensorFormatter.Format(this);
}

/// <summary>The hooks registered on a leaf tensor.</summary>
internal sealed class TensorHooks
{
    public readonly List<Func<Tensor, Tensor?>> Gradient = [];
    public readonly List<Action<Tensor>> PostAccumulate = [];

    public void Remove(Tensor owner, Delegate hook)
    {
        if (hook is Func<Tensor, Tensor?> g) Gradient.Remove(g);
        if (hook is Action<Tensor> p) PostAccumulate.Remove(p);
        if (Gradient.Count == 0 && PostAccumulate.Count == 0 && owner._hooks == this) owner._hooks = null; // back on the fast path
    }
}

/// <summary>Removes a hook when disposed (a second dispose does nothing).</summary>
internal sealed class HookHandle(Action remove) : IDisposable
{
    private Action? _remove = remove;

    public void Dispose()
    {
        _remove?.Invoke();
        _remove = null;
    }
}
