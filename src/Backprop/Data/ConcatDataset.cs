using System.Buffers;

namespace Backprop.Data;

/// <summary>
/// Several datasets one after the other (PyTorch's <c>ConcatDataset</c>): the samples of the first,
/// then those of the second, and so on. Samples must share input and target shapes and dtypes to be
/// batched together. A batch whose samples all come from one part is built by that part's
/// <see cref="Dataset.GetBatch"/> (keeping a <see cref="TensorDataset"/>'s fast row copies); a mixed
/// batch asks each part once for its samples and interleaves the rows.
/// </summary>
public sealed class ConcatDataset : Dataset
{
    private readonly Dataset[] _parts;
    private readonly int[] _starts; // _starts[i] = index of part i's first sample; _starts[^1] = Count

    /// <summary>Concatenates <paramref name="datasets"/> (at least one) in order.</summary>
    /// <exception cref="ArgumentException">No datasets, or more than int.MaxValue samples in all.</exception>
    public ConcatDataset(params IEnumerable<Dataset> datasets)
    {
        ArgumentNullException.ThrowIfNull(datasets);
        _parts = [.. datasets];
        if (_parts.Length == 0)
            throw new ArgumentException("ConcatDataset: give at least one dataset.", nameof(datasets));
        _starts = new int[_parts.Length + 1];
        long total = 0;
        for (int i = 0; i < _parts.Length; i++)
        {
            if (_parts[i] is null) throw new ArgumentNullException(nameof(datasets), $"ConcatDataset: dataset {i} is null.");
            _starts[i] = (int)total;
            total += _parts[i].Count;
            if (total > int.MaxValue)
                throw new ArgumentException($"ConcatDataset: the datasets hold {total} samples in all, more than {int.MaxValue}.", nameof(datasets));
        }
        _starts[^1] = (int)total;
        ClassNames = _parts[0].ClassNames;
    }

    /// <summary>The concatenated datasets, in order.</summary>
    public IReadOnlyList<Dataset> Datasets => _parts;

    /// <inheritdoc/>
    public override int Count => _starts[^1];

    /// <inheritdoc/>
    public override (Tensor Input, Tensor Target) this[int index]
    {
        get
        {
            int p = Part(CheckIndex(index));
            return _parts[p][index - _starts[p]];
        }
    }

    /// <summary>The part holding global sample <paramref name="index"/> (skipping empty parts).</summary>
    private int Part(int index)
    {
        int p = Array.BinarySearch(_starts, 0, _parts.Length, index);
        if (p < 0) return ~p - 1;
        while (p + 1 < _parts.Length && _starts[p + 1] == index) p++; // empty parts start where the next one does
        return p;
    }

    /// <inheritdoc/>
    public override Batch GetBatch(ReadOnlySpan<int> indices)
    {
        if (indices.IsEmpty)
            throw new ArgumentException("ConcatDataset.GetBatch: no indices given; a batch needs at least one sample.", nameof(indices));
        int n = indices.Length;
        var part = ArrayPool<int>.Shared.Rent(n);
        var local = ArrayPool<int>.Shared.Rent(n);
        try
        {
            bool onePart = true;
            for (int i = 0; i < n; i++)
            {
                int p = Part(CheckIndex(indices[i]));
                part[i] = p;
                local[i] = indices[i] - _starts[p];
                onePart &= p == part[0];
            }
            if (onePart) return _parts[part[0]].GetBatch(local.AsSpan(0, n));
            return Mixed(part.AsSpan(0, n), local.AsSpan(0, n));
        }
        finally
        {
            ArrayPool<int>.Shared.Return(part);
            ArrayPool<int>.Shared.Return(local);
        }
    }

    private Batch Mixed(ReadOnlySpan<int> part, ReadOnlySpan<int> local)
    {
        int n = part.Length;
        var rows = new int[n];
        var ids = new int[n];
        Tensor? x = null, y = null;
        int firstPart = -1;
        for (int p = 0; p < _parts.Length; p++)
        {
            int k = 0;
            for (int i = 0; i < n; i++)
                if (part[i] == p) { ids[k] = local[i]; rows[k++] = i; }
            if (k == 0) continue;
            var sub = _parts[p].GetBatch(ids.AsSpan(0, k));
            if (x is null || y is null)
            {
                x = Tensor.Empty(BatchShape(n, sub.Input.Select(0, 0)), sub.Input.DType);
                y = Tensor.Empty(BatchShape(n, sub.Target.Select(0, 0)), sub.Target.DType);
                firstPart = p;
            }
            CheckSameLayout("input", sub.Input, x, p, firstPart);
            CheckSameLayout("target", sub.Target, y, p, firstPart);
            ScatterRows(sub.Input, x, rows.AsSpan(0, k));
            ScatterRows(sub.Target, y, rows.AsSpan(0, k));
        }
        return new Batch(x!, y!);
    }

    private void CheckSameLayout(string what, Tensor sub, Tensor batch, int p, int firstPart)
    {
        if (sub.DType != batch.DType || !sub._shape.AsSpan(1).SequenceEqual(batch._shape.AsSpan(1)))
            throw new ShapeException(
                $"ConcatDataset.GetBatch: dataset {p} ({_parts[p].GetType().Name}) has {what}s of {sub.DType.Name()} {Shape(sub)} but dataset {firstPart} " +
                $"({_parts[firstPart].GetType().Name}) has {batch.DType.Name()} {Shape(batch)}; samples stacked into one batch must share shape and dtype.");
    }

    private static string Shape(Tensor batch) => $"[{string.Join(", ", batch._shape.Skip(1))}]";

    /// <summary>Row j of <paramref name="src"/> goes to row rows[j] of the contiguous <paramref name="dst"/>.</summary>
    private static void ScatterRows(Tensor src, Tensor dst, ReadOnlySpan<int> rows)
    {
        var s = src.ContiguousData();
        int row = rows.Length == 0 ? 0 : s.NumElements / rows.Length;
        for (int j = 0; j < rows.Length; j++)
            switch (dst.DType)
            {
                case DType.Float32: s.Span<float>().Slice(j * row, row).CopyTo(dst.Span<float>().Slice(rows[j] * row, row)); break;
                case DType.Float64: s.Span<double>().Slice(j * row, row).CopyTo(dst.Span<double>().Slice(rows[j] * row, row)); break;
                case DType.Bool: s.Span<bool>().Slice(j * row, row).CopyTo(dst.Span<bool>().Slice(rows[j] * row, row)); break;
                default: s.Span<long>().Slice(j * row, row).CopyTo(dst.Span<long>().Slice(rows[j] * row, row)); break;
            }
    }
}
