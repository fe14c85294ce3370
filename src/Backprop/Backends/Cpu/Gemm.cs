using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Backends.Cpu;

/// <summary>Row-major general matrix multiply: C = alpha·op(A)·op(B) + beta·C, in float and double.</summary>
/// <remarks>
/// op(X) is X or its transpose, read in place. beta = 0 overwrites C without reading it; alpha = 0
/// (or k = 0) leaves C = beta·C without reading A or B. Sgemm is a packed, cache-blocked GEMM in the
/// GotoBLAS/BLIS structure (see <see cref="Describe"/>); Dgemm is a plain loop meant for checking.
/// </remarks>
public static unsafe partial class Gemm
{
    private static readonly delegate*<nint, float*, nint, float*, nint, float*, nint, float, float, int, int, void> Kernel;
    // For tiles at most NR/2 columns wide, when the hardware has one (else null): half the work.
    private static readonly delegate*<nint, float*, nint, float*, nint, float*, nint, float, float, int, int, void> NarrowKernel;
    private static readonly int MR, NR;
    private static readonly int MC, KC, NC;
    private static readonly string KernelName;
    // The AVX-512 direct paths (dot products, small k) are written for the 12×32 kernel's layout.
    private static readonly bool Avx512Paths;
    // Whether the kernel writes edge tiles into C itself (masked stores) or needs a scratch tile.
    private static readonly bool KernelStoresEdges;
    // The kernel's packing twins (null without them): the first row of tiles packs a plain B, and
    // the first tile of each row a plain A, as they read them (see MacroKernel).
    private static readonly delegate*<nint, float*, nint, float*, nint, float*, nint, float, float, int, float*, void> KernelPackB;
    private static readonly delegate*<nint, float*, nint, float*, nint, float*, nint, float, float, int, float*, float*, void> KernelPackA;
    private static bool FusedPacking => KernelPackA != null;

    // Below this many multiply-adds (m·n·k) packing and tile bookkeeping cost more than they save
    // (measured: the direct path wins up to about 24³ and loses from 28³ on). With B transposed the
    // direct path computes dot products, which lose to packing much earlier (above ~16³).
    internal const long SmallMnk = 16384, SmallMnkTransB = 4096;
    // With AVX-512 the direct path serves the rest: 16×16×16 runs the same either way, 8³ 1.5×
    // faster through rows of B.
    internal const long SmallMnkAvx512 = 4096;

    // Multiply-adds each extra thread must get (about 8 µs of work). Back to back, two threads
    // already win from ~80³; but a call after an idle spell pays 10-25 µs to wake the worker (in
    // this VM), which only work of this size hides. Two threads start at ~126³.
    internal const long MinMnkPerThread = 1L << 20;

    static Gemm()
    {
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            Kernel = &GemmMicroKernels.Avx512Kernel12x32;
            NarrowKernel = &GemmMicroKernels.Avx512Kernel12x16;
            KernelName = "AVX-512 12x32";
            (MR, NR) = (12, 32);
            // MR·KC·4 = 24 KiB: the A micro-panel stays in L1 (48 KiB) across a row of tiles.
            // KC·NC·4 = 512 KiB: the packed B block stays in L2 (1 MiB) while B micro-panels stream.
            // MC·KC·4 = 1.9 MiB: packed A lives in L3; a large MC means B is repacked rarely.
            // Measured on Zen 5: 960/384/512, 960/512/256 and 960/512/384 are within noise of each
            // other (±2%); MC = 120 loses 8% to repacking B, KC = 256 slightly more to C traffic.
            (MC, KC, NC) = (960, 512, 256);
            Avx512Paths = KernelStoresEdges = true;
            KernelPackB = &GemmMicroKernels.Avx512Kernel12x32PackB;
            KernelPackA = &GemmMicroKernels.Avx512Kernel12x32PackA;
        }
        else if (Avx2.IsSupported && Fma.IsSupported)
        {
            Kernel = &GemmMicroKernels.Avx2Kernel6x16;
            KernelName = "AVX2+FMA 6x16";
            (MR, NR) = (6, 16);
            // MR·KC·4 = 12 KiB A panel in L1; KC·NC·4 = 192 KiB B block in L2 (also on 512 KiB L2
            // parts). KC = 512 halves the passes over C against 256 (each a load and store of every
            // tile); a B block of this size held the L2 better than 256-384 KiB ones. In-process
            // alternating runs on a Zen 4 VM with AVX-512 off: +2-9% at 1024³ and 2048³ against
            // 960/256/192, while 960/512/112-192 lost 2-6% (docs/performance.md).
            (MC, KC, NC) = (960, 512, 96);
            KernelStoresEdges = true;
            KernelPackB = &GemmMicroKernels.Avx2Kernel6x16PackB;
            KernelPackA = &GemmMicroKernels.Avx2Kernel6x16PackA;
        }
        else
        {
            Kernel = &GemmMicroKernels.VectorKernel4xW2;
            KernelName = $"Vector<float> 4x{2 * System.Numerics.Vector<float>.Count}";
            (MR, NR) = (4, 2 * System.Numerics.Vector<float>.Count);
            (MC, KC, NC) = (512, 256, 256);
        }
        // For tuning on a new machine (docs/performance.md): BACKPROP_GEMM_BLOCKING=MC,KC,NC overrides
        // the block sizes above (MC a multiple of MR, NC of NR); anything else is ignored.
        if (Environment.GetEnvironmentVariable("BACKPROP_GEMM_BLOCKING") is { } blocking
            && blocking.Split(',') is [var mcText, var kcText, var ncText]
            && int.TryParse(mcText, out int mc) && int.TryParse(kcText, out int kc) && int.TryParse(ncText, out int nc)
            && mc > 0 && kc > 0 && nc > 0 && mc % MR == 0 && nc % NR == 0)
            (MC, KC, NC) = (mc, kc, nc);
    }

    /// <summary>Names the SGEMM micro-kernel, blocking, path thresholds and thread count in use.</summary>
    public static string Describe() =>
        $"{KernelName} micro-kernel, MC={MC} KC={KC} NC={NC}; direct path for m·n·k < {SmallMnk} " +
        $"({SmallMnkTransB} with B transposed), m or n = 1, n ≤ {NR / 2}, or m < {MR / 2} with B transposed; " +
        $"{MinMnkPerThread} multiply-adds per extra thread; threads={Threads.Count}";

    /// <summary>C[m×n] = alpha·op(A)·op(B) + beta·C for row-major float matrices addressed by pointers.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda,
        float* b, int ldb, float beta, float* c, int ldc)
    {
        CheckShape(transA, transB, m, n, k, lda, ldb, ldc);
        var p = new Problem(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        SgemmCore(ref p);
    }

    /// <summary>C[m×n] = alpha·op(A)·op(B) + beta·C for row-major float matrices held in spans.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        CheckShape(transA, transB, m, n, k, lda, ldb, ldc);
        CheckSpans(1, transA, transB, m, n, k, a.Length, lda, 0, b.Length, ldb, 0, c.Length, ldc, 0);
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
            Sgemm(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    /// <summary>
    /// <paramref name="batch"/> independent Sgemm products, item i using A + i·strideA, B + i·strideB and
    /// C + i·strideC; a stride of 0 shares that operand across items (for C: items accumulate in order).
    /// </summary>
    public static void SgemmBatched(int batch, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, long strideA, float* b, int ldb, long strideB, float beta, float* c, int ldc, long strideC)
    {
        CheckShape(transA, transB, m, n, k, lda, ldb, ldc);
        CheckBatch(batch, strideA, strideB, strideC);
        if (batch == 0 || m == 0 || n == 0) return;
        var p = new Problem(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        long mnk = (long)m * n * k;
        int chunks = strideC == 0 ? 1 : Threads.ChunksFor(mnk * batch, MinMnkPerThread);
        // Products big enough to use every thread on their own run one after another; a batch of
        // small ones is split across threads by item instead, each item then running serially.
        if (chunks <= 1 || Threads.ChunksFor(mnk, MinMnkPerThread) >= Threads.Count)
        {
            for (int i = 0; i < batch; i++)
            {
                var q = p.Item(i, strideA, strideB, strideC);
                SgemmCore(ref q);
            }
            return;
        }
        var job = BatchJob.Current;
        job.Set(in p, batch, strideA, strideB, strideC);
        Threads.For(chunks, job);
        job.Clear();
    }

    /// <summary>Span form of <see cref="SgemmBatched(int, bool, bool, int, int, int, float, float*, int, long, float*, int, long, float, float*, int, long)"/>.</summary>
    public static void SgemmBatched(int batch, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, long strideA, ReadOnlySpan<float> b, int ldb, long strideB, float beta,
        Span<float> c, int ldc, long strideC)
    {
        CheckShape(transA, transB, m, n, k, lda, ldb, ldc);
        CheckBatch(batch, strideA, strideB, strideC);
        CheckSpans(batch, transA, transB, m, n, k, a.Length, lda, strideA, b.Length, ldb, strideB, c.Length, ldc, strideC);
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
            SgemmBatched(batch, transA, transB, m, n, k, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, strideC);
    }

    /// <summary>The arguments of one product, passed by reference through the drivers.</summary>
    internal struct Problem(bool transA, bool transB, int m, int n, int k, float alpha, float* a, nint lda,
        float* b, nint ldb, float beta, float* c, nint ldc)
    {
        public bool TransA = transA, TransB = transB;
        public int M = m, N = n, K = k;
        public float Alpha = alpha, Beta = beta;
        public float* A = a, B = b, C = c;
        public nint Lda = lda, Ldb = ldb, Ldc = ldc;

        public readonly Problem Item(int i, long strideA, long strideB, long strideC)
        {
            var q = this;
            q.A += i * strideA;
            q.B += i * strideB;
            q.C += i * strideC;
            return q;
        }
    }

    /// <summary>
    /// Whether the product C = op(A)·op(B) of m×n (inner k) is better computed as its transpose
    /// Cᵀ = op(B)ᵀ·op(A)ᵀ (n×m): both take the packed path (so each element is the same sum in the
    /// same order, and the results are bit for bit the same) and the transposed one fills its MR×NR
    /// micro-tiles at least 5% better. A caller that then writes Cᵀ pays a transpose for it; the
    /// convolutions' per-sample products (64×196 and 64×288 in the CNN preset's second convolution,
    /// where the last 12-row tile is a third empty) gain 13-20% from it (docs/performance.md).
    /// </summary>
    /// <remarks><paramref name="minGain"/> 0 (for tests) asks only that both take the packed path.</remarks>
    internal static bool FillsBetterTransposed(bool transA, bool transB, int m, int n, int k, double minGain = 1.05)
    {
        if (m <= 0 || n <= 0 || k <= 0) return false;
        var p = new Problem(transA, transB, m, n, k, 1f, null, 0, null, 0, 0f, null, 0);
        var t = new Problem(!transB, !transA, n, m, k, 1f, null, 0, null, 0, 0f, null, 0);
        if (Choose(ref p) != Path.Packed || Choose(ref t) != Path.Packed) return false;
        static double Fill(int rows, int cols) =>
            (double)rows * cols / ((double)((rows + MR - 1) / MR * MR) * ((cols + NR - 1) / NR * NR));
        return Fill(n, m) >= minGain * Fill(m, n);
    }

    /// <summary>Which algorithm computes a product (or each thread's part of it).</summary>
    private enum Path : byte { Small, Direct, Dot, Packed }

    private static Path Choose(ref Problem p)
    {
        // m = 1 or n = 1 is a matrix-vector product: padding it to a full tile would waste up to
        // 31/32 of the work, and there is no reuse for packing to exploit.
        if (p.M == 1 || p.N == 1) return Path.Small;
        long mnk = (long)p.M * p.N * p.K;
        if (Avx512Paths)
        {
            if (p.TransB)
            {
                // A few rows of A (or of B) against a long k: dot products of rows as they lie.
                if (p.K > SmallK && (p.M <= DotMaxSide || p.N <= DotMaxSide)) return Path.Dot;
                return p.K <= SmallK || (p.K <= DirectMaxK && mnk <= DirectMnk) ? Path.Direct : Path.Packed;
            }
            // Tiny products, or a few rows of A, whose rows are whole vectors: rows of B scaled and
            // summed (see GemmSmall). A row length off the vector width would leave a scalar tail
            // there (n = 10 ran at 11 GFLOP/s); the micro-kernels mask it instead.
            if ((mnk < SmallMnkAvx512 || p.M < MR / 2) && p.N % Vector<float>.Count == 0) return Path.Small;
            // Packing B pays off only when many row tiles reuse it.
            return p.K <= SmallK || (p.K <= DirectMaxK && (mnk <= DirectMnk || p.M <= 2 * MR || p.N <= NR / 2))
                ? Path.Direct : Path.Packed;
        }
        bool small = mnk < (p.TransB ? SmallMnkTransB : SmallMnk)
            // A layer at most NR/2 wide would waste half of every packed tile; rows of B read
            // directly serve it better at any m and k.
            || (!p.TransB && p.N <= NR / 2)
            // With B transposed and only a few rows of A, packing B (each element then used by
            // fewer than MR/2 rows) costs more than reading B's rows directly as dot products.
            || (p.TransB && p.M < MR / 2);
        return small ? Path.Small : Path.Packed;
    }

    /// <summary>Sgemm through a given path (0 Small, 1 Direct, 2 Dot, 3 Packed), for tests and tuning; false if the path cannot take this product.</summary>
    /// <remarks>Direct and Dot need AVX-512; Dot needs B transposed.</remarks>
    internal static bool SgemmVia(int path, bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda,
        float* b, int ldb, float beta, float* c, int ldc)
    {
        var forced = (Path)path;
        if ((forced is Path.Direct or Path.Dot && !Avx512Paths) || (forced == Path.Dot && !transB)) return false;
        CheckShape(transA, transB, m, n, k, lda, ldb, ldc);
        var p = new Problem(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        SgemmCore(ref p, forced);
        return true;
    }

    private static void SgemmCore(ref Problem p, Path? forced = null)
    {
        if (p.M == 0 || p.N == 0) return;
        if (p.K == 0 || p.Alpha == 0f)
        {
            ScaleC(p.M, p.N, p.Beta, p.C, p.Ldc);
            return;
        }
        long mnk = (long)p.M * p.N * p.K;
        var path = forced ?? Choose(ref p);
        int chunks = Threads.ChunksFor(mnk, MinMnkPerThread);
        if (chunks <= 1)
        {
            RunRange(path, ref p, 0, p.M, 0, p.N);
            return;
        }
        var job = ProductJob.Current;
        job.Set(in p, path, chunks);
        Threads.For(chunks, job);
        job.Clear();
    }

    private static void RunRange(Path path, ref Problem p, int m0, int m1, int n0, int n1)
    {
        switch (path)
        {
            case Path.Small: SmallRange(ref p, m0, m1, n0, n1); break;
            case Path.Direct: DirectRange(ref p, m0, m1, n0, n1); break;
            case Path.Dot: DotRange(ref p, m0, m1, n0, n1); break;
            default: PackedRange(ref p, m0, m1, n0, n1); break;
        }
    }

    // The packed operand every thread of a split product reads (all of B when threads split the
    // rows of C, all of A when they split the columns) is packed once, cooperatively, up to this
    // many floats (32 MiB, the L3 of the Zen 5 part this was tuned on); beyond it each thread
    // packs its own copy block by block. At n = 2048 (16 MiB of B) sharing still wins: each
    // thread packs half of B once instead of all of it once per MC block.
    internal const long MaxSharedPack = 1L << 23;

    // Whether the first tile of each row packs a plain A as it reads it (see MacroKernel), and
    // whether threads sharing B pack each panel on first use rather than all of B up front; off
    // only in tests and measurements that compare against the up-front packing.
    internal static bool FuseAPacking = true, PackBOnFirstUse = true;

    // Whether a large product split by rows hands out row blocks from a counter (each thread takes
    // the next block when it finishes one) instead of one fixed range per thread; off only in
    // tests and measurements that compare against the fixed split.
    internal static bool DynamicRows = true;

    // Row blocks per thread the dynamic split aims at, and the fewest tile rows in a block. Three
    // per thread let a thread running at half speed (a vCPU sharing its core or its cache with
    // another tenant) leave a third of its share to the other instead of holding both back; more
    // blocks each reread all of B and cost 1-4% at 2048³ when nothing is slowed (docs/performance.md).
    internal const int RowBlocksPerThread = 3, MinRowBlockTiles = 16;

    // Only products of at least this many multiply-adds (2²⁸, a few milliseconds) are dealt out:
    // smaller ones (the GPT row's 2048×512×128) ran 8% slower dealt out in a first 4-round A/B,
    // their rows then landing on either core while the ops before and after them split rows the
    // fixed way.
    internal const long MinDynamicMnk = 1L << 28;

    /// <summary>
    /// How many row blocks (of <paramref name="blockTiles"/> tile rows each, the last one shorter)
    /// a packed m×n product with inner size k, split by rows over <paramref name="chunks"/> threads,
    /// is dealt out in; 0 when each thread takes one fixed range instead.
    /// </summary>
    internal static int DynamicRowBlocks(int m, int n, int k, int chunks, out int blockTiles)
    {
        blockTiles = 0;
        int mTiles = (m + MR - 1) / MR, nTiles = (n + NR - 1) / NR;
        if (!DynamicRows || !PackBOnFirstUse || chunks < 2 || (long)m * n * k < MinDynamicMnk
            || mTiles < RowBlocksPerThread * chunks * MinRowBlockTiles
            || (long)nTiles * NR * k > MaxSharedPack)
            return 0;
        blockTiles = (mTiles + RowBlocksPerThread * chunks - 1) / (RowBlocksPerThread * chunks);
        return (mTiles + blockTiles - 1) / blockTiles;
    }

    /// <summary>Splits one product between threads by rows or by columns of C.</summary>
    /// <remarks>
    /// The direct paths split whichever dimension has more blocks, and each thread reads what it
    /// needs in place. The packed path splits the dimension that gives the busiest thread the
    /// fewest tiles, and the operand all threads share is packed once into one buffer. A shared B
    /// (row split) is packed panel by panel on first use: each thread's first row of tiles claims
    /// the panels nobody has claimed and packs them as it computes (see FirstRowShared). A shared
    /// A (column split) is packed up front: threads claim its packing tasks from a counter, wait
    /// for the last claimed one to finish, then each computes its own part. Either way a thread
    /// that starts late (or never; the caller then runs its chunk) finds the work already done,
    /// so no thread ever waits for one that has not started.
    /// </remarks>
    private sealed class ProductJob : IParallelWork
    {
        [ThreadStatic] private static ProductJob? t_current;
        public static ProductJob Current => t_current ??= new ProductJob();

        private Problem _p;
        private Path _path;
        private bool _splitColumns;
        // Cooperative packing of the shared operand: null when each thread packs its own.
        private float* _shared;
        private nint _sharedPad;          // rows (A) or columns (B) of the shared operand, padded to whole panels
        private int _kc, _kBlocks, _panels, _groupPanels, _groupsPerBlock, _tasks;
        private int _nextTask, _doneTasks;
        // With a row split: one state per shared B panel and k block (0 unpacked, 1 being packed,
        // 2 packed), for packing each panel on its first use instead of all of B up front.
        private int* _claims;
        // The dynamic row split (0 blocks when the split is fixed): blocks of _blockTiles tile rows,
        // taken in order from _nextBlock.
        private int _blocks, _blockTiles, _nextBlock;

        public void Set(in Problem p, Path path, int chunks)
        {
            _p = p;
            _path = path;
            _shared = null;
            _claims = null;
            _blocks = 0;
            if (path != Path.Packed)
            {
                var (mUnit, nUnit) = path == Path.Small ? (1, SmallColumnUnit) : path == Path.Dot ? (4, 4) : (MR, NR);
                _splitColumns = (p.N + nUnit - 1) / nUnit >= (p.M + mUnit - 1) / mUnit;
                return;
            }
            int mTiles = (p.M + MR - 1) / MR, nTiles = (p.N + NR - 1) / NR;
            long byRows = (long)((mTiles + chunks - 1) / chunks) * nTiles;
            long byColumns = (long)mTiles * ((nTiles + chunks - 1) / chunks);
            // Rows unless columns leave the busiest thread clearly fewer tiles: a row split packs
            // B once, shared, and each thread only its own rows of A, where a column split has
            // every thread pack all of A (or share it) and repack its B columns per MC block. At
            // n = 2048 (columns 0.6% fewer tiles) rows ran 4% faster.
            _splitColumns = byColumns * 32 < byRows * 31 || (byColumns == byRows && nTiles >= mTiles);
            // Enough rows for RowBlocksPerThread blocks per thread: threads take row blocks as
            // they finish them, all sharing one B packed on first use. A thread slowed by something
            // outside the process (a busy sibling core, a neighbour in the cache) then does less
            // of the product instead of the others waiting for it at the end.
            if (!_splitColumns && (_blocks = DynamicRowBlocks(p.M, p.N, p.K, chunks, out _blockTiles)) > 0)
            {
                _nextBlock = 0;
                _panels = nTiles;
                _sharedPad = (nint)_panels * NR;
                _shared = GemmBuffers.Current.Shared(_sharedPad * p.K);
                _kc = BlockSize(p.K, KC, 1);
                _kBlocks = (p.K + _kc - 1) / _kc;
                _claims = GemmBuffers.Current.Claims(_kBlocks * _panels);
                return;
            }
            // With a row split each thread can also pack its own copy of B block by block, right
            // before using it: twice the packing in all, but each block is still in L2 when read,
            // a plain B is packed by the first row of tiles as it goes, and no thread waits for
            // the other. That wins while a thread's rows fit one MC block, so that it packs B only
            // once (alternating runs: +2-5% at 1024³, +3% at 1536³); at 2048³ (two blocks per
            // thread) sharing wins by 4%.
            if (!_splitColumns && (long)((mTiles + chunks - 1) / chunks) * MR <= MC) return;
            _panels = _splitColumns ? mTiles : nTiles;
            _sharedPad = (nint)_panels * (_splitColumns ? MR : NR);
            if ((long)_sharedPad * p.K > MaxSharedPack) return;
            _shared = GemmBuffers.Current.Shared(_sharedPad * p.K);
            _kc = BlockSize(p.K, KC, 1);
            _kBlocks = (p.K + _kc - 1) / _kc;
            // Packing B on first use instead of all of it before any arithmetic: +2.6% at 2048³
            // (in-process alternating runs), the packing then overlapping the first row's FMAs.
            if (!_splitColumns && PackBOnFirstUse)
            {
                _claims = GemmBuffers.Current.Claims(_kBlocks * _panels);
                return;
            }
            // About four tasks per thread: enough to even out, few enough to keep the counters cold.
            int target = Math.Max(1, 4 * chunks / _kBlocks);
            _groupPanels = Math.Max(1, (_panels + target - 1) / target);
            _groupsPerBlock = (_panels + _groupPanels - 1) / _groupPanels;
            _tasks = _kBlocks * _groupsPerBlock;
            _nextTask = 0;
            _doneTasks = 0;
        }

        public void Clear()
        {
            _p = default;
            _shared = null;
            _claims = null;
        }

        public void Run(int chunk, int chunks)
        {
            var p = _p;
            var (mUnit, nUnit) = _path switch
            {
                Path.Small => (1, SmallColumnUnit),
                Path.Dot => (4, 4),
                _ => (MR, NR),
            };
            int mTiles = (p.M + mUnit - 1) / mUnit, nTiles = (p.N + nUnit - 1) / nUnit;
            if (_blocks > 0)
            {
                int block;
                while ((block = Interlocked.Increment(ref _nextBlock) - 1) < _blocks)
                {
                    int r0 = block * _blockTiles * MR, r1 = Math.Min(p.M, r0 + _blockTiles * MR);
                    PackedRange(ref p, r0, r1, 0, p.N, null, 0, _shared, _sharedPad, _claims, chunk, chunks);
                }
                return;
            }
            int i0 = 0, i1 = p.M, j0 = 0, j1 = p.N;
            if (_splitColumns)
            {
                j0 = Math.Min(p.N, (int)((long)nTiles * chunk / chunks) * nUnit);
                j1 = Math.Min(p.N, (int)((long)nTiles * (chunk + 1) / chunks) * nUnit);
            }
            else
            {
                i0 = Math.Min(p.M, (int)((long)mTiles * chunk / chunks) * mUnit);
                i1 = Math.Min(p.M, (int)((long)mTiles * (chunk + 1) / chunks) * mUnit);
            }
            if (_shared == null)
            {
                if (i1 > i0 && j1 > j0) RunRange(_path, ref p, i0, i1, j0, j1);
                return;
            }
            if (_claims != null)
            {
                if (i1 > i0) PackedRange(ref p, i0, i1, j0, j1, null, 0, _shared, _sharedPad, _claims, chunk, chunks);
                return;
            }
            PackShared(ref p);
            if (i1 <= i0 || j1 <= j0) return;
            if (_splitColumns) PackedRange(ref p, i0, i1, j0, j1, _shared, _sharedPad, null, 0);
            else PackedRange(ref p, i0, i1, j0, j1, null, 0, _shared, _sharedPad);
        }

        /// <summary>Packs unclaimed groups of shared panels, then waits until every claimed group is packed.</summary>
        private void PackShared(ref Problem p)
        {
            int t;
            while ((t = Interlocked.Increment(ref _nextTask) - 1) < _tasks)
            {
                int kb = t / _groupsPerBlock, g = t - kb * _groupsPerBlock;
                int pc = kb * _kc, kc = Math.Min(_kc, p.K - pc);
                float* block = _shared + pc * _sharedPad;
                if (_splitColumns)
                {
                    int i = g * _groupPanels * MR, mc = Math.Min(_groupPanels * MR, p.M - i);
                    GemmPacking.PackA(p.TransA, p.A, p.Lda, i, mc, pc, kc, MR, block + (nint)i * kc);
                }
                else
                {
                    int j = g * _groupPanels * NR, nc = Math.Min(_groupPanels * NR, p.N - j);
                    GemmPacking.PackB(p.TransB, p.B, p.Ldb, pc, kc, j, nc, NR, block + (nint)j * kc);
                }
                Interlocked.Increment(ref _doneTasks);
            }
            // Every task still outstanding is being packed by a running thread: a short wait.
            if (Volatile.Read(ref _doneTasks) < _tasks)
            {
                var spinner = new SpinWait();
                while (Volatile.Read(ref _doneTasks) < _tasks) spinner.SpinOnce(sleep1Threshold: -1);
            }
        }
    }

    /// <summary>Runs the items of a batch of small products on several threads, a contiguous range of items per thread.</summary>
    private sealed class BatchJob : IParallelWork
    {
        [ThreadStatic] private static BatchJob? t_current;
        public static BatchJob Current => t_current ??= new BatchJob();

        private Problem _p;
        private int _batch;
        private long _strideA, _strideB, _strideC;

        public void Set(in Problem p, int batch, long strideA, long strideB, long strideC)
        {
            _p = p;
            _batch = batch;
            (_strideA, _strideB, _strideC) = (strideA, strideB, strideC);
        }

        public void Clear() => _p = default;

        public void Run(int chunk, int chunks)
        {
            int i0 = (int)((long)_batch * chunk / chunks), i1 = (int)((long)_batch * (chunk + 1) / chunks);
            for (int i = i0; i < i1; i++)
            {
                var q = _p.Item(i, _strideA, _strideB, _strideC);
                SgemmCore(ref q);
            }
        }
    }

    /// <summary>Size of the near-equal blocks (at most <paramref name="max"/>, a multiple of <paramref name="unit"/>) that cover <paramref name="total"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int BlockSize(int total, int max, int unit)
    {
        // Even blocks avoid a thin last block (k = 300 with KC = 256 would otherwise run 256 + 44,
        // and the 44-deep pass pays nearly a full tile write-back for a sixth of the work).
        int blocks = (total + max - 1) / max;
        int size = (total + blocks - 1) / blocks;
        return (size + unit - 1) / unit * unit;
    }

    /// <summary>The blocked algorithm for C[m0..m1, n0..n1] on the calling thread.</summary>
    /// <remarks>
    /// <paramref name="sharedA"/> (or <paramref name="sharedB"/>), when given, holds all of op(A) (or
    /// op(B)) already packed: k blocks of <see cref="BlockSize"/>(k, KC, 1) one after another, each
    /// <paramref name="padA"/> rows (or <paramref name="padB"/> columns) of whole panels.
    /// </remarks>
    private static void PackedRange(ref Problem p, int m0, int m1, int n0, int n1,
        float* sharedA = null, nint padA = 0, float* sharedB = null, nint padB = 0, int* claims = null, int chunk = 0, int chunks = 1)
    {
        var buffers = GemmBuffers.Current;
        int mr = MR, nr = NR;
        int kcMax = BlockSize(p.K, KC, 1);
        int mcMax = BlockSize(m1 - m0, MC, mr);
        int ncMax = BlockSize(n1 - n0, NC, nr);
        float* packA = sharedA == null ? buffers.A((nint)mcMax * kcMax) : null;
        float* packB = sharedB == null ? buffers.B((nint)ncMax * kcMax) : null;
        float* tile = buffers.Tile(mr * nr);
        // The first tile of a block row must take the full kernel (not the narrow one) to pack A.
        bool fuseA = FuseAPacking && FusedPacking && !p.TransA && sharedA == null && n1 - n0 > nr / 2;

        for (int ic = m0; ic < m1; ic += mcMax)
        {
            int mc = Math.Min(mcMax, m1 - ic);
            for (int pc = 0; pc < p.K; pc += kcMax)
            {
                int kc = Math.Min(kcMax, p.K - pc);
                float* blockA, sourceA = null;
                if (sharedA != null) blockA = sharedA + pc * padA + (nint)ic * kc;
                // Whole MR-row panels of a plain A: the first tile of each row packs its panel as
                // it reads it (a last partial panel is packed here, with its zero rows).
                else if (fuseA)
                {
                    blockA = packA;
                    sourceA = p.A + ic * p.Lda + pc;
                    int full = mc / mr * mr;
                    if (full < mc) GemmPacking.PackA(false, p.A, p.Lda, ic + full, mc - full, pc, kc, mr, packA + (nint)full * kc);
                }
                else GemmPacking.PackA(p.TransA, p.A, p.Lda, ic, mc, pc, kc, mr, blockA = packA);
                // Only the first pass over k applies beta; later passes add onto what it wrote.
                float beta = pc == 0 ? p.Beta : 1f;
                for (int jc = n0; jc < n1; jc += ncMax)
                {
                    int nc = Math.Min(ncMax, n1 - jc);
                    float* blockB, sourceB = null;
                    if (sharedB != null)
                    {
                        blockB = sharedB + pc * padB + (nint)jc * kc;
                        if (claims != null)
                        {
                            // The first row of tiles packs the panels nobody has packed yet.
                            float* aFirst = sourceA;
                            if (sourceA != null && jc == n0 && mc >= mr)
                            {
                                GemmPacking.PackA(false, p.A, p.Lda, ic, mr, pc, kc, mr, blockA);
                                aFirst = sourceA + mr * p.Lda;
                            }
                            int* blockClaims = claims + (nint)(pc / kcMax) * (padB / nr) + jc / nr;
                            FirstRowShared(ref p, pc, kc, jc, nc, blockA, blockB, p.C + ic * p.Ldc + jc, beta, Math.Min(mr, mc), tile,
                                blockClaims, chunk, chunks);
                            if (mc > mr)
                                MacroKernel(kc, mc - mr, nc, blockA + (nint)mr * kc, blockB, p.C + (ic + mr) * p.Ldc + jc, p.Ldc, p.Alpha, beta, tile,
                                    null, 0, jc == n0 ? aFirst : null, p.Lda);
                            continue;
                        }
                    }
                    // Whole NR-column panels of a plain B: the first row of tiles packs them as it reads them.
                    else if (FusedPacking && !p.TransB && nc % nr == 0)
                    {
                        blockB = packB;
                        sourceB = p.B + pc * p.Ldb + jc;
                    }
                    else GemmPacking.PackB(p.TransB, p.B, p.Ldb, pc, kc, jc, nc, nr, blockB = packB);
                    MacroKernel(kc, mc, nc, blockA, blockB, p.C + ic * p.Ldc + jc, p.Ldc, p.Alpha, beta, tile, sourceB, p.Ldb,
                        jc == n0 ? sourceA : null, p.Lda);
                }
            }
        }
    }

    /// <summary>Multiplies a packed MC×KC block of A by a packed KC×NC block of B into C.</summary>
    /// <remarks>
    /// With <paramref name="sourceB"/> (op(B) = B, rows <paramref name="ldb"/> apart, nc a whole
    /// number of panels), <paramref name="packB"/> is not packed yet: the first row of tiles reads B
    /// there and packs it into <paramref name="packB"/> for the rows after it. With
    /// <paramref name="sourceA"/> (op(A) = A, rows <paramref name="lda"/> apart), the whole 12-row
    /// panels of <paramref name="packA"/> are not packed yet either: the first tile of each row of
    /// tiles reads them there and packs them for the tiles after it.
    /// </remarks>
    private static void MacroKernel(int kc, int mc, int nc, float* packA, float* packB, float* c, nint ldc,
        float alpha, float beta, float* tile, float* sourceB = null, nint ldb = 0, float* sourceA = null, nint lda = 0)
    {
        int mr = MR, nr = NR;
        // The A micro-panel (MR×KC, the broadcast operand) stays in L1 across the inner loop while
        // B micro-panels (the vector operand) stream from the L2-resident packed block, and the C
        // tiles walk along MR rows, which the hardware prefetcher follows.
        for (int ir = 0; ir < mc; ir += mr)
        {
            int mValid = Math.Min(mr, mc - ir);
            float* pa = packA + (nint)ir * kc;
            for (int jr = 0; jr < nc; jr += nr)
            {
                int nValid = Math.Min(nr, nc - jr);
                float* pb = packB + (nint)jr * kc;
                float* pc = c + ir * ldc + jr;
                if (sourceA != null && jr == 0 && mValid == mr)
                {
                    bool packsB = sourceB != null && ir == 0;
                    KernelPackA(kc, sourceA + ir * lda, lda, packsB ? sourceB : pb, packsB ? ldb : nr,
                        pc, ldc, alpha, beta, nValid, pa, packsB ? pb : null);
                }
                else if (sourceB != null && ir == 0)
                {
                    KernelPackB(kc, pa, mr, sourceB + jr, ldb, pc, ldc, alpha, beta, mValid, pb);
                }
                else Tile(kc, pa, pb, pc, ldc, alpha, beta, tile, mValid, nValid);
            }
        }
    }

    /// <summary>One tile of C from packed panels of A and B, through the narrow, full or scratch-tile path.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile(int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta, float* tile, int mValid, int nValid)
    {
        int mr = MR, nr = NR;
        if (nValid <= nr / 2 && NarrowKernel != null)
        {
            NarrowKernel(kc, pa, mr, pb, nr, c, ldc, alpha, beta, mValid, nValid);
        }
        else if ((mValid == mr && nValid == nr) || KernelStoresEdges)
        {
            Kernel(kc, pa, mr, pb, nr, c, ldc, alpha, beta, mValid, nValid);
        }
        else
        {
            Kernel(kc, pa, mr, pb, nr, tile, nr, 1f, 0f, mr, nr);
            MergeTile(tile, nr, mValid, nValid, c, ldc, alpha, beta);
        }
    }

    /// <summary>
    /// The first row of tiles of a KC×NC block of a B shared between threads and packed on first
    /// use: each panel still unpacked is claimed, packed (by the kernel itself where it can) and
    /// marked packed; panels another thread is packing are left for the end.
    /// </summary>
    /// <remarks>
    /// Thread <paramref name="chunk"/> starts at its own share of the panels, so threads that start
    /// together pack disjoint halves and rarely wait. A thread waits only after finishing every panel
    /// it claimed, for one another running thread has claimed, so no wait is ever circular.
    /// </remarks>
    private static void FirstRowShared(ref Problem p, int pc0, int kc, int jc, int nc, float* pa, float* blockB, float* c, float beta,
        int mValid, float* tile, int* claims, int chunk, int chunks)
    {
        int nr = NR;
        int panels = (nc + nr - 1) / nr;
        int start = (int)((long)panels * chunk / chunks);
        ulong deferred = 0;
        for (int s = 0; s < panels; s++)
        {
            int q = start + s < panels ? start + s : start + s - panels;
            int jr = q * nr, nValid = Math.Min(nr, nc - jr);
            float* pb = blockB + (nint)jr * kc;
            if (Volatile.Read(ref claims[q]) != 2)
            {
                if (Interlocked.CompareExchange(ref claims[q], 1, 0) == 0)
                {
                    if (FusedPacking && !p.TransB && nValid == nr)
                    {
                        KernelPackB(kc, pa, MR, p.B + pc0 * p.Ldb + jc + jr, p.Ldb, c + jr, p.Ldc, p.Alpha, beta, mValid, pb);
                    }
                    else
                    {
                        GemmPacking.PackB(p.TransB, p.B, p.Ldb, pc0, kc, jc + jr, nValid, nr, pb);
                        Tile(kc, pa, pb, c + jr, p.Ldc, p.Alpha, beta, tile, mValid, nValid);
                    }
                    Volatile.Write(ref claims[q], 2);
                    continue;
                }
                if (Volatile.Read(ref claims[q]) != 2)
                {
                    deferred |= 1UL << q;
                    continue;
                }
            }
            Tile(kc, pa, pb, c + jr, p.Ldc, p.Alpha, beta, tile, mValid, nValid);
        }
        while (deferred != 0)
        {
            int q = BitOperations.TrailingZeroCount(deferred);
            deferred &= deferred - 1;
            if (Volatile.Read(ref claims[q]) != 2)
            {
                var spinner = new SpinWait();
                while (Volatile.Read(ref claims[q]) != 2) spinner.SpinOnce(sleep1Threshold: -1);
            }
            int jr = q * nr;
            Tile(kc, pa, blockB + (nint)jr * kc, c + jr, p.Ldc, p.Alpha, beta, tile, mValid, Math.Min(nr, nc - jr));
        }
    }

    /// <summary>Writes the valid corner of an edge tile: C = alpha·tile + beta·C.</summary>
    private static void MergeTile(float* tile, int ldt, int rows, int cols, float* c, nint ldc, float alpha, float beta)
    {
        // Narrow layers (n = 16, 10) make every tile an edge tile, so the full vectors go wide.
        int w = Vector<float>.Count;
        var va = new Vector<float>(alpha);
        var vb = new Vector<float>(beta);
        for (int i = 0; i < rows; i++)
        {
            float* t = tile + i * ldt;
            float* ci = c + i * ldc;
            int j = 0;
            if (beta == 0f)
            {
                for (; j + w <= cols; j += w) Vector.Store(va * Vector.Load(t + j), ci + j);
                for (; j < cols; j++) ci[j] = alpha * t[j];
            }
            else
            {
                for (; j + w <= cols; j += w) Vector.Store(va * Vector.Load(t + j) + vb * Vector.Load(ci + j), ci + j);
                for (; j < cols; j++) ci[j] = alpha * t[j] + beta * ci[j];
            }
        }
    }

    /// <summary>C = beta·C, with beta = 0 clearing C even where it held NaN.</summary>
    private static void ScaleC(int m, int n, float beta, float* c, nint ldc)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + i * ldc, n);
            if (beta == 0f) row.Clear();
            else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }
}
