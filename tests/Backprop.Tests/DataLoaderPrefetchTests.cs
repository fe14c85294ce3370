using System.Diagnostics;
using System.Runtime.CompilerServices;
using Backprop.Data;

namespace Backprop.Tests;

/// <summary>DataLoader(prefetch: true): the next batch is built on a background thread, and nothing else changes.</summary>
public class DataLoaderPrefetchTests
{
    private static (float[] X, long[] Y) Copy(Batch b) => (b.Input.ToArray(), b.Target.ToLongArray());

    /// <summary>Every batch of <paramref name="epochs"/> epochs, copied while it is still valid.</summary>
    private static List<(float[] X, long[] Y)> Run(DataLoader loader, int epochs)
    {
        var r = new List<(float[], long[])>();
        for (int e = 0; e < epochs; e++)
            foreach (var b in loader) r.Add(Copy(b));
        return r;
    }

    private static void AssertSame(List<(float[] X, long[] Y)> expected, List<(float[] X, long[] Y)> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].X, actual[i].X);   // bit-identical floats
            Assert.Equal(expected[i].Y, actual[i].Y);
        }
    }

    /// <summary>Random inputs (so any mix-up of rows shows) with the sample id as target.</summary>
    private static TensorDataset RandomData(int n, int features = 5)
    {
        var y = new long[n];
        for (int i = 0; i < n; i++) y[i] = i;
        return new TensorDataset(Tensor.Randn([n, features], new Generator(11)), Tensor.FromArray(y));
    }

    /// <summary>A dataset that batches sample by sample, records the threads it runs on and can fail or wait on request.</summary>
    private sealed class Probe(Dataset inner) : Dataset
    {
        public readonly System.Collections.Concurrent.ConcurrentBag<int> Threads = [];
        public int FailAtSample = -1;
        public int DelayMs;
        public int Batches;

        public override int Count => inner.Count;

        public override (Tensor Input, Tensor Target) this[int index]
        {
            get
            {
                if (index == FailAtSample) throw new InvalidDataException($"probe: sample {index} is broken");
                return inner[index];
            }
        }

        public override Batch GetBatch(ReadOnlySpan<int> indices)
        {
            Threads.Add(Environment.CurrentManagedThreadId);
            if (DelayMs > 0) Thread.Sleep(DelayMs);
            var b = base.GetBatch(indices);
            Interlocked.Increment(ref Batches);
            return b;
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void SameSeedGivesBitIdenticalBatchesInTheSameOrder(bool recycle, bool dropLast)
    {
        var ds = RandomData(103);
        var plain = Run(new DataLoader(ds, 8, shuffle: true, seed: 7, dropLast: dropLast, recycleBatches: recycle), 3);
        var loader = new DataLoader(ds, 8, shuffle: true, seed: 7, dropLast: dropLast, recycleBatches: recycle, prefetch: true);
        Assert.True(loader.Prefetch);
        AssertSame(plain, Run(loader, 3));
        Assert.Equal((3, 0), (loader.Epoch, loader.BatchIndex));
        // Unshuffled, over a generic dataset, and over the wrappers.
        var wrapped = new TransformDataset(new ConcatDataset(Dataset.RandomSplit(ds, [0.7, 0.3], seed: 2)), x => x * 3);
        AssertSame(Run(new DataLoader(wrapped, 10), 2), Run(new DataLoader(wrapped, 10, prefetch: true), 2));
        AssertSame(Run(new DataLoader(wrapped, 16, shuffle: true, seed: 1, recycleBatches: recycle), 2),
            Run(new DataLoader(wrapped, 16, shuffle: true, seed: 1, recycleBatches: recycle, prefetch: true), 2));
    }

    [Fact]
    public void BatchesAreBuiltOnABackgroundThreadOneAhead()
    {
        var probe = new Probe(RandomData(40));
        var loader = new DataLoader(probe, 4, prefetch: true);
        using var e = loader.GetEnumerator();
        Assert.True(e.MoveNext());
        // While batch 0 is in use, batch 1 is made without being asked for; batch 2 is not.
        var sw = Stopwatch.StartNew();
        while (Volatile.Read(ref probe.Batches) < 2 && sw.ElapsedMilliseconds < 10_000) Thread.Sleep(1);
        Thread.Sleep(50);
        Assert.Equal(2, Volatile.Read(ref probe.Batches));
        Assert.DoesNotContain(Environment.CurrentManagedThreadId, probe.Threads);
        Assert.Equal((0, 1), (loader.Epoch, loader.BatchIndex)); // the position is the consumer's, not the thread's
    }

    [Fact]
    public void BuildingTheNextBatchOverlapsTheLoop()
    {
        // 12 batches that take 25 ms to build and 25 ms to use: ~600 ms one after the other, ~325 ms overlapped.
        // Sleeps rather than work, so that the comparison holds on a loaded machine.
        static long Millis(bool prefetch)
        {
            var probe = new Probe(RandomData(48)) { DelayMs = 25 };
            var sw = Stopwatch.StartNew();
            foreach (var _ in new DataLoader(probe, 4, prefetch: prefetch)) Thread.Sleep(25);
            return sw.ElapsedMilliseconds;
        }
        long plain = Millis(false), overlapped = Millis(true);
        Assert.True(plain >= 12 * 50, $"{plain} ms");
        Assert.True(overlapped < 0.8 * plain, $"{overlapped} ms with prefetching, {plain} ms without");
    }

    [Fact]
    public void ResumeAndStateDictAreUnchangedByPrefetching()
    {
        var ds = RandomData(50);
        var all = Run(new DataLoader(ds, 7, shuffle: true, seed: 42), 3);
        var first = new DataLoader(ds, 7, shuffle: true, seed: 42, prefetch: true);
        var seen = Run(first, 1);
        foreach (var b in first)
        {
            seen.Add(Copy(b));
            if (seen.Count == 11) break;
        }
        var state = first.StateDict();
        Assert.Equal(new DataLoader(ds, 7, shuffle: true, seed: 42) { Epoch = 1 }.StateDict().Meta["epoch"]!.ToJsonString(), state.Meta["epoch"]!.ToJsonString());
        Assert.Equal(3, (int)state.Meta["batch_index"]!);
        var resumed = new DataLoader(ds, 7, shuffle: true, seed: 42, prefetch: true);
        resumed.LoadStateDict(state);
        seen.AddRange(Run(resumed, 2));
        AssertSame(all, seen);
        // GetBatch(epoch, i) beside a running prefetch does not disturb it.
        var side = new DataLoader(ds, 7, shuffle: true, seed: 42, prefetch: true);
        var got = new List<(float[], long[])>();
        foreach (var b in side)
        {
            got.Add(Copy(b));
            Copy(side.GetBatch(5, 1));
        }
        AssertSame(all.Take(8).ToList(), got);
    }

    [Fact]
    public void AnExceptionInTheBackgroundThreadSurfacesInTheLoop()
    {
        var probe = new Probe(RandomData(20)) { FailAtSample = 9 };
        var loader = new DataLoader(probe, 4, prefetch: true);
        var taken = new List<long[]>();
        var ex = Assert.Throws<InvalidDataException>(() =>
        {
            foreach (var (_, y) in loader) taken.Add(y.ToLongArray());
        });
        Assert.Equal("probe: sample 9 is broken", ex.Message);
        Assert.Contains(nameof(Probe), ex.StackTrace);
        Assert.Equal(2, taken.Count);                            // batches 0 and 1 arrived; batch 2 holds sample 9
        Assert.Equal((0, 2), (loader.Epoch, loader.BatchIndex)); // as without prefetching: the failed batch is next
        probe.FailAtSample = -1;
        Assert.Equal([[8, 9, 10, 11], [12, 13, 14, 15], [16, 17, 18, 19]], Run(loader, 1).Select(b => b.Y));
        // A manual enumerator keeps rethrowing rather than hanging or skipping the batch.
        probe.FailAtSample = 0;
        var e = loader.GetEnumerator();
        Assert.Throws<InvalidDataException>(() => e.MoveNext());
        Assert.Throws<InvalidDataException>(() => e.MoveNext());
        e.Dispose();
    }

    [Fact]
    public void BreakingOffStopsTheThreadPromptlyAndResumesAtTheNextBatch()
    {
        var probe = new Probe(RandomData(400)) { DelayMs = 20 };
        var loader = new DataLoader(probe, 4, prefetch: true);
        Thread? worker = null;
        var sw = Stopwatch.StartNew();
        foreach (var _ in loader)
        {
            worker = loader.ActivePrefetchThread;
            break;
        }
        Assert.NotNull(worker);
        Assert.False(worker.IsAlive);                            // joined by the foreach's Dispose
        Assert.Null(loader.ActivePrefetchThread);
        Assert.True(sw.ElapsedMilliseconds < 5_000, $"{sw.ElapsedMilliseconds} ms");
        Assert.Equal((0, 1), (loader.Epoch, loader.BatchIndex));
        Assert.Equal(Enumerable.Range(4, 4).Select(i => (long)i), loader.First().Target.ToLongArray());

        // An enumerator dropped without Dispose is stopped by the next enumeration; a finished epoch leaves no thread.
        var dropped = loader.GetEnumerator();
        dropped.MoveNext();
        var orphan = loader.ActivePrefetchThread!;
        var quick = new DataLoader(RandomData(12), 4, prefetch: true);
        Assert.Equal(3, quick.Count());
        var next = loader.GetEnumerator();
        Assert.False(orphan.IsAlive);
        Assert.Throws<InvalidOperationException>(() => dropped.MoveNext()); // the position moved under it
        next.Dispose();
        Assert.Null(loader.ActivePrefetchThread);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Thread AbandonAnEnumeration()
    {
        var loader = new DataLoader(RandomData(40), 4, prefetch: true);
        var e = loader.GetEnumerator();
        Assert.True(e.MoveNext());
        return loader.ActivePrefetchThread!;
    }

    [Fact]
    public void AnAbandonedEnumerationEndsItsThreadWhenCollected()
    {
        var thread = AbandonAnEnumeration();
        for (int i = 0; i < 20 && thread.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            thread.Join(50);
        }
        Assert.False(thread.IsAlive);
    }

    [Fact]
    public void RecycledPrefetchedBatchesReuseTheirBuffers()
    {
        var ds = RandomData(64, features: 1000);
        var loader = new DataLoader(ds, 8, recycleBatches: true, prefetch: true);
        var arrays = new HashSet<Array>(ReferenceEqualityComparer.Instance);
        foreach (var (x, _) in loader) arrays.Add(x.Data<float>());
        Assert.True(arrays.Count <= 3, $"{arrays.Count} input buffers for 8 batches");
        // The batch before the current one has been handed back; the current one is readable.
        using var e = loader.GetEnumerator();
        Assert.True(e.MoveNext());
        var first = e.Current.Input;
        Assert.True(e.MoveNext());
        Assert.Equal(1000, e.Current.Input.Size(1));
        var sw = Stopwatch.StartNew();
        while (!first._storage.Released && sw.ElapsedMilliseconds < 10_000) Thread.Sleep(1);
        Assert.Throws<ObjectDisposedException>(() => first.ToArray());
    }
}
