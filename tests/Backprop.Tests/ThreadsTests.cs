namespace Backprop.Tests;

[Collection("Threads")]
public class ThreadsTests
{
    private sealed class CountingWork : IParallelWork
    {
        public readonly int[] Runs = new int[8];
        public int SleepEvery;

        public void Run(int chunk, int chunks)
        {
            Interlocked.Increment(ref Runs[chunk]);
            if (SleepEvery > 0 && chunk % SleepEvery == 0) Thread.Sleep(1);
        }
    }

    [Fact]
    public void EveryChunkRunsExactlyOnce()
    {
        // Idle gaps let workers fall asleep, so some chunks are taken back by the caller; either
        // way each chunk must run once per region.
        var work = new CountingWork();
        var rng = new Random(5);
        for (int round = 0; round < 300; round++)
        {
            Array.Clear(work.Runs);
            int chunks = 1 + rng.Next(4);
            work.SleepEvery = rng.Next(3);
            if (rng.Next(4) == 0) Thread.Sleep(1);
            Threads.For(chunks, work);
            for (int c = 0; c < work.Runs.Length; c++)
                Assert.Equal(c < chunks ? 1 : 0, work.Runs[c]);
        }
    }

    private sealed class ThrowingWork : IParallelWork
    {
        public void Run(int chunk, int chunks)
        {
            if (chunk == chunks - 1) throw new InvalidOperationException($"chunk {chunk} failed");
        }
    }

    [Fact]
    public void ExceptionFromAnyChunkPropagates()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Threads.For(2, new ThrowingWork()));
        Assert.Contains("chunk 1", e.Message);
        // The pool stays usable afterwards.
        var work = new CountingWork();
        Threads.For(2, work);
        Assert.Equal(1, work.Runs[1]);
    }

    private sealed class SlowWorkers : IParallelWork
    {
        public int CallerMs, WorkerMs;

        public void Run(int chunk, int chunks) => Thread.Sleep(chunk == 0 ? CallerMs : WorkerMs);
    }

    [Fact]
    public void WaitingForSlowWorkersAllocatesNothing()
    {
        // Workers that are still running when the caller has finished its own chunk make the caller
        // block. The first block of a pool used to allocate (ManualResetEventSlim creates its lock
        // object then), so a "warm step allocates nothing" test failed whenever that first block
        // happened to fall in its measured step: on a busy machine, e.g. right after a build.
        int chunks = Threads.PoolSize + 2;   // a new pool, whose completion signal has never blocked
        Threads.For(chunks, new SlowWorkers());
        var slow = new SlowWorkers { CallerMs = 5, WorkerMs = 40 };
        long before = GC.GetAllocatedBytesForCurrentThread();
        Threads.For(chunks, slow);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
