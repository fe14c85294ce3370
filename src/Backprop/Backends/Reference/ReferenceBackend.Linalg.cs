namespace Backprop.Backends.Reference;

// Matrix products, softmax, cross-entropy, gathers and scatters, written as the definitions.
internal sealed partial class ReferenceBackend
{
    /// <summary>The multi-index of row-major element <paramref name="flat"/> of <paramref name="shape"/>.</summary>
    private static int[] Unflatten(int[] shape, int flat)
    {
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            int n = Math.Max(shape[d], 1);
            idx[d] = flat % n;
            flat /= n;
        }
        return idx;
    }

    private static int At(in View v, int[] idx)
    {
        int p = v._offset;
        for (int d = 0; d < idx.Length; d++) p += idx[d] * v._strides[d];
        return p;
    }

    public void MatMul(in View a, in View b, in View y, float beta)
    {
        var sa = S(a);
        var sb = S(b);
        var sy = S(y);
        int m = a._shape[^2], k = a._shape[^1], n = b._shape[^1];
        int batchRank = y.Rank - 2;
        var batchShape = y._shape[..batchRank];
        int batches = (int)Shape.Product(batchShape);
        var sab = new int[batchRank];
        var sbb = new int[batchRank];
        for (int i = 0; i < batchRank; i++)
        {
            int ja = i - (batchRank - (a.Rank - 2)), jb = i - (batchRank - (b.Rank - 2));
            sab[i] = ja < 0 || a._shape[ja] == 1 ? 0 : a._strides[ja];
            sbb[i] = jb < 0 || b._shape[jb] == 1 ? 0 : b._strides[jb];
        }
        for (int t = 0; t < batches; t++)
        {
            int oa = Position(batchShape, sab, a._offset, t), ob = Position(batchShape, sbb, b._offset, t);
            int oy = Position(batchShape, y._strides.AsSpan(0, batchRank), y._offset, t);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double acc = 0;
                    for (int p = 0; p < k; p++)
                        acc += sa.Get(oa + i * a._strides[^2] + p * a._strides[^1]) * sb.Get(ob + p * b._strides[^2] + j * b._strides[^1]);
                    int py = oy + i * y._strides[^2] + j * y._strides[^1];
                    sy.Set(py, beta == 0 ? acc : acc + beta * sy.Get(py));
                }
        }
    }

    public void Gemm(bool transA, bool transB, int m, int n, int k, in View a, in View b, float beta, in View c)
    {
        var sa = S(a);
        var sb = S(b);
        var sc = S(c);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double acc = 0;
                for (int p = 0; p < k; p++)
                    acc += sa.Get(a._offset + (transA ? p * m + i : i * k + p)) * sb.Get(b._offset + (transB ? j * k + p : p * n + j));
                int pc = c._offset + i * n + j;
                sc.Set(pc, beta == 0 ? acc : acc + beta * sc.Get(pc));
            }
    }

    public void AddRowSums(in View m, in View acc)
    {
        var sm = S(m);
        var sa = S(acc);
        int cols = acc._numel;
        int rows = cols == 0 ? 0 : m._numel / cols;
        for (int j = 0; j < cols; j++)
        {
            double sum = 0;
            for (int i = 0; i < rows; i++) sum += sm.Get(m._offset + i * cols + j);
            sa.Set(acc._offset + j, sa.Get(acc._offset + j) + sum);
        }
    }

    public void SoftmaxRows(in View x, in View y, bool log)
    {
        var sx = S(x);
        var sy = S(y);
        int cols = x._shape[^1];
        int rows = cols == 0 ? 0 : x._numel / cols;
        for (int r = 0; r < rows; r++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < cols; j++) max = Math.Max(max, sx.Get(x._offset + r * cols + j));
            if (double.IsNegativeInfinity(max)) max = 0;
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += Math.Exp(sx.Get(x._offset + r * cols + j) - max);
            for (int j = 0; j < cols; j++)
            {
                double v = sx.Get(x._offset + r * cols + j) - max;
                sy.Set(y._offset + r * cols + j, log ? v - Math.Log(sum) : Math.Exp(v) / sum);
            }
        }
    }

    public int CrossEntropy(in View logits, in View target, in View logp, in View output, LossReduction reduction, long ignoreIndex, double labelSmoothing)
    {
        int n = logits._shape[0], c = logits._shape[1];
        var st = S(target);
        for (int i = 0; i < n; i++)
        {
            long cls = st.GetLong(target._offset + i);
            if (cls != ignoreIndex && (cls < 0 || cls >= c)) throw IndexErrors.ClassOutOfRange("CrossEntropy", cls, i, c);
        }
        SoftmaxRows(logits, logp, log: true);
        var sl = S(logp);
        var so = S(output);
        double total = 0;
        int counted = 0;
        for (int i = 0; i < n; i++)
        {
            long cls = st.GetLong(target._offset + i);
            double l = 0;
            if (cls != ignoreIndex)
            {
                double rowSum = 0;
                for (int j = 0; j < c; j++) rowSum += sl.Get(logp._offset + i * c + j);
                l = -(1 - labelSmoothing) * sl.Get(logp._offset + i * c + (int)cls) - labelSmoothing / c * rowSum;
                counted++;
            }
            if (reduction == LossReduction.None) so.Set(output._offset + i, l);
            total += l;
        }
        if (reduction != LossReduction.None)
            so.Set(output._offset, reduction == LossReduction.Sum ? total : counted == 0 ? double.NaN : total / counted);
        return counted;
    }

    public void CrossEntropyBackward(in View logp, in View target, in View dy, in View grad, LossReduction reduction, long ignoreIndex, double denominator, double labelSmoothing)
    {
        var sl = S(logp);
        var st = S(target);
        var sd = S(dy);
        var sg = S(grad);
        int n = target._numel, c = n == 0 ? 0 : logp._numel / n;
        for (int i = 0; i < n; i++)
        {
            long cls = st.GetLong(target._offset + i);
            double scale = reduction == LossReduction.None ? sd.Get(dy._offset + i) : sd.Get(dy._offset) / denominator;
            for (int j = 0; j < c; j++)
            {
                double q = labelSmoothing / c + (j == cls ? 1 - labelSmoothing : 0);
                double g = cls == ignoreIndex ? 0 : (Math.Exp(sl.Get(logp._offset + i * c + j)) - q) * scale;
                sg.Set(grad._offset + i * c + j, g);
            }
        }
    }

    public void Gather(in View x, int dim, in View index, in View y)
    {
        var sx = S(x);
        var si = S(index);
        var sy = S(y);
        int size = x._shape[dim];
        for (int flat = 0; flat < index._numel; flat++)
        {
            var idx = Unflatten(index._shape, flat);
            long v = si.GetLong(At(index, idx));
            long w = v < 0 ? v + size : v;
            if (w < 0 || w >= size) throw IndexErrors.OutOfRange("Gather", v, dim, size, index._shape, flat);
            idx[dim] = (int)w;
            int px = At(x, idx);
            if (x.DType == DType.Int64) sy.SetLong(y._offset + flat, sx.GetLong(px));
            else sy.Set(y._offset + flat, sx.Get(px));
        }
    }

    public void ScatterAdd(in View target, int dim, in View index, in View src)
    {
        var st = S(target);
        var si = S(index);
        var ss = S(src);
        int size = target._shape[dim];
        for (int flat = 0; flat < index._numel; flat++)
        {
            var idx = Unflatten(index._shape, flat);
            long v = si.GetLong(At(index, idx));
            long w = v < 0 ? v + size : v;
            if (w < 0 || w >= size) throw IndexErrors.OutOfRange("ScatterAdd", v, dim, size, index._shape, flat);
            double add = ss.Get(At(src, idx));
            idx[dim] = (int)w;
            int pt = At(target, idx);
            st.Set(pt, st.Get(pt) + add);
        }
    }

    public void IndexSelect(in View x, int dim, int[] index, in View y)
    {
        var sx = S(x);
        var sy = S(y);
        for (int flat = 0; flat < y._numel; flat++)
        {
            var idx = Unflatten(y._shape, flat);
            int py = At(y, idx);
            idx[dim] = index[idx[dim]];
            int px = At(x, idx);
            if (x.DType == DType.Int64) sy.SetLong(py, sx.GetLong(px));
            else sy.Set(py, sx.Get(px));
        }
    }

    public void IndexAdd(in View target, int dim, int[] index, in View src)
    {
        var st = S(target);
        var ss = S(src);
        for (int flat = 0; flat < src._numel; flat++)
        {
            var idx = Unflatten(src._shape, flat);
            double add = ss.Get(At(src, idx));
            idx[dim] = index[idx[dim]];
            int pt = At(target, idx);
            st.Set(pt, st.Get(pt) + add);
        }
    }

    public void EmbeddingForward(in View weight, in View ids, in View y)
    {
        var sw = S(weight);
        var si = S(ids);
        var sy = S(y);
        int num = weight._shape[0], dim = weight._shape[1];
        for (int i = 0; i < ids._numel; i++)
        {
            long id = si.GetLong(ids._offset + i);
            if (id < 0 || id >= num) throw IndexErrors.EmbeddingOutOfRange(id, i, num);
            for (int j = 0; j < dim; j++) sy.Set(y._offset + i * dim + j, sw.Get(weight._offset + (int)id * dim + j));
        }
    }

    public void EmbeddingBackward(in View dy, in View ids, in View target)
    {
        var sd = S(dy);
        var si = S(ids);
        var st = S(target);
        int dim = target._shape[1];
        for (int i = 0; i < ids._numel; i++)
        {
            int id = (int)si.GetLong(ids._offset + i);
            for (int j = 0; j < dim; j++)
            {
                int p = target._offset + id * dim + j;
                st.Set(p, st.Get(p) + sd.Get(dy._offset + i * dim + j));
            }
        }
    }
}
