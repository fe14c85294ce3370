namespace Backprop.Backends;

/// <summary>
/// What a backend kernel sees of a tensor: a buffer, an offset into it, a shape and element strides
/// (0 on broadcast dimensions). Never a tensor, a graph node or the engine. A struct over arrays the
/// tensor already holds: making one allocates nothing.
/// </summary>
/// <remarks>The field names mirror the tensor's so that kernels read like the tensor code they came from.</remarks>
internal readonly struct View
{
    public readonly Storage _storage;
    public readonly int _offset;
    public readonly int[] _shape;
    public readonly int[] _strides;
    public readonly int _numel;
    public readonly bool _contiguous;

    public View(Storage storage, int offset, int[] shape, int[] strides, int numel, bool contiguous)
    {
        _storage = storage;
        _offset = offset;
        _shape = shape;
        _strides = strides;
        _numel = numel;
        _contiguous = contiguous;
    }

    /// <summary>A contiguous view of <paramref name="shape"/> over the start of <paramref name="storage"/>.</summary>
    public View(Storage storage, int[] shape) : this(storage, 0, shape, ShapeCache.ContiguousStrides(shape), (int)Backprop.Shape.Product(shape), true) { }

    public DType DType => _storage.DType;
    public int Rank => _shape.Length;
    public int NumElements => _numel;
    public bool IsContiguous => _contiguous;
    public Shape Shape => new(_shape, share: true);

    /// <summary>The same buffer seen with another shape and strides (for broadcasting and reshaping inside a kernel).</summary>
    public View With(int[] shape, int[] strides, int offset) =>
        new(_storage, offset, shape, strides, (int)Backprop.Shape.Product(shape), Backprop.Shape.IsContiguous(shape, strides));

    /// <summary>The CPU backend's array; only the CPU backend calls this.</summary>
    public T[] Data<T>() where T : unmanaged => ((Cpu.CpuStorage<T>)_storage).Data;

    /// <summary>The elements as a span (CPU backend, contiguous views only).</summary>
    public Span<T> Span<T>() where T : unmanaged => _numel == 0 ? default : Data<T>().AsSpan(_offset, _numel);
}
