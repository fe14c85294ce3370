using System.Numerics;

namespace Backprop.Kernels;

// The direct path for products too small for packing to pay off (tiny layers, batch of 10), and
// for matrix-vector shapes (m = 1 or n = 1) where packing has no reuse to exploit. It reads A and
// B where they lie; the per-call cost is a few branches, no buffers except a k-float gather.
public static unsafe partial class Gemm
{
    // Columns of C given to one thread are a multiple of this, so each keeps whole vector blocks.
    private static int SmallColumnUnit => 4 * Vector<float>.Count;

    /// <summary>Computes C[m0..m1, n0..n1] directly, choosing the loop order that reads B contiguously.</summary>
    private static void SmallRange(ref Problem p, int m0, int m1, int n0, int n1)
    {
        // op(B) columns are contiguous when B is stored transposed, and trivially when n = 1 with a
        // unit stride; then each C element is a dot product. Otherwise op(B) rows are contiguous
        // and each C row is a sum of scaled B rows.
        if (p.TransB || (p.N == 1 && p.Ldb == 1))
            SmallDots(ref p, m0, m1, n0, n1);
        else
            SmallRows(ref p, m0, m1, n0, n1);
    }

    /// <summary>C[i, j..] = alpha·Σ_q op(A)[i, q]·B[q, j..] + beta·C, with accumulators kept in registers over all of k.</summary>
    private static void SmallRows(ref Problem p, int m0, int m1, int n0, int n1)
    {
        int w = Vector<float>.Count, k = p.K;
        nint ldb = p.Ldb;
        nint aRow = p.TransA ? 1 : p.Lda, aCol = p.TransA ? p.Lda : 1;
        float alpha = p.Alpha, beta = p.Beta;
        var va = new Vector<float>(alpha);
        var vb = new Vector<float>(beta);
        for (int i = m0; i < m1; i++)
        {
            float* ai = p.A + i * aRow;
            float* ci = p.C + i * p.Ldc;
            int j = n0;
            for (; j + 4 * w <= n1; j += 4 * w)
            {
                Vector<float> c0 = default, c1 = default, c2 = default, c3 = default;
                float* bq = p.B + j;
                float* aq = ai;
                for (int q = 0; q < k; q++, bq += ldb, aq += aCol)
                {
                    var x = new Vector<float>(*aq);
                    c0 = Vector.MultiplyAddEstimate(x, Vector.Load(bq), c0);
                    c1 = Vector.MultiplyAddEstimate(x, Vector.Load(bq + w), c1);
                    c2 = Vector.MultiplyAddEstimate(x, Vector.Load(bq + 2 * w), c2);
                    c3 = Vector.MultiplyAddEstimate(x, Vector.Load(bq + 3 * w), c3);
                }
                StoreScaled(c0, ci + j, va, vb, beta);
                StoreScaled(c1, ci + j + w, va, vb, beta);
                StoreScaled(c2, ci + j + 2 * w, va, vb, beta);
                StoreScaled(c3, ci + j + 3 * w, va, vb, beta);
            }
            for (; j + w <= n1; j += w)
            {
                Vector<float> c0 = default;
                float* bq = p.B + j;
                float* aq = ai;
                for (int q = 0; q < k; q++, bq += ldb, aq += aCol)
                    c0 = Vector.MultiplyAddEstimate(new Vector<float>(*aq), Vector.Load(bq), c0);
                StoreScaled(c0, ci + j, va, vb, beta);
            }
            for (; j < n1; j++)
            {
                float s = 0;
                float* bq = p.B + j;
                float* aq = ai;
                for (int q = 0; q < k; q++, bq += ldb, aq += aCol) s += *aq * *bq;
                ci[j] = beta == 0f ? alpha * s : alpha * s + beta * ci[j];
            }
        }
    }

    /// <summary>C[i, j] = alpha·dot(op(A) row i, op(B) column j) + beta·C, for op(B) columns contiguous in memory.</summary>
    private static void SmallDots(ref Problem p, int m0, int m1, int n0, int n1)
    {
        int k = p.K;
        float alpha = p.Alpha, beta = p.Beta;
        float* gather = p.TransA ? GemmBuffers.Current.A(k) : null;
        for (int i = m0; i < m1; i++)
        {
            float* ai;
            if (p.TransA)
            {
                // op(A) row i is a strided column of the stored A; one gather serves all of its dots.
                float* src = p.A + i;
                for (int q = 0; q < k; q++) gather[q] = src[q * p.Lda];
                ai = gather;
            }
            else
            {
                ai = p.A + i * p.Lda;
            }
            float* ci = p.C + i * p.Ldc;
            int j = n0;
            for (; j + 4 <= n1; j += 4)
            {
                float* b0 = p.B + j * p.Ldb;
                Dot4(ai, b0, b0 + p.Ldb, b0 + 2 * p.Ldb, b0 + 3 * p.Ldb, k,
                    out float s0, out float s1, out float s2, out float s3);
                if (beta == 0f)
                {
                    ci[j] = alpha * s0; ci[j + 1] = alpha * s1; ci[j + 2] = alpha * s2; ci[j + 3] = alpha * s3;
                }
                else
                {
                    ci[j] = alpha * s0 + beta * ci[j];
                    ci[j + 1] = alpha * s1 + beta * ci[j + 1];
                    ci[j + 2] = alpha * s2 + beta * ci[j + 2];
                    ci[j + 3] = alpha * s3 + beta * ci[j + 3];
                }
            }
            for (; j < n1; j++)
            {
                float s = Dot(ai, p.B + j * p.Ldb, k);
                ci[j] = beta == 0f ? alpha * s : alpha * s + beta * ci[j];
            }
        }
    }

    private static void Dot4(float* a, float* b0, float* b1, float* b2, float* b3, int k,
        out float s0, out float s1, out float s2, out float s3)
    {
        int w = Vector<float>.Count, q = 0;
        Vector<float> c0 = default, c1 = default, c2 = default, c3 = default;
        for (; q + w <= k; q += w)
        {
            var x = Vector.Load(a + q);
            c0 = Vector.MultiplyAddEstimate(x, Vector.Load(b0 + q), c0);
            c1 = Vector.MultiplyAddEstimate(x, Vector.Load(b1 + q), c1);
            c2 = Vector.MultiplyAddEstimate(x, Vector.Load(b2 + q), c2);
            c3 = Vector.MultiplyAddEstimate(x, Vector.Load(b3 + q), c3);
        }
        s0 = Vector.Sum(c0); s1 = Vector.Sum(c1); s2 = Vector.Sum(c2); s3 = Vector.Sum(c3);
        for (; q < k; q++)
        {
            float x = a[q];
            s0 += x * b0[q]; s1 += x * b1[q]; s2 += x * b2[q]; s3 += x * b3[q];
        }
    }

    private static float Dot(float* a, float* b, int k)
    {
        int w = Vector<float>.Count, q = 0;
        Vector<float> c0 = default, c1 = default;
        for (; q + 2 * w <= k; q += 2 * w)
        {
            c0 = Vector.MultiplyAddEstimate(Vector.Load(a + q), Vector.Load(b + q), c0);
            c1 = Vector.MultiplyAddEstimate(Vector.Load(a + q + w), Vector.Load(b + q + w), c1);
        }
        for (; q + w <= k; q += w)
            c0 = Vector.MultiplyAddEstimate(Vector.Load(a + q), Vector.Load(b + q), c0);
        float s = Vector.Sum(c0 + c1);
        for (; q < k; q++) s += a[q] * b[q];
        return s;
    }

    private static void StoreScaled(Vector<float> acc, float* c, Vector<float> alpha, Vector<float> betaV, float beta)
    {
        if (beta == 0f) Vector.Store(acc * alpha, c);
        else Vector.Store(Vector.MultiplyAddEstimate(acc, alpha, betaV * Vector.Load(c)), c);
    }
}
