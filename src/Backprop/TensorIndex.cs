namespace Backprop;

/// <summary>
/// One entry of a C# index into a tensor: an integer position (<c>t[1, ..]</c>, negative or <c>^1</c> from the
/// end; the dimension is removed), a range (<c>t[1..^1]</c>, a view of that part of the dimension; out-of-range
/// bounds are clipped as in Python slicing) or <see cref="Ellipsis"/> (all remaining dimensions).
/// </summary>
public readonly struct TensorIndex
{
    private enum Kind { Position, Span, Rest }

    private readonly Kind _kind;
    private readonly Index _index;
    private readonly Range _range;
    private readonly int _position;

    private TensorIndex(Kind kind, int position, Index index, Range range)
    {
        _kind = kind;
        _position = position;
        _index = index;
        _range = range;
    }

    /// <summary>Stands for as many full dimensions as needed (Python's <c>...</c>).</summary>
    public static TensorIndex Ellipsis => new(Kind.Rest, 0, default, default);

    /// <summary>A position (negative counts from the end).</summary>
    public static implicit operator TensorIndex(int position) => new(Kind.Position, position, default, default);

    /// <summary>A position, <c>^1</c> being the last.</summary>
    public static implicit operator TensorIndex(Index index) => new(Kind.Position, int.MinValue, index, default);

    /// <summary>A range of positions: <c>..</c> (all), <c>1..</c>, <c>..^1</c>, <c>2..5</c>.</summary>
    public static implicit operator TensorIndex(Range range) => new(Kind.Span, 0, default, range);

    internal bool IsEllipsis => _kind == Kind.Rest;

    internal bool RemovesDimension => _kind == Kind.Position;

    /// <summary>Applies this entry to dimension <paramref name="dim"/> of <paramref name="t"/>.</summary>
    internal Tensor Apply(Tensor t, int dim)
    {
        int size = t.Shape[dim];
        if (_kind == Kind.Position)
        {
            int p = _position != int.MinValue ? _position : _index.IsFromEnd ? size - _index.Value : _index.Value;
            if (p < -size || p >= size)
                throw new IndexOutOfRangeException($"Tensor index: index {(_position != int.MinValue ? p.ToString(System.Globalization.CultureInfo.InvariantCulture) : _index.ToString())} is out of range for dimension {dim} of size {size} (shape {t.Shape}).");
            return t.Select(dim, p);
        }
        int start = Bound(_range.Start, size), end = Bound(_range.End, size);
        return t.Narrow(dim, start, Math.Max(0, end - start));
    }

    private static int Bound(Index i, int size) => Math.Clamp(i.IsFromEnd ? size - i.Value : i.Value, 0, size);
}

public partial class Tensor
{
    /// <summary>
    /// A view selected with C# indices and ranges: <c>t[.., 0]</c> (column 0), <c>t[1..^1]</c> (all rows but the
    /// first and last), <c>t[^1, ..]</c>, <c>t[TensorIndex.Ellipsis, 0]</c>. Differentiable. Assigning copies a tensor
    /// (broadcast) into the selected part, in place: <c>t[.., 0] = Tensor.Zeros(3)</c>.
    /// A plain list of ints (<c>t[1, 2]</c>) reads one element as a number (the other indexer).
    /// </summary>
    [IndexerName("At")]
    public Tensor this[params TensorIndex[] indices]
    {
        get => Indexed(indices);
        set => Indexed(indices).Copy_(value);
    }

    /// <summary>
    /// The elements where <paramref name="mask"/> is nonzero, in row-major order (like <c>t[mask]</c> in PyTorch):
    /// a mask of t's shape gives a 1-D tensor; a mask over the first k dimensions gives [count, remaining dims...].
    /// Differentiable (the gradient goes back to the selected elements). The mask is a bool tensor (from a comparison);
    /// a float or int64 0/1 mask is accepted too. Assigning writes in place (see <see cref="MaskedAssign_"/>):
    /// <c>t[t &lt; 0] = Tensor.Scalar(0)</c>.
    /// </summary>
    [IndexerName("At")]
    public Tensor this[Tensor mask]
    {
        get => MaskedSelect(mask);
        set => MaskedAssign_(mask, value);
    }

    private Tensor Indexed(TensorIndex[] indices)
    {
        int ellipses = indices.Count(i => i.IsEllipsis);
        if (ellipses > 1) throw new ArgumentException("Tensor index: at most one Ellipsis.");
        int used = indices.Length - ellipses;
        if (used > Rank)
            throw new ArgumentException($"Tensor index: {used} indices for a tensor of rank {Rank} (shape {Shape}).");
        var y = this;
        int dim = 0;
        foreach (var ix in indices)
        {
            if (ix.IsEllipsis)
            {
                dim += Rank - used;
                continue;
            }
            y = ix.Apply(y, dim);
            if (!ix.RemovesDimension) dim++;
        }
        return y;
    }

    /// <summary>The elements where <paramref name="mask"/> (same shape as the leading dimensions) is true (nonzero); see the mask indexer.</summary>
    public Tensor MaskedSelect(Tensor mask)
    {
        CheckMaskShape(mask);
        var m = mask.ToDoubleArray();
        var picked = new List<long>();
        for (int i = 0; i < m.Length; i++) if (m[i] != 0) picked.Add(i);
        int lead = m.Length;
        int[] rest = _shape[mask.Rank..];
        var flat = Reshape([lead, .. rest]);
        return flat.IndexSelect(0, FromArray(picked.ToArray()).To(Device));
    }

    private void CheckMaskShape(Tensor mask)
    {
        if (mask.Rank > Rank || !_shape.AsSpan(0, mask.Rank).SequenceEqual(mask._shape))
            throw new ShapeException($"Tensor index: a mask of shape {mask.Shape} does not match the leading dimensions of shape {Shape}.");
    }

    /// <summary>
    /// In place, <c>t[mask] = value</c> (PyTorch's masked assignment): the elements where <paramref name="mask"/> (a bool
    /// tensor, or 0/1 float or int64, over the leading dimensions) is true get <paramref name="value"/>: one element
    /// (broadcast to every selected element) or a tensor that broadcasts to the selection's shape [count, remaining dims...].
    /// Float tensors only; not recorded by autograd (like the other in-place updates).
    /// </summary>
    public Tensor MaskedAssign_(Tensor mask, Tensor value)
    {
        CheckWritable("MaskedAssign_");
        CheckMaskShape(mask);
        if (!DType.IsFloatingPoint()) throw Dispatch.NotFloat("MaskedAssign_", this);
        Dispatch.BackendOf("MaskedAssign_", this, value);
        var v = value.NoGraph().To(DType);
        // the mask with a size-1 dimension for every trailing dimension, so it broadcasts over this tensor
        var wide = mask.Reshape([.. mask._shape, .. Enumerable.Repeat(1, Rank - mask.Rank)]);
        if (v.NumElements == 1)
        {
            Copy_(Where(wide, v.Reshape([]), NoGraph()));
            return this;
        }
        // scatter the values to the selected rows of a [lead, rest...] buffer, then pick them where the mask holds
        var m = mask.ToBoolArray();
        var picked = new List<long>();
        for (int i = 0; i < m.Length; i++) if (m[i]) picked.Add(i);
        int[] rest = _shape[mask.Rank..];
        int[] selShape = [picked.Count, .. rest];
        var sel = Shape.Broadcast("MaskedAssign_", v._shape, selShape);
        if (!sel.AsSpan().SequenceEqual(selShape))
            throw new ShapeException($"MaskedAssign_: a value of shape {value.Shape} does not broadcast to the {picked.Count} selected elements' shape {Backprop.Shape.Format(selShape)}.");
        var rows = FromArray(picked.ToArray()).To(Device).Reshape([picked.Count, .. Enumerable.Repeat(1, rest.Length)]).Expand(selShape).Contiguous();
        var full = Zeros([m.Length, .. rest], DType).To(Device);
        Dispatch.ScatterAddInto(full, 0, rows, v.Expand(selShape).Contiguous());
        Copy_(Where(wide, full.Reshape(_shape), NoGraph()));
        return this;
    }
}
