using System.Numerics;

namespace Backprop.Backends.Cpu;

// The direct path, for shapes where packing costs more than it saves: tiny products (layers of a
// small network at batch 10), matrix-vector shapes (m = 1 or n = 1) and a few rows against a
// transposed B (little reuse of each packed element), and narrow outputs (n ≤ NR/2, which would
// pad most of every tile). It reads A and B where they lie; the per-call cost is a few branches
// and, for a transposed A in dot-product form, a k-float gather per row.
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
        int i = m0;
        // Four rows at a time give eight independent FMA chains per k step (enough to cover FMA
        // latency) and reuse every B load four times.
        for (; i + 4 <= m1; i += 4) SmallRows4(ref p, i, n0, n1);
        for (; i < m1; i++) SmallRow1(ref p, i, n0, n1);
    }

    private static void SmallRows4(ref Problem p, int i, int n0, int n1)
    {
        int w = Vector<float>.Count, k = p.K;
        nint ldb = p.Ldb, ldc = p.Ldc;
        nint aRow = p.TransA ? 1 : p.Lda, aCol = p.TransA ? p.Lda : 1;
        float alpha = p.Alpha, beta = p.Beta;
        var va = new Vector<float>(alpha);
        var vb = new Vector<float>(beta);
        float* a0 = p.A + i * aRow, a1 = a0 + aRow, a2 = a1 + aRow, a3 = a2 + aRow;
        float* c0 = p.C + i * ldc;
        int j = n0;
        for (; j + 2 * w <= n1; j += 2 * w)
        {
            Vector<float> s00 = default, s01 = default, s10 = default, s11 = default;
            Vector<float> s20 = default, s21 = default, s30 = default, s31 = default;
            float* bq = p.B + j;
            for (nint q = 0, qa = 0; q < k; q++, qa += aCol, bq += ldb)
            {
                var b0 = Vector.Load(bq);
                var b1 = Vector.Load(bq + w);
                var x = new Vector<float>(a0[qa]);
                s00 = Vector.MultiplyAddEstimate(x, b0, s00); s01 = Vector.MultiplyAddEstimate(x, b1, s01);
                x = new Vector<float>(a1[qa]);
                s10 = Vector.MultiplyAddEstimate(x, b0, s10); s11 = Vector.MultiplyAddEstimate(x, b1, s11);
                x = new Vector<float>(a2[qa]);
                s20 = Vector.MultiplyAddEstimate(x, b0, s20); s21 = Vector.MultiplyAddEstimate(x, b1, s21);
                x = new Vector<float>(a3[qa]);
                s30 = Vector.MultiplyAddEstimate(x, b0, s30); s31 = Vector.MultiplyAddEstimate(x, b1, s31);
            }
            float* cj = c0 + j;
            StoreScaled(s00, cj, va, vb, beta); StoreScaled(s01, cj + w, va, vb, beta); cj += ldc;
            StoreScaled(s10, cj, va, vb, beta); StoreScaled(s11, cj + w, va, vb, beta); cj += ldc;
            StoreScaled(s20, cj, va, vb, beta); StoreScaled(s21, cj + w, va, vb, beta); cj += ldc;
            StoreScaled(s30, cj, va, vb, beta); StoreScaled(s31, cj + w, va, vb, beta);
        }
        for (; j + w <= n1; j += w)
        {
            Vector<float> s0 = default, s1 = default, s2 = default, s3 = default;
            float* bq = p.B + j;
            for (nint q = 0, qa = 0; q < k; q++, qa += aCol, bq += ldb)
            {
                var b0 = Vector.Load(bq);
                s0 = Vector.MultiplyAddEstimate(new Vector<float>(a0[qa]), b0, s0);
                s1 = Vector.MultiplyAddEstimate(new Vector<float>(a1[qa]), b0, s1);
                s2 = Vector.MultiplyAddEstimate(new Vector<float>(a2[qa]), b0, s2);
                s3 = Vector.MultiplyAddEstimate(new Vector<float>(a3[qa]), b0, s3);
            }
            float* cj = c0 + j;
            StoreScaled(s0, cj, va, vb, beta); StoreScaled(s1, cj + ldc, va, vb, beta);
            StoreScaled(s2, cj + 2 * ldc, va, vb, beta); StoreScaled(s3, cj + 3 * ldc, va, vb, beta);
        }
        for (; j < n1; j++)
        {
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            float* bq = p.B + j;
            for (nint q = 0, qa = 0; q < k; q++, qa += aCol, bq += ldb)
            {
                float bv = *bq;
                s0 += a0[qa] * bv; s1 += a1[qa] * bv; s2 += a2[qa] * bv; s3 += a3[qa] * bv;
            }
            float* cj = c0 + j;
            StoreScaled(s0, cj, alpha, beta); StoreScaled(s1, cj + ldc, alpha, beta);
            StoreScaled(s2, cj + 2 * ldc, alpha, beta); StoreScaled(s3, cj + 3 * ldc, alpha, beta);
        }
    }

    private static void SmallRow1(ref Problem p, int i, int n0, int n1)
    {
        int w = Vector<float>.Count, k = p.K;
        nint ldb = p.Ldb;
        nint aCol = p.TransA ? p.Lda : 1;
        float alpha = p.Alpha, beta = p.Beta;
        var va = new Vector<float>(alpha);
        var vb = new Vector<float>(beta);
        float* ai = p.A + i * (p.TransA ? 1 : p.Lda);
        float* ci = p.C + i * p.Ldc;
        int j = n0;
        for (; j + 4 * w <= n1; j += 4 * w)
        {
            Vector<float> s0 = default, s1 = default, s2 = default, s3 = default;
            float* bq = p.B + j;
            for (nint q = 0, qa = 0; q < k; q++, qa += aCol, bq += ldb)
            {
                var x = new Vector<float>(ai[qa]);
                s0 = Vector.MultiplyAddEstimate(x, Vector.Load(bq), s0);
                s1 = Vector.MultiplyAddEstimate(x, Vector.Load(bq + w), s1);
                s2 = Vector.MultiplyAddEstimate(x, Vector.Load(bq + 2 * w), s2);
                s3 = Vector.MultiplyAddEstimate(x, Vector.Load(bq + 3 * w), s3);
            }
            StoreScaled(s0, ci + j, va, vb, beta);
            StoreScaled(s1, ci + j + w, va, vb, beta);
            StoreScaled(s2, ci + j + 2 * w, va, vb, beta);
            StoreScaled(s3, ci + j + 3 * w, va, vb, beta);
        }
        for (; j + w <= n1; j += w)
        {
            // Two interleaved partial sums halve the dependency chain.
            Vector<float> s0 = default, s1 = default;
            float* bq = p.B + j;
            nint q = 0, qa = 0;
            for (; q + 1 < k; q += 2, qa += 2 * aCol, bq += 2 * ldb)
            {
                s0 = Vector.MultiplyAddEstimate(new Vector<float>(ai[qa]), Vector.Load(bq), s0);
                s1 = Vector.MultiplyAddEstimate(new Vector<float>(ai[qa + aCol]), Vector.Load(bq + ldb), s1);
            }
            if (q < k) s0 = Vector.MultiplyAddEstimate(new Vector<float>(ai[qa]), Vector.Load(bq), s0);
            StoreScaled(s0 + s1, ci + j, va, vb, beta);
        }
        for (; j < n1; j++)
        {
            float s = 0;
            float* bq = p.B + j;
            for (nint q = 0, qa = 0; q < k; q++, qa += aCol, bq += ldb) s += ai[qa] * *bq;
            StoreScaled(s, ci + j, alpha, beta);
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
        Vector<float> c0 = default, c1 = default, c2 = default, c3 = default;
        for (; q + 4 * w <= k; q += 4 * w)
        {
            c0 = Vector.MultiplyAddEstimate(Vector.Load(a + q), Vector.Load(b + q), c0);
            c1 = Vector.MultiplyAddEstimate(Vector.Load(a + q + w), Vector.Load(b + q + w), c1);
            c2 = Vector.MultiplyAddEstimate(Vector.Load(a + q + 2 * w), Vector.Load(b + q + 2 * w), c2);
            c3 = Vector.MultiplyAddEstimate(Vector.Load(a + q + 3 * w), Vector.Load(b + q + 3 * w), c3);
        }
        for (; q + w <= k; q += w)
            c0 = Vector.MultiplyAddEstimate(Vector.Load(a + q), Vector.Load(b + q), c0);
        float s = Vector.Sum((c0 + c1) + (c2 + c3));
        for (; q < k; q++) s += a[q] * b[q];
        return s;
    }

    private static void StoreScaled(float acc, float* c, float alpha, float beta) =>
        *c = beta == 0f ? alpha * acc : alpha * acc + beta * *c;

    private static void StoreScaled(Vector<float> acc, float* c, Vector<float> alpha, Vector<float> betaV, float beta)
    {
        if (beta == 0f) Vector.Store(acc * alpha, c);
        else Vector.Store(Vector.MultiplyAddEstimate(acc, alpha, betaV * Vector.Load(c)), c);
    }
}
