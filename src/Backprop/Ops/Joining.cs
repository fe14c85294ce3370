using Backprop.Autograd;
using Backprop.Backends;

namespace Backprop;

// Concat, Stack, Split, Chunk. Pieces of a split are views; the backward of Concat hands each
// input a view of the output gradient.
public partial class Tensor
{
    /// <summary>Joins tensors along an existing dimension; all other dimensions must match.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int dim = 0)
    {
        if (tensors.Count == 0) throw new ArgumentException("Concat: needs at least one tensor.");
        var first = tensors[0];
        int d = NormalizeDim(dim, first.Rank, "Concat");
        if (first.Rank == 0) throw new ShapeException("Concat: zero-dimensional tensors cannot be concatenated; use Stack.");
        int total = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            if (t.DType != first.DType)
                throw new ArgumentException($"Concat: tensor {i} is {t.DType.Name()} but tensor 0 is {first.DType.Name()}.");
            if (t.Rank != first.Rank)
                throw new ShapeException($"Concat: tensor {i} has shape {t.Shape} but tensor 0 has shape {first.Shape}: ranks differ.");
            for (int j = 0; j < t.Rank; j++)
                if (j != d && t._shape[j] != first._shape[j])
                    throw new ShapeException($"Concat: tensor {i} has shape {t.Shape} but tensor 0 has shape {first.Shape}: dimension {j} differs (concatenating along {d}).");
            total += t._shape[d];
        }
        var shape = (int[])first._shape.Clone();
        shape[d] = total;
        var y = Empty(shape, first.DType, first.Backend);
        int offset = 0;
        foreach (var t in tensors)
        {
            Dispatch.CopyInto(t, y.NarrowView(d, offset, t._shape[d]));
            offset += t._shape[d];
        }
        var inputs = tensors.ToArray();
        Engine.RecordMany(y, "Concat", new ConcatBackward(inputs, d), inputs);
        return y;
    }

    private readonly struct ConcatBackward(Tensor[] inputs, int dim) : IBackward
    {
        public void Backward(Tensor dy)
        {
            int off = 0;
            foreach (var t in inputs)
            {
                int len = t._shape[dim];
                if (t.RequiresGrad) t.AccumulateGrad(Engine.CreateGraph ? dy.Narrow(dim, off, len) : dy.NarrowView(dim, off, len));
                off += len;
            }
        }
    }

    /// <summary>Joins tensors of equal shape along a new dimension.</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int dim = 0)
    {
        if (tensors.Count == 0) throw new ArgumentException("Stack: needs at least one tensor.");
        var first = tensors[0];
        int d = dim < 0 ? dim + first.Rank + 1 : dim;
        if (d < 0 || d > first.Rank)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Stack: dimension {dim} is out of range for tensors of rank {first.Rank}.");
        for (int i = 1; i < tensors.Count; i++)
            if (!tensors[i].Shape.Equals(first.Shape))
                throw new ShapeException($"Stack: tensor {i} has shape {tensors[i].Shape} but tensor 0 has shape {first.Shape}; all must be equal.");
        var unsqueezed = new Tensor[tensors.Count];
        for (int i = 0; i < unsqueezed.Length; i++) unsqueezed[i] = tensors[i].Unsqueeze(d);
        return Concat(unsqueezed, d);
    }

    /// <summary>Splits into pieces of <paramref name="splitSize"/> along dim (the last may be smaller); the pieces are views.</summary>
    public Tensor[] Split(int splitSize, int dim = 0)
    {
        if (splitSize <= 0) throw new ArgumentOutOfRangeException(nameof(splitSize), splitSize, "Split: size must be positive.");
        int d = NormalizeDim(dim, Rank, "Split");
        var sizes = new List<int>();
        for (int s = 0; s < _shape[d]; s += splitSize) sizes.Add(Math.Min(splitSize, _shape[d] - s));
        return Split(sizes.ToArray(), d);
    }

    /// <summary>Splits into pieces of the given sizes along dim, which must add up to that dimension; the pieces are views.</summary>
    public Tensor[] Split(int[] sizes, int dim = 0)
    {
        int d = NormalizeDim(dim, Rank, "Split");
        if (sizes.Sum() != _shape[d] || sizes.Any(s => s < 0))
            throw new ShapeException($"Split: sizes {Backprop.Shape.Format(sizes)} do not add up to dimension {dim} of size {_shape[d]} (shape {Shape}).");
        var parts = new Tensor[sizes.Length];
        int off = 0;
        for (int i = 0; i < sizes.Length; i++)
        {
            parts[i] = Narrow(d, off, sizes[i]);
            off += sizes[i];
        }
        return parts;
    }

    /// <summary>Splits into <paramref name="chunks"/> nearly equal pieces along dim (like torch.chunk).</summary>
    public Tensor[] Chunk(int chunks, int dim = 0)
    {
        if (chunks <= 0) throw new ArgumentOutOfRangeException(nameof(chunks), chunks, "Chunk: count must be positive.");
        int d = NormalizeDim(dim, Rank, "Chunk");
        int size = (_shape[d] + chunks - 1) / chunks;
        return Split(Math.Max(size, 1), d);
    }

    /// <summary>A view of start..start+length along an already-normalized dim (not recorded).</summary>
    internal Tensor NarrowView(int d, int start, int length)
    {
        Span<int> shape = stackalloc int[Rank];
        _shape.CopyTo(shape);
        shape[d] = length;
        return Alias(_offset + start * _strides[d], shape, _strides);
    }
}
