using Backprop.Backends.Cpu;

namespace Backprop.Tests;

/// <summary>Tests that change <see cref="Threads.Count"/> or exercise the worker pool run alone, not beside other test classes.</summary>
[Collection("Threads")]
public class GemmTests
{
    /// <summary>A row-major matrix as stored: rows×cols with row stride ld; padding holds NaN so reading it shows up.</summary>
    private sealed class Stored
    {
        public readonly float[] Data;
        public readonly int Rows, Cols, Ld;

        public Stored(int rows, int cols, int ld, Random rng, float padding = float.NaN)
        {
            Rows = rows; Cols = cols; Ld = ld;
            Data = new float[Math.Max(1, rows * ld)];
            Array.Fill(Data, padding);
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    Data[i * ld + j] = (float)(rng.NextDouble() * 2 - 1);
        }

        public float this[int i, int j] => Data[i * Ld + j];
    }

    private static Stored MakeA(bool transA, int m, int k, int pad, Random rng) =>
        transA ? new Stored(k, m, m + pad, rng) : new Stored(m, k, k + pad, rng);

    private static Stored MakeB(bool transB, int k, int n, int pad, Random rng) =>
        transB ? new Stored(n, k, k + pad, rng) : new Stored(k, n, n + pad, rng);

    private static float OpA(Stored a, bool transA, int i, int q) => transA ? a[q, i] : a[i, q];
    private static float OpB(Stored b, bool transB, int q, int j) => transB ? b[j, q] : b[q, j];

    /// <summary>Checks C against a double-precision triple loop, with an error budget scaled by Σ|a||b| and k.</summary>
    private static void AssertProduct(bool transA, bool transB, int m, int n, int k, float alpha, Stored a, Stored b,
        float beta, float[] c0, float[] c, int ldc)
    {
        double eps = 2.5e-7 * (k + 8);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0, mag = 0;
                for (int q = 0; q < k; q++)
                {
                    double t = (double)OpA(a, transA, i, q) * OpB(b, transB, q, j);
                    s += t;
                    mag += Math.Abs(t);
                }
                double expected = alpha * s, scale = Math.Abs(alpha) * mag;
                if (beta != 0)
                {
                    expected += beta * (double)c0[i * ldc + j];
                    scale += Math.Abs(beta * c0[i * ldc + j]);
                }
                double got = c[i * ldc + j];
                if (!(Math.Abs(got - expected) <= eps * scale + 1e-30))
                    Assert.Fail($"C[{i},{j}] = {got}, expected {expected} (tolerance {eps * scale}); " +
                        $"m={m} n={n} k={k} transA={transA} transB={transB} alpha={alpha} beta={beta}");
            }
            // Columns past n inside the stride belong to someone else and must be untouched.
            for (int j = n; j < ldc && i * ldc + j < c.Length; j++)
                Assert.Equal(BitConverter.SingleToInt32Bits(c0[i * ldc + j]), BitConverter.SingleToInt32Bits(c[i * ldc + j]));
        }
    }

    /// <summary>Runs <paramref name="body"/> with <see cref="Threads.Count"/> set to <paramref name="threads"/>, then restores it.</summary>
    private static void WithThreads(int threads, Action body)
    {
        int saved = Threads.Count;
        try
        {
            Threads.Count = threads;
            body();
        }
        finally { Threads.Count = saved; }
    }

    private static void RunCase(bool transA, bool transB, int m, int n, int k, float alpha, float beta,
        int pad = 0, int seed = 1)
    {
        var rng = new Random(seed * 7919 + m * 31 + n * 17 + k);
        var a = MakeA(transA, m, k, pad, rng);
        var b = MakeB(transB, k, n, pad, rng);
        int ldc = n + pad;
        var c0 = new float[Math.Max(1, m * ldc)];
        for (int i = 0; i < c0.Length; i++)
            c0[i] = beta == 0 ? float.NaN : (float)(rng.NextDouble() * 2 - 1);
        if (pad > 0)
            for (int i = 0; i < m; i++)
                for (int j = n; j < ldc; j++) c0[i * ldc + j] = 12345f;
        var c = (float[])c0.Clone();
        Gemm.Sgemm(transA, transB, m, n, k, alpha, a.Data, a.Ld, b.Data, b.Ld, beta, c, ldc);
        AssertProduct(transA, transB, m, n, k, alpha, a, b, beta, c0, c, ldc);
    }

    public static TheoryData<int, int, int> OddSizes()
    {
        var data = new TheoryData<int, int, int>();
        int[] sizes = [1, 2, 7, 17, 33, 65, 127];
        // Every size appears in each of the three dimensions across the combinations below.
        for (int x = 0; x < sizes.Length; x++)
        {
            data.Add(sizes[x], sizes[(x + 2) % sizes.Length], sizes[(x + 5) % sizes.Length]);
            data.Add(sizes[(x + 3) % sizes.Length], sizes[x], sizes[(x + 1) % sizes.Length]);
            data.Add(sizes[(x + 4) % sizes.Length], sizes[(x + 6) % sizes.Length], sizes[x]);
        }
        data.Add(127, 127, 127);
        data.Add(1, 1, 1);
        data.Add(65, 65, 1);
        data.Add(1, 127, 127);
        data.Add(127, 1, 127);
        return data;
    }

    [Theory]
    [MemberData(nameof(OddSizes))]
    public void OddSizesAllTransposes(int m, int n, int k)
    {
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                RunCase(ta, tb, m, n, k, 1f, 0f);
    }

    public static TheoryData<bool, bool> AllTransposes() => new() { { false, false }, { false, true }, { true, false }, { true, true } };

    /// <summary>Runs every (m, n, k) in the cross product with beta = 0 over NaN, beta = 1 and a padded stride.</summary>
    private static void RunGrid(bool transA, bool transB, int[] ms, int[] ns, int[] ks)
    {
        foreach (int m in ms)
            foreach (int n in ns)
                foreach (int k in ks)
                {
                    RunCase(transA, transB, m, n, k, 1f, 0f);
                    RunCase(transA, transB, m, n, k, -0.5f, 1f, pad: 3);
                }
    }

    [Theory]
    [MemberData(nameof(AllTransposes))]
    public void SmallKAroundThresholds(bool transA, bool transB)
    {
        // k up to Gemm.SmallK reads B (and a transposed A) in place; rows and columns around the
        // 12×32 tile edges, and k on both sides of the threshold.
        RunGrid(transA, transB, [2, 11, 12, 13, 25], [2, 31, 32, 33, 65], [1, 16, Gemm.SmallK, Gemm.SmallK + 1]);
    }

    [Theory]
    [MemberData(nameof(AllTransposes))]
    public void DotProductShapesAroundThresholds(bool transA, bool transB)
    {
        // With B transposed, m or n up to Gemm.DotMaxSide take 4×4 dot-product blocks; k around
        // the 16-lane vector (masked remainder) and a long k, m and n around the 4-wide blocks.
        int d = Gemm.DotMaxSide;
        RunGrid(transA, transB, [2, 3, 5, d, d + 1], [3, 4, 17, d + 1], [33, 47, 48, 49, 784]);
        RunGrid(transA, transB, [d + 1, 40], [2, 7, d], [35, 300]);
    }

    [Theory]
    [MemberData(nameof(AllTransposes))]
    public void PackingEdges(bool transA, bool transB)
    {
        // The packed path with every packing edge: partial 12-row and 32-column panels, k
        // remainders of the 16×16 transposes, and k split into two blocks (k > 512).
        RunGrid(transA, transB, [17, 23, 24, 25], [17, 31, 32, 33, 49], [33, 47, 48, 63, 65]);
        RunCase(transA, transB, 37, 45, 530, 1f, 0f, pad: 1);
    }

    [Theory]
    [MemberData(nameof(AllTransposes))]
    public unsafe void EveryPathComputesTheSameProduct(bool transA, bool transB)
    {
        // Each algorithm on shapes its heuristics would send elsewhere, so all of them are checked
        // on edge tiles, masked k remainders and both narrow and wide kernels.
        (int m, int n, int k)[] shapes = [(10, 16, 784), (16, 784, 10), (10, 784, 16), (3, 5, 7), (13, 17, 40),
            (25, 47, 33), (24, 100, 130), (37, 16, 70), (5, 48, 100), (30, 10, 600)];
        foreach (var (m, n, k) in shapes)
            foreach (float beta in new[] { 0f, 1f })
                for (int path = 0; path < 4; path++)
                {
                    int pad = beta == 0 ? 0 : 3;
                    var rng = new Random(m * 131 + n * 17 + k + path);
                    var a = MakeA(transA, m, k, pad, rng);
                    var b = MakeB(transB, k, n, pad, rng);
                    int ldc = n + pad;
                    var c0 = new float[m * ldc];
                    for (int i = 0; i < c0.Length; i++) c0[i] = beta == 0 ? float.NaN : (float)(rng.NextDouble() * 2 - 1);
                    var c = (float[])c0.Clone();
                    bool ran;
                    fixed (float* pa = a.Data, pb = b.Data, pc = c)
                        ran = Gemm.SgemmVia(path, transA, transB, m, n, k, -0.5f, pa, a.Ld, pb, b.Ld, beta, pc, ldc);
                    if (ran) AssertProduct(transA, transB, m, n, k, -0.5f, a, b, beta, c0, c, ldc);
                }
    }

    [Theory]
    [MemberData(nameof(AllTransposes))]
    public void TallNarrowProductsGoInRowBlocks(bool transA, bool transB)
    {
        // The direct and dot paths pack or gather A about 1 MiB at a time: 300 rows by k = 1000
        // take two blocks (n = 10 and 16: dot products with B transposed, else the direct path).
        RunCase(transA, transB, 300, 10, 1000, 1f, 0f);
        RunCase(transA, transB, 300, 16, 1000, -0.5f, 1f, pad: 2);
    }

    [Theory]
    [InlineData(30, 40, 20)]   // direct path, several row tiles
    [InlineData(10, 40, 200)]  // direct path, one row tile (B read in place whatever its stride)
    [InlineData(100, 90, 60)]  // packed
    public void PowerOfTwoStrides(int m, int n, int k)
    {
        // Row strides of 512 floats put every row of a panel read in place into the same few
        // cache sets; the direct path then packs such panels. The result must not depend on it.
        const int ld = 512;
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                var rng = new Random(m + n + k);
                var a = ta ? new Stored(k, m, ld, rng) : new Stored(m, k, ld, rng);
                var b = tb ? new Stored(n, k, ld, rng) : new Stored(k, n, ld, rng);
                var c0 = new float[m * ld];
                Array.Fill(c0, float.NaN);
                var c = (float[])c0.Clone();
                Gemm.Sgemm(ta, tb, m, n, k, 1f, a.Data, ld, b.Data, ld, 0f, c, ld);
                AssertProduct(ta, tb, m, n, k, 1f, a, b, 0f, c0, c, ld);
            }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void LargerThanCacheBlocks(bool transA, bool transB)
    {
        // Exceeds MC and KC in m and k, and spans several column blocks per thread in n.
        RunCase(transA, transB, 300, 513, 270, 1f, 0f);
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 2)]
    public void BPackedByTheFirstRowOfTiles(bool transA, int threads)
    {
        // A plain B in whole 32-column panels is packed by the first row of tiles as it reads it
        // (with two threads splitting rows, each packs its own copy): edge rows, two k blocks with
        // beta applied once, a row stride off the vector width, and (37×300, split by columns) one
        // thread's columns in whole panels beside the other's 140 that are packed separately.
        WithThreads(threads, () =>
        {
            RunCase(transA, false, 150, 96, 600, -0.5f, 1f, pad: 3);
            RunCase(transA, false, 37, 300, 530, 1f, 0f);
            RunCase(transA, false, 300, 512, 70, 2f, 0.5f, pad: 1);
        });
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void APackedByTheFirstTileOfEachRow(int threads)
    {
        // A plain A in whole 12-row panels is packed by the first tile of each row of tiles as it
        // reads it; the tiles after it, and later column blocks, read the packed panel. Cases: a
        // partial last panel packed up front, two column blocks (n > 256) and two k blocks, beta
        // applied once, a row stride off the vector width, the first tile both packing B and A,
        // a B packed separately (transposed), and a first tile narrower than a full panel.
        WithThreads(threads, () =>
        {
            RunCase(false, false, 150, 300, 600, -0.5f, 1f, pad: 3);
            RunCase(false, true, 150, 300, 600, 1f, 0f, pad: 1);
            RunCase(false, false, 100, 20, 530, 2f, 0.5f);
            RunCase(false, true, 61, 40, 300, 1f, 0f);
        });
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void BSharedByThreadsIsPackedOnFirstUse(bool transA, bool transB)
    {
        // With more rows per thread than one MC block, two threads share one packed B, each
        // packing the panels it reaches first: three whole panels (a plain B packed by the
        // kernel), a 4-column edge panel packed separately, two k blocks, and strides padded.
        WithThreads(2, () =>
        {
            RunCase(transA, transB, 2000, 100, 600, 1f, 0.5f, pad: 3);
        });
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void RowBlocksDealtOutAsThreadsFinishMatchTheFixedSplitBitForBit(bool transA, bool transB)
    {
        // 1237 rows are enough row blocks for the dynamic split with either kernel (a partial last
        // tile row), 440 columns end in a partial panel, and k = 600 is two k blocks with beta
        // applied once: the product is right, and the same floats as with one fixed range per thread.
        const int m = 1237, n = 440, k = 600;
        int blocks = Gemm.DynamicRowBlocks(m, n, k, 2, out int blockTiles);
        Assert.True(blocks >= 2 * Gemm.RowBlocksPerThread && blockTiles >= Gemm.MinRowBlockTiles, $"{blocks} blocks of {blockTiles} tile rows");
        // Checked against the reference once (the fixed split it is compared with below is
        // checked in every combination by the tests above).
        if (!transA && !transB) WithThreads(2, () => RunCase(transA, transB, m, n, k, -0.5f, 0.5f, pad: 3));
        var rng = new Random(11);
        var a = MakeA(transA, m, k, 0, rng);
        var b = MakeB(transB, k, n, 0, rng);
        var dealt = new float[m * n];
        var fixedSplit = new float[m * n];
        WithThreads(2, () =>
        {
            Gemm.Sgemm(transA, transB, m, n, k, 1f, a.Data, a.Ld, b.Data, b.Ld, 0f, dealt, n);
            try
            {
                Gemm.DynamicRows = false;
                Assert.Equal(0, Gemm.DynamicRowBlocks(m, n, k, 2, out _));
                Gemm.Sgemm(transA, transB, m, n, k, 1f, a.Data, a.Ld, b.Data, b.Ld, 0f, fixedSplit, n);
            }
            finally { Gemm.DynamicRows = true; }
        });
        AssertSameFloats(dealt, fixedSplit, "with row blocks dealt out", "with a fixed split");
    }

    [Fact]
    public void SmallProductsKeepTheFixedSplit()
    {
        // Too few tile rows for three blocks per thread, one thread, a B too large to share, or
        // too few multiply-adds (the GPT row's 2048×512×128).
        Assert.Equal(0, Gemm.DynamicRowBlocks(300, 3000, 3000, 2, out _));
        Assert.Equal(0, Gemm.DynamicRowBlocks(4000, 300, 300, 1, out _));
        Assert.Equal(0, Gemm.DynamicRowBlocks(4000, 9000, 1000, 2, out _));
        Assert.Equal(0, Gemm.DynamicRowBlocks(2048, 512, 128, 2, out _));
        Assert.True(Gemm.DynamicRowBlocks(4000, 300, 300, 2, out _) > 0);
    }

    [Theory]
    [InlineData(150, 300, 600, 1)]
    [InlineData(150, 300, 600, 2)]
    [InlineData(2000, 100, 600, 2)]
    public void PackingAsItGoesMatchesPackingUpFrontBitForBit(int m, int n, int k, int threads)
    {
        // Packing inside the kernel changes where the values are copied, not the arithmetic: the
        // results must be the same floats as with A (and a shared B) packed before any tile runs.
        var rng = new Random(5);
        var a = MakeA(false, m, k, 0, rng);
        var b = MakeB(false, k, n, 0, rng);
        var fused = new float[m * n];
        var upFront = new float[m * n];
        int saved = Threads.Count;
        try
        {
            Threads.Count = threads;
            Gemm.Sgemm(false, false, m, n, k, 1f, a.Data, a.Ld, b.Data, b.Ld, 0f, fused, n);
            Gemm.FuseAPacking = Gemm.PackBOnFirstUse = false;
            Gemm.Sgemm(false, false, m, n, k, 1f, a.Data, a.Ld, b.Data, b.Ld, 0f, upFront, n);
        }
        finally
        {
            Threads.Count = saved;
            Gemm.FuseAPacking = Gemm.PackBOnFirstUse = true;
        }
        AssertSameFloats(fused, upFront, "packed as it goes", "packed up front");
    }

    private static void AssertSameFloats(float[] x, float[] y, string xName, string yName)
    {
        Assert.Equal(x.Length, y.Length);
        for (int i = 0; i < x.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(x[i]) == BitConverter.SingleToInt32Bits(y[i]),
                $"element {i}: {x[i]} {xName}, {y[i]} {yName}");
    }

    /// <summary>
    /// `.ci/run` runs this class again with AVX-512 (and then AVX2) switched off in the runtime, so that
    /// every micro-kernel is tested on an AVX-512 machine; this checks the switch really took effect
    /// (a renamed runtime knob would otherwise test the same kernel three times and pass).
    /// </summary>
    [Fact]
    public void TheKernelCiAsksForIsTheOneInUse()
    {
        var expected = Environment.GetEnvironmentVariable("BACKPROP_EXPECT_GEMM_KERNEL");
        if (string.IsNullOrEmpty(expected)) return;
        Assert.StartsWith(expected, Gemm.Describe());
    }

    [Fact]
    public void WiderThanColumnBlockSingleThreaded()
    {
        // n beyond NC (2048) on one thread exercises the outermost loop; pad tests strides there too.
        WithThreads(1, () =>
        {
            RunCase(false, true, 400, 2100, 300, -0.5f, 1f, pad: 3);
        });
    }

    [Theory]
    [InlineData(0f, 17, 33, 65)]
    [InlineData(1f, 17, 33, 65)]
    [InlineData(1f, 130, 70, 300)]
    [InlineData(0.25f, 65, 129, 40)]
    [InlineData(0.25f, 3, 5, 7)]
    [InlineData(0f, 150, 100, 90)]
    public void AlphaBeta(float beta, int m, int n, int k)
    {
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                RunCase(ta, tb, m, n, k, -0.5f, beta);
                RunCase(ta, tb, m, n, k, 1f, beta);
            }
    }

    [Theory]
    [InlineData(5, 7, 9)]
    [InlineData(33, 17, 65)]
    [InlineData(100, 70, 260)]
    [InlineData(1, 50, 20)]
    [InlineData(50, 1, 20)]
    public void StridesLargerThanRows(int m, int n, int k)
    {
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                RunCase(ta, tb, m, n, k, 1f, 0f, pad: 5);
                RunCase(ta, tb, m, n, k, 2f, 1f, pad: 13);
            }
    }

    [Fact]
    public void ZeroK_ScalesC()
    {
        var c = new float[] { 1, 2, float.NaN, 4 };
        Gemm.Sgemm(false, false, 2, 2, 0, 1f, ReadOnlySpan<float>.Empty, 1, ReadOnlySpan<float>.Empty, 2, 0f, c, 2);
        Assert.Equal(new float[] { 0, 0, 0, 0 }, c);
        c = [1, 2, 3, 4];
        Gemm.Sgemm(false, false, 2, 2, 0, 1f, ReadOnlySpan<float>.Empty, 1, ReadOnlySpan<float>.Empty, 2, 0.5f, c, 2);
        Assert.Equal(new float[] { 0.5f, 1, 1.5f, 2 }, c);
    }

    [Fact]
    public void EmptyOutputIsNoOp()
    {
        var c = new float[] { float.NaN };
        Gemm.Sgemm(false, false, 0, 5, 3, 1f, ReadOnlySpan<float>.Empty, 3, new float[15], 5, 0f, Span<float>.Empty, 5);
        Gemm.Sgemm(false, false, 5, 0, 3, 1f, new float[15], 3, ReadOnlySpan<float>.Empty, 1, 0f, Span<float>.Empty, 1);
        Assert.True(float.IsNaN(c[0]));
    }

    [Theory]
    [InlineData(200, 300, 250, true)]
    [InlineData(301, 250, 200, false)]  // packed, split by rows
    [InlineData(8, 8, 8, false)]
    [InlineData(1, 8000, 300, true)]    // direct dot products, split by columns
    [InlineData(3000, 1, 800, true)]    // direct dot products, split by rows
    [InlineData(5000, 16, 30, false)]   // direct row form, split by rows
    [InlineData(128, 256, 784, true)]   // packed, split by columns, A packed by both threads together
    [InlineData(256, 784, 128, false)]  // packed, split by rows, B packed by both threads together
    [InlineData(300, 200, 600, true)]   // packed, shared operand in two k blocks
    [InlineData(40, 2080, 1100, false)] // packed, split by rows, shared B above 2^21 floats in three k blocks
    [InlineData(10, 2000, 300, true)]   // dot products, split by columns
    [InlineData(20, 3000, 100, false)]  // direct path (few rows), split by columns
    [InlineData(3000, 40, 20, false)]   // direct path (short k), split by rows
    public void OneAndTwoThreadsAgree(int m, int n, int k, bool transB)
    {
        foreach (bool transA in new[] { false, true })
        {
            var rng = new Random(42);
            var a = MakeA(transA, m, k, 0, rng);
            var b = MakeB(transB, k, n, 0, rng);
            var c1 = new float[m * n];
            var c2 = new float[m * n];
            Array.Fill(c2, float.NaN);
            int saved = Threads.Count;
            try
            {
                Threads.Count = 1;
                Gemm.Sgemm(transA, transB, m, n, k, 1f, a.Data, a.Ld, b.Data, b.Ld, 0f, c1, n);
                Threads.Count = 2;
                Gemm.Sgemm(transA, transB, m, n, k, 1f, a.Data, a.Ld, b.Data, b.Ld, 0f, c2, n);
            }
            finally { Threads.Count = saved; }
            for (int i = 0; i < c1.Length; i++)
                Assert.True(Math.Abs(c1[i] - c2[i]) <= 1e-5f * (1 + Math.Abs(c1[i])), $"element {i}: {c1[i]} vs {c2[i]} (transA={transA})");
            AssertProduct(transA, transB, m, n, k, 1f, a, b, 0f, c1, c2, n);
        }
    }

    [Theory]
    [InlineData(20, 10, 16, 784, 0L, 1L)]   // tiny network layer, shared weights: split by item
    [InlineData(3, 130, 140, 150, 1L, 0L)]  // big items, shared B: split within each product
    [InlineData(5, 17, 9, 33, 1L, 1L)]
    public void BatchedWithBroadcast(int batch, int m, int n, int k, long shareA, long shareB)
    {
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                var rng = new Random(batch + m + n + k);
                int aSize = m * k, bSize = k * n, cSize = m * n;
                long strideA = shareA == 0 ? 0 : aSize, strideB = shareB == 0 ? 0 : bSize;
                var items = Enumerable.Range(0, batch).Select(_ => (A: MakeA(ta, m, k, 0, rng), B: MakeB(tb, k, n, 0, rng))).ToArray();
                var a = new float[strideA == 0 ? aSize : batch * aSize];
                var b = new float[strideB == 0 ? bSize : batch * bSize];
                for (int i = 0; i < batch; i++)
                {
                    if (strideA != 0 || i == 0) items[i].A.Data.AsSpan(0, aSize).CopyTo(a.AsSpan((int)(i * strideA)));
                    if (strideB != 0 || i == 0) items[i].B.Data.AsSpan(0, bSize).CopyTo(b.AsSpan((int)(i * strideB)));
                }
                var c0 = new float[batch * cSize];
                for (int i = 0; i < c0.Length; i++) c0[i] = (float)rng.NextDouble();
                var c = (float[])c0.Clone();
                Gemm.SgemmBatched(batch, ta, tb, m, n, k, 0.75f, a, ta ? m : k, strideA, b, tb ? k : n, strideB, 1f, c, n, cSize);
                for (int i = 0; i < batch; i++)
                {
                    var ai = strideA == 0 ? items[0].A : items[i].A;
                    var bi = strideB == 0 ? items[0].B : items[i].B;
                    AssertProduct(ta, tb, m, n, k, 0.75f, ai, bi, 1f, c0.AsSpan(i * cSize, cSize).ToArray(),
                        c.AsSpan(i * cSize, cSize).ToArray(), n);
                }
            }
    }

    [Fact]
    public void BatchedSharedOutputAccumulates()
    {
        // strideC = 0 with beta = 1 sums the products into one C, e.g. a weight gradient over a batch.
        var rng = new Random(3);
        int batch = 4, m = 20, n = 30, k = 40;
        var a = MakeA(false, m * batch, k, 0, rng);
        var b = MakeB(false, k, n, 0, rng);
        var c = new float[m * n];
        Gemm.SgemmBatched(batch, false, false, m, n, k, 1f, a.Data, k, m * k, b.Data, n, 0, 1f, c, n, 0);
        var expected = new float[m * n];
        var stacked = new float[m * n * batch];
        Gemm.Sgemm(false, false, m * batch, n, k, 1f, a.Data, k, b.Data, n, 0f, stacked, n);
        for (int i = 0; i < batch; i++)
            for (int j = 0; j < m * n; j++) expected[j] += stacked[i * m * n + j];
        for (int j = 0; j < m * n; j++) Assert.Equal(expected[j], c[j], 1e-4f);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void DgemmMatchesReference(bool transA, bool transB)
    {
        var rng = new Random(11);
        foreach (var (m, n, k) in new[] { (1, 1, 1), (7, 17, 33), (33, 2, 65), (65, 127, 17), (16, 16, 0) })
        {
            int pad = 2;
            int aRows = transA ? k : m, aCols = transA ? m : k, bRows = transB ? n : k, bCols = transB ? k : n;
            int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
            var a = Enumerable.Range(0, Math.Max(1, aRows * lda)).Select(_ => rng.NextDouble() - 0.5).ToArray();
            var b = Enumerable.Range(0, Math.Max(1, bRows * ldb)).Select(_ => rng.NextDouble() - 0.5).ToArray();
            foreach (double beta in new[] { 0.0, 1.0, -0.3 })
            {
                var c0 = Enumerable.Range(0, m * ldc).Select(_ => beta == 0 ? double.NaN : rng.NextDouble()).ToArray();
                var c = (double[])c0.Clone();
                Gemm.Dgemm(transA, transB, m, n, k, -0.5, a, lda, b, ldb, beta, c, ldc);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int q = 0; q < k; q++)
                            s += (transA ? a[q * lda + i] : a[i * lda + q]) * (transB ? b[j * ldb + q] : b[q * ldb + j]);
                        double expected = -0.5 * s + (beta == 0 ? 0 : beta * c0[i * ldc + j]);
                        Assert.Equal(expected, c[i * ldc + j], 1e-12);
                    }
            }
        }
    }

    [Fact]
    public void DgemmBatchedBroadcastsSharedOperand()
    {
        var a = new double[] { 1, 2, 3, 4 };                 // shared 2×2
        var b = new double[] { 1, 0, 0, 1, 2, 0, 0, 2 };     // two 2×2 items
        var c = new double[8];
        Gemm.DgemmBatched(2, false, false, 2, 2, 2, 1.0, a, 2, 0, b, 2, 4, 0.0, c, 2, 4);
        Assert.Equal(new double[] { 1, 2, 3, 4, 2, 4, 6, 8 }, c);
    }

    [Fact]
    public unsafe void WarmCallsDoNotAllocate()
    {
        WithThreads(2, () =>
        {
            var a = new float[300 * 300];
            var b = new float[2_200_000];
            var c = new float[300 * 300];
            void Calls()
            {
                Gemm.Sgemm(false, false, 300, 300, 300, 1f, a, 300, b, 300, 0f, c, 300);      // packed, 2 threads
                Gemm.Sgemm(true, true, 60, 70, 80, 1f, a, 60, b, 80, 1f, c, 70);              // packed, 1 thread
                Gemm.Sgemm(false, false, 10, 16, 16, 1f, a, 16, b, 16, 0f, c, 16);            // direct
                Gemm.Sgemm(true, true, 3, 50, 20, 1f, a, 3, b, 20, 0f, c, 50);                // direct, dot products
                Gemm.Sgemm(false, false, 1, 2000, 1100, 1f, a, 1100, b, 2000, 0f, c, 2000);  // direct, 2 threads
                Gemm.Sgemm(false, true, 128, 256, 300, 1f, a, 300, b, 300, 0f, c, 256);      // packed, 2 threads, shared A
                Gemm.Sgemm(true, false, 300, 256, 128, 1f, a, 300, b, 256, 0f, c, 256);      // packed, 2 threads, B per thread
                Gemm.Sgemm(false, false, 2000, 32, 600, 1f, b, 600, b, 32, 0f, c, 32);       // packed, 2 threads, B shared, packed on first use
                Gemm.Sgemm(false, true, 10, 16, 784, 1f, a, 784, b, 784, 0f, c, 16);         // dot products
                Gemm.Sgemm(true, false, 16, 784, 10, 1f, a, 16, b, 784, 1f, c, 784);         // direct, short k
                Gemm.Sgemm(false, false, 20, 3000, 100, 1f, a, 100, b, 3000, 0f, c, 3000);   // direct, few rows, 2 threads
                fixed (float* pa = a, pb = b, pc = c)
                {
                    Gemm.SgemmBatched(8, false, false, 10, 16, 20, 1f, pa, 20, 200, pb, 16, 0, 0f, pc, 16, 160);
                    Gemm.SgemmBatched(2, false, true, 150, 150, 150, 1f, pa, 150, 0, pb, 150, 0, 0f, pc, 150, 0);
                }
            }
            Calls();
            Calls();
            // Counted on the calling thread, which runs chunk 0 of every parallel region through the
            // same code as the workers; the process-wide count would include the test runner's own
            // threads. The first window may still see one-off allocations from tiered compilation.
            long fewest = long.MaxValue;
            for (int window = 0; window < 5; window++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < 20; i++) Calls();
                fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
            }
            Assert.True(fewest == 0, $"{fewest} bytes allocated by 20 rounds of warm GEMM calls");
        });
    }

    [Fact]
    public void SpanOverloadsRejectShortOrMisstridedArguments()
    {
        var ok = new float[100];
        var e = Assert.Throws<ArgumentException>(() =>
            Gemm.Sgemm(false, false, 4, 5, 6, 1f, new float[23], 6, ok, 5, 0f, ok, 5));
        Assert.Equal("a", e.ParamName);
        Assert.Contains("24", e.Message);
        Assert.Contains("23", e.Message);

        e = Assert.Throws<ArgumentException>(() =>
            Gemm.Sgemm(false, true, 4, 5, 6, 1f, ok, 6, new float[29], 6, 0f, ok, 5));
        Assert.Equal("b", e.ParamName);
        Assert.Contains("30", e.Message);

        e = Assert.Throws<ArgumentException>(() =>
            Gemm.Sgemm(false, false, 4, 5, 6, 1f, ok, 6, ok, 5, 0f, new float[25], 7));
        Assert.Equal("c", e.ParamName);
        Assert.Contains("26", e.Message);
        Assert.Contains("25", e.Message);

        e = Assert.Throws<ArgumentException>(() =>
            Gemm.Sgemm(true, false, 4, 5, 6, 1f, ok, 3, ok, 5, 0f, ok, 5));
        Assert.Equal("lda", e.ParamName);

        Assert.Throws<ArgumentOutOfRangeException>(() =>
            Gemm.Sgemm(false, false, -1, 5, 6, 1f, ok, 6, ok, 5, 0f, ok, 5));

        e = Assert.Throws<ArgumentException>(() =>
            Gemm.SgemmBatched(3, false, false, 2, 2, 2, 1f, ok, 2, 4, ok, 2, 0, 0f, new float[11], 2, 4));
        Assert.Equal("c", e.ParamName);
        Assert.Contains("12", e.Message);

        e = Assert.Throws<ArgumentException>(() =>
            Gemm.Dgemm(false, false, 2, 2, 2, 1.0, new double[3], 2, new double[4], 2, 0.0, new double[4], 2));
        Assert.Equal("a", e.ParamName);
    }
}
