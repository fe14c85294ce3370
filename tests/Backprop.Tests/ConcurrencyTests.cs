using Backprop.NN;

namespace Backprop.Tests;

/// <summary>
/// A trained model serving predictions from many threads at once, and the per-thread (scoped)
/// thread count and default generator that let each caller choose its own settings.
/// </summary>
/// <remarks>
/// In the "Threads" collection: some tests check that other threads still see the process-wide
/// settings, which tests that change those settings would disturb.
/// </remarks>
[Collection("Threads")]
public class ConcurrencyTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    /// <summary>Runs <paramref name="body"/>(i) on <paramref name="threads"/> dedicated threads started together; rethrows the first failure.</summary>
    private static void RunConcurrently(int threads, Action<int> body)
    {
        using var start = new Barrier(threads);
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var workers = Enumerable.Range(0, threads).Select(i => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                body(i);
            }
            catch (Exception e) { errors.Enqueue(e); }
        })
        { IsBackground = true, Name = $"test-caller-{i}" }).ToArray();
        foreach (var t in workers) t.Start();
        foreach (var t in workers)
            Assert.True(t.Join(Patience), $"thread {t.Name} did not finish within {Patience} (deadlock?)");
        if (errors.TryDequeue(out var first)) throw new AggregateException(first);
    }

    private static Sequential ServedModel()
    {
        var g = new Generator(11);
        // Products big enough for the parallel GEMM path on two threads (m·n·k ≥ 2²¹) and a hidden
        // layer wide enough for the parallel elementwise path (≥ 2·2¹⁶ elements), yet cheap.
        var model = new Sequential(
            new Linear(64, 1024, generator: g), new Gelu(),
            new Dropout(0.3, generator: g),
            new Linear(1024, 32, generator: g), new Tanh(),
            new Linear(32, 32, generator: g), new Relu(),
            new Linear(32, 10, generator: g), new Softmax());
        model.Eval();
        return model;
    }

    [Fact]
    public void EightInferenceThreadsMatchASequentialReferenceBitForBit()
    {
        const int Callers = 8, Rounds = 3;
        var model = ServedModel();
        var g = new Generator(12);
        var batches = Enumerable.Range(0, 4).Select(i => Tensor.Randn([128 + 32 * i, 64], g)).ToArray();

        // One reference per thread count: the split of a reduction may change the last bits
        // between counts, never between runs with the same count.
        var reference = new Dictionary<int, float[][]>();
        foreach (int threads in new[] { 1, 2 })
            using (Threads.Use(threads))
            using (Tensor.NoGrad())
                reference[threads] = batches.Select(x => model.Forward(x).ToArray()).ToArray();
        Assert.Equal(batches[0].Size(0) * 10, reference[2][0].Length);

        var checkedBatches = new int[Callers];
        RunConcurrently(Callers, caller =>
        {
            // Callers alternate between the parallel kernels (two threads, contending for the
            // pool) and serial ones, each in its own order over the batches.
            int threads = caller % 4 == 3 ? 1 : 2;
            var order = new Generator((ulong)caller);
            using var scope = Threads.Use(threads);
            using var noGrad = Tensor.NoGrad();
            for (int round = 0; round < Rounds; round++)
                foreach (int b in order.Permutation(batches.Length))
                {
                    using var step = Tensor.Scope();
                    var y = model.Forward(batches[b]);
                    Assert.Equal(reference[threads][b], y.ToArray());
                    checkedBatches[caller]++;
                }
        });
        Assert.All(checkedBatches, n => Assert.Equal(Rounds * batches.Length, n));
    }

    [Fact]
    public void ThreadsUseNestsRestoresAndToleratesDoubleDispose()
    {
        int process = Threads.Count;
        using (Threads.Use(3))
        {
            Assert.Equal(3, Threads.Count);
            Assert.Equal(3, Threads.ChunksFor(1000, 100));
            var inner = Threads.Use(1);
            Assert.Equal(1, Threads.Count);
            Assert.Equal(1, Threads.ChunksFor(1000, 100));
            inner.Dispose();
            inner.Dispose(); // harmless
            Assert.Equal(3, Threads.Count);
            using (Threads.Use(5)) Assert.Equal(5, Threads.Count);
            Assert.Equal(3, Threads.Count);
        }
        Assert.Equal(process, Threads.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => Threads.Use(0));

        // Setting Count changes the process-wide value; a scope on this thread still wins.
        try
        {
            using (Threads.Use(3))
            {
                Threads.Count = process + 1;
                Assert.Equal(3, Threads.Count);
            }
            Assert.Equal(process + 1, Threads.Count);
        }
        finally { Threads.Count = process; }
    }

    [Fact]
    public void ThreadsUseRejectsOutOfOrderAndForeignDisposal()
    {
        int process = Threads.Count;
        var outer = Threads.Use(2);
        var inner = Threads.Use(3);
        var e = Assert.Throws<InvalidOperationException>(outer.Dispose);
        Assert.Contains("reverse order", e.Message);
        Exception? foreign = null;
        var t = new Thread(() => foreign = Record.Exception(inner.Dispose));
        t.Start();
        t.Join();
        Assert.Contains("thread that created it", Assert.IsType<InvalidOperationException>(foreign).Message);
        Assert.Equal(3, Threads.Count);
        inner.Dispose();
        outer.Dispose();
        Assert.Equal(process, Threads.Count);
    }

    [Fact]
    public void ThreadsUseIsPerThread()
    {
        int process = Threads.Count;
        using var inScope = new Barrier(2);
        int seenInside = 0, seenOutside = 0;
        RunConcurrently(2, i =>
        {
            if (i == 0)
            {
                using (Threads.Use(process + 5))
                {
                    inScope.SignalAndWait(); // the other thread reads while this scope is open
                    inScope.SignalAndWait();
                    seenInside = Threads.Count;
                }
            }
            else
            {
                inScope.SignalAndWait();
                seenOutside = Threads.Count;
                inScope.SignalAndWait();
            }
        });
        Assert.Equal(process + 5, seenInside);
        Assert.Equal(process, seenOutside);
        Assert.Equal(process, Threads.Count);
    }

    private sealed class RecordingWork : IParallelWork
    {
        public readonly int[] Runs = new int[64];
        public readonly int[] Count = new int[64];
        public readonly int[] ThreadId = new int[64];
        public readonly Generator?[] Default = new Generator?[64];
        private int _started;

        public void Run(int chunk, int chunks)
        {
            Interlocked.Increment(ref Runs[chunk]);
            Count[chunk] = Threads.Count;
            Default[chunk] = Generator.Default;
            ThreadId[chunk] = Environment.CurrentManagedThreadId;
            // The caller's own chunk waits (a while) for the workers to start theirs, so that it
            // does not take them back: the other chunks then run on the workers.
            if (Interlocked.Increment(ref _started) < chunks && chunk == 0)
            {
                var deadline = DateTime.UtcNow.AddSeconds(5);
                while (Volatile.Read(ref _started) < chunks && DateTime.UtcNow < deadline) Thread.Yield();
            }
        }
    }

    [Fact]
    public void WorkersRunACallersChunksWithTheCallersSettings()
    {
        int count = Threads.Count + 2;
        var g = new Generator(5);
        var work = new RecordingWork();
        using (Threads.Use(count))
        using (Generator.Use(g))
            Threads.For(count, work);
        for (int c = 0; c < count; c++)
        {
            Assert.Equal(1, work.Runs[c]);
            Assert.Equal(count, work.Count[c]);
            Assert.Same(g, work.Default[c]);
        }
        Assert.Contains(work.ThreadId[1..count], id => id != Environment.CurrentManagedThreadId);
        // Back on the workers' own settings once the region is over.
        var after = new RecordingWork();
        Threads.For(2, after);
        Assert.Equal(Threads.Count, after.Count[1]);
        Assert.Same(Generator.Default, after.Default[1]);
    }

    private sealed class CountingWork : IParallelWork
    {
        public readonly int[] Runs = new int[64];

        public void Run(int chunk, int chunks)
        {
            Interlocked.Increment(ref Runs[chunk]);
            Thread.SpinWait(20_000); // tens of microseconds: long enough for workers to take chunks
        }
    }

    [Fact]
    public void CallersWithDifferentScopedCountsNeverShareWorkers()
    {
        // One caller keeps two-chunk regions going while another asks for ever more threads, so
        // the pool grows while the first one's regions run: every chunk must still run exactly once.
        int grownTo = 0, regions = 0;
        bool growing = true;
        RunConcurrently(2, caller =>
        {
            if (caller == 0)
            {
                using var scope = Threads.Use(2);
                var work = new CountingWork();
                while (Volatile.Read(ref growing))
                {
                    Array.Clear(work.Runs);
                    Threads.For(2, work);
                    Assert.Equal(new[] { 1, 1, 0 }, work.Runs[..3]);
                    regions++;
                }
            }
            else
            {
                try
                {
                    for (int n = 3; n <= 40; n++)
                    {
                        using var scope = Threads.Use(n);
                        var work = new CountingWork();
                        Threads.For(n, work);
                        for (int c = 0; c < work.Runs.Length; c++) Assert.Equal(c < n ? 1 : 0, work.Runs[c]);
                        grownTo = n;
                    }
                }
                finally { Volatile.Write(ref growing, false); }
            }
        });
        Assert.Equal(40, grownTo);
        Assert.True(regions > 0);
    }

    [Fact]
    public void GeneratorUseNestsRestoresAndToleratesDoubleDispose()
    {
        var process = Generator.Default;
        var a = new Generator(1);
        var b = new Generator(2);
        using (Generator.Use(a))
        {
            Assert.Same(a, Generator.Default);
            var inner = Generator.Use(b);
            Assert.Same(b, Generator.Default);
            inner.Dispose();
            inner.Dispose(); // harmless
            Assert.Same(a, Generator.Default);
        }
        Assert.Same(process, Generator.Default);
        Assert.Throws<ArgumentNullException>(() => Generator.Use(null!));

        var outer = Generator.Use(a);
        var second = Generator.Use(b);
        Assert.Throws<InvalidOperationException>(outer.Dispose);
        second.Dispose();
        outer.Dispose();
        Assert.Same(process, Generator.Default);
    }

    [Fact]
    public void GeneratorUseSeedsTensorsAndLayersWithoutTouchingOtherThreads()
    {
        float[] expected = Tensor.Randn([1000], new Generator(7)).ToArray();
        var expectedDropoutSeed = new Generator(new Generator(9).NextUInt64()).NextUInt64();
        var process = Generator.Default;
        var processState = process.GetState();

        RunConcurrently(8, i =>
        {
            for (int round = 0; round < 20; round++)
            {
                using (Generator.Use(new Generator(7)))
                    Assert.Equal(expected, Tensor.Randn([1000]).ToArray());
                using (Generator.Use(new Generator(9)))
                    Assert.Equal(expectedDropoutSeed, new Dropout().Generator.NextUInt64());
                Assert.Same(process, Generator.Default);
            }
        });
        Assert.Equal(processState, process.GetState()); // nobody drew from the process-wide default
    }

    [Fact]
    public void ManualSeedChangesTheProcessDefaultButNotAScope()
    {
        var saved = Generator.Default;
        var savedState = saved.GetState();
        try
        {
            var mine = new Generator(3);
            using (Generator.Use(mine))
            {
                Generator.ManualSeed(42);
                Assert.Same(mine, Generator.Default);
            }
            Assert.Equal(new Generator(42).NextUInt64(), Generator.Default.NextUInt64());
        }
        finally
        {
            Generator.ManualSeed(0);
            Generator.Default.SetState(savedState);
        }
    }
}
