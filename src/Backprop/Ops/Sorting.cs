namespace Backprop;

// Sort, Argsort, TopK, Multinomial, RandPerm. The orderings and the random draws are computed on the host
// (a copy of the values through ToDoubleArray); indices go back to the input's device as int64, and
// the values are taken with Gather, so gradients flow to the selected elements.
public partial class Tensor
{
    /// <summary>
    /// Sorts along <paramref name="dim"/> (torch.sort): the values and their int64 positions in the input.
    /// Stable (equal values keep their order); NaN counts as larger than every number, as in PyTorch.
    /// The values are differentiable (the gradient goes back to where each value came from).
    /// </summary>
    public (Tensor Values, Tensor Indices) Sort(int dim = -1, bool descending = false)
    {
        var idx = Argsort(dim, descending);
        if (Rank == 0) return (Clone(), idx);
        return (Gather(NormalizeDim(dim, Rank, "Sort"), idx), idx);
    }

    /// <summary>The int64 positions that sort the tensor along <paramref name="dim"/> (torch.argsort, stable; not differentiable).</summary>
    public Tensor Argsort(int dim = -1, bool descending = false)
    {
        if (Rank == 0) return Zeros([], DType.Int64).To(Device);
        int d = NormalizeDim(dim, Rank, "Argsort");
        int n = _shape[d], inner = 1, outer = 1;
        for (int i = d + 1; i < Rank; i++) inner *= _shape[i];
        for (int i = 0; i < d; i++) outer *= _shape[i];
        var order = new long[_numel];
        var keys = new int[n];
        Comparison<int> cmp;
        if (DType == DType.Int64)
        {
            var v = ToLongArray();
            int baseIx = 0;
            cmp = (p, q) =>
            {
                int c = v[baseIx + p * inner].CompareTo(v[baseIx + q * inner]);
                if (descending) c = -c;
                return c != 0 ? c : p.CompareTo(q);
            };
            SortRows(outer, inner, n, keys, order, b => baseIx = b, cmp);
        }
        else
        {
            var v = ToDoubleArray();
            int baseIx = 0;
            cmp = (p, q) =>
            {
                int c = v[baseIx + p * inner].CompareTo(v[baseIx + q * inner]); // NaN compares below every number here
                c = double.IsNaN(v[baseIx + p * inner]) != double.IsNaN(v[baseIx + q * inner]) ? -c : c; // NaN is the largest, as in PyTorch
                if (descending) c = -c;
                return c != 0 ? c : p.CompareTo(q);
            };
            SortRows(outer, inner, n, keys, order, b => baseIx = b, cmp);
        }
        return Wrap(order, [.. _shape]).To(Device);
    }

    private static void SortRows(int outer, int inner, int n, int[] keys, long[] order, Action<int> setBase, Comparison<int> cmp)
    {
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int b = o * n * inner + i;
                setBase(b);
                for (int k = 0; k < n; k++) keys[k] = k;
                Array.Sort(keys, cmp);
                for (int k = 0; k < n; k++) order[b + k * inner] = keys[k];
            }
    }

    /// <summary>
    /// The <paramref name="k"/> largest (or smallest) elements along <paramref name="dim"/> and their int64 positions
    /// (torch.topk), sorted; ties keep the earlier position first. The values are differentiable.
    /// </summary>
    public (Tensor Values, Tensor Indices) TopK(int k, int dim = -1, bool largest = true)
    {
        if (Rank == 0) throw new ShapeException("TopK: cannot take the top elements of a 0-dimensional tensor.");
        int d = NormalizeDim(dim, Rank, "TopK");
        if (k < 0 || k > _shape[d])
            throw new ArgumentException($"TopK: k = {k} is out of range for dimension {dim} of size {_shape[d]} (shape {Shape}).");
        var idx = Argsort(d, descending: largest).Narrow(d, 0, k).Contiguous();
        return (Gather(d, idx), idx);
    }

    /// <summary>
    /// Draws <paramref name="numSamples"/> category indices (int64) from the weights in each row of
    /// <paramref name="probs"/> (1-D [n] or 2-D [rows, n], non-negative, not necessarily normalized), like
    /// torch.multinomial; without <paramref name="replacement"/> each category is drawn at most once per row.
    /// </summary>
    public static Tensor Multinomial(Tensor probs, int numSamples, bool replacement = false, Generator? generator = null)
    {
        if (probs.Rank is < 1 or > 2) throw new ShapeException($"Multinomial: expected probabilities of shape [n] or [rows, n], got {probs.Shape}.");
        int n = probs._shape[^1], rows = probs.Rank == 2 ? probs._shape[0] : 1;
        if (numSamples <= 0) throw new ArgumentException($"Multinomial: numSamples must be positive, got {numSamples}.");
        if (!replacement && numSamples > n)
            throw new ArgumentException($"Multinomial: cannot draw {numSamples} samples without replacement from {n} categories.");
        var g = generator ?? Generator.Default;
        var p = probs.ToDoubleArray();
        var result = new long[rows * numSamples];
        var w = new double[n];
        for (int r = 0; r < rows; r++)
        {
            double total = 0;
            int positive = 0;
            for (int j = 0; j < n; j++)
            {
                double v = p[r * n + j];
                if (!(v >= 0) || double.IsInfinity(v))
                    throw new ArgumentException($"Multinomial: probabilities must be finite and non-negative; got {v} at row {r}, category {j}.");
                w[j] = v;
                total += v;
                if (v > 0) positive++;
            }
            if (total <= 0) throw new ArgumentException($"Multinomial: the weights of row {r} sum to zero.");
            if (!replacement && positive < numSamples)
                throw new ArgumentException($"Multinomial: row {r} has {positive} nonzero weights, fewer than the {numSamples} samples drawn without replacement.");
            for (int s = 0; s < numSamples; s++)
            {
                double u = g.NextDouble() * total, acc = 0;
                int pick = -1;
                for (int j = 0; j < n; j++)
                {
                    if (w[j] <= 0) continue;
                    pick = j;
                    acc += w[j];
                    if (u < acc) break;
                }
                result[r * numSamples + s] = pick;
                if (!replacement)
                {
                    total -= w[pick];
                    w[pick] = 0;
                }
            }
        }
        int[] shape = probs.Rank == 2 ? [rows, numSamples] : [numSamples];
        return Wrap(result, shape).To(probs.Device);
    }

    /// <summary>A random permutation of 0 … n−1 as an int64 tensor (torch.randperm), by Fisher–Yates.</summary>
    public static Tensor RandPerm(int n, Generator? generator = null)
    {
        if (n < 0) throw new ArgumentException($"RandPerm: n must be non-negative, got {n}.");
        var g = generator ?? Generator.Default;
        var perm = new long[n];
        for (int i = 0; i < n; i++) perm[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = g.NextInt(i + 1);
            (perm[i], perm[j]) = (perm[j], perm[i]);
        }
        return Wrap(perm, [n]);
    }
}
