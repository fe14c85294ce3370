using System.Collections;
using System.Text.Json.Nodes;

namespace Backprop.Data;

/// <summary>
/// Iterates a <see cref="Dataset"/> in mini-batches, optionally shuffled. The loader has a position
/// (<see cref="Epoch"/>, <see cref="BatchIndex"/>): enumerating it runs from there to the end of the
/// epoch, so a second <c>foreach</c> over the same loader is the next epoch. With shuffling, epoch e
/// visits the samples in a permutation that depends only on (seed, e), so a run restored with
/// <see cref="LoadStateDict"/> sees exactly the batches an uninterrupted run would. With
/// <c>prefetch</c>, the next batch is built on a background thread while the current one is in use.
/// </summary>
public sealed partial class DataLoader : IEnumerable<Batch>
{
    private readonly int[] _order;   // sample indices of epoch _orderEpoch, reused every epoch
    private int _orderEpoch = -1;
    private int _epoch;
    private int _next;               // index of the next batch within _epoch
    private int _version;            // bumped when the position is moved from outside an enumeration
    private Batch _previous;         // with RecycleBatches: the last batch handed out, recycled when the next one is made

    /// <summary>Creates a loader over <paramref name="dataset"/>.</summary>
    /// <param name="dataset">The samples.</param>
    /// <param name="batchSize">Samples per batch (the last batch of an epoch may be smaller unless <paramref name="dropLast"/>).</param>
    /// <param name="shuffle">Visit the samples in a new random order each epoch.</param>
    /// <param name="seed">Seed of the shuffling; the order of epoch e is a function of (seed, e) only.</param>
    /// <param name="dropLast">Leave out the last batch of an epoch when it would be smaller than <paramref name="batchSize"/>.</param>
    /// <param name="recycleBatches">
    /// Reuse batch buffers: a batch's tensors stay valid only until the loader makes the next batch
    /// (reading them later throws; <see cref="Tensor.Detach"/> one to keep it). Saves a large allocation per step.
    /// </param>
    /// <param name="prefetch">
    /// Build the next batch on a background thread while the current one is in use. The batches and
    /// their order are exactly those without it; an exception the dataset throws surfaces from the
    /// <c>foreach</c>, and ending the <c>foreach</c> (or breaking out of it) stops the thread.
    /// </param>
    public DataLoader(Dataset dataset, int batchSize, bool shuffle = false, ulong seed = 0, bool dropLast = false, bool recycleBatches = false,
        bool prefetch = false)
    {
        RecycleBatches = recycleBatches;
        Prefetch = prefetch;
        ArgumentNullException.ThrowIfNull(dataset);
        if (batchSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"DataLoader: batchSize must be positive, got {batchSize}.");
        Dataset = dataset;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        DropLast = dropLast;
        Samples = dataset.Count;
        if (Samples < 0)
            throw new ArgumentException($"DataLoader: the dataset reports {Samples} samples.", nameof(dataset));
        _order = new int[Samples];
        Count = dropLast ? Samples / batchSize : (int)(((long)Samples + batchSize - 1) / batchSize);
    }

    /// <summary>Whether batch buffers are reused (each batch is valid until the next one is made).</summary>
    public bool RecycleBatches { get; }

    /// <summary>Whether the next batch is built on a background thread while the current one is in use.</summary>
    public bool Prefetch { get; }

    /// <summary>The dataset being iterated.</summary>
    public Dataset Dataset { get; }

    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether each epoch visits the samples in a fresh random order.</summary>
    public bool Shuffle { get; }

    /// <summary>Seed of the shuffling.</summary>
    public ulong Seed { get; }

    /// <summary>Whether an incomplete last batch is left out.</summary>
    public bool DropLast { get; }

    /// <summary>Number of samples in the dataset (taken when the loader was created).</summary>
    public int Samples { get; }

    /// <summary>Number of batches per epoch.</summary>
    public int Count { get; }

    /// <summary>
    /// The largest <see cref="Epoch"/> a loader accepts (a billion): far beyond any run, and far enough
    /// below <see cref="int.MaxValue"/> that counting epochs on from it cannot overflow.
    /// </summary>
    public const int MaxEpoch = 1_000_000_000;

    /// <summary>
    /// The epoch the next batch belongs to (0 for a new loader), at most <see cref="MaxEpoch"/>.
    /// Setting it moves the position to the start of that epoch.
    /// </summary>
    public int Epoch
    {
        get => _epoch;
        set
        {
            if (value is < 0 or > MaxEpoch)
                throw new ArgumentOutOfRangeException(nameof(value), value, $"DataLoader.Epoch: {value} is not an epoch; it must be in [0, {MaxEpoch}].");
            _epoch = value;
            _next = 0;
            _version++;
        }
    }

    /// <summary>Index within <see cref="Epoch"/> of the next batch an enumeration will produce.</summary>
    public int BatchIndex => _next;

    /// <summary>Moves the position forward by <paramref name="batches"/> batches, across epoch ends, without loading them.</summary>
    public void SkipBatches(long batches)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batches);
        if (Count == 0) return;
        long pos = (long)_epoch * Count + _next + batches;
        long epoch = pos / Count;
        if (epoch > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(batches), $"DataLoader.SkipBatches: epoch {epoch} is past the largest supported epoch.");
        _epoch = (int)epoch;
        _next = (int)(pos % Count);
        _version++;
    }

    /// <summary>The sample indices of batch <paramref name="batchIndex"/> of epoch <paramref name="epoch"/> (a view of an internal buffer, valid until the next call).</summary>
    internal ReadOnlySpan<int> BatchIndices(int epoch, int batchIndex)
    {
        EnsureOrder(epoch);
        int start = batchIndex * BatchSize;
        return _order.AsSpan(start, Math.Min(BatchSize, Samples - start));
    }

    private void EnsureOrder(int epoch)
    {
        if (_orderEpoch == epoch || (!Shuffle && _orderEpoch >= 0)) { _orderEpoch = epoch; return; }
        FillOrder(_order, epoch);
        _orderEpoch = epoch;
    }

    /// <summary>
    /// The seed of epoch <paramref name="epoch"/>'s permutation: (seed, epoch) through a SplitMix64
    /// finalizer, so that neighbouring seeds and epochs give unrelated orders. Part of the
    /// reproducibility contract: changing it changes every shuffled run.
    /// </summary>
    internal static ulong EpochSeed(ulong seed, int epoch)
    {
        ulong z = seed ^ ((ulong)(uint)epoch + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Batch <paramref name="batchIndex"/> of <paramref name="epoch"/>, without moving the position.</summary>
    public Batch GetBatch(int epoch, int batchIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        if ((uint)batchIndex >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(batchIndex), batchIndex, $"DataLoader.GetBatch: batch {batchIndex} is out of range; an epoch has {Count} batches.");
        return BuildBatch(Dataset, BatchIndices(epoch, batchIndex), epoch);
    }

    /// <summary>The position (epoch and next batch) and the settings it depends on, for checkpoints.</summary>
    public StateDict StateDict()
    {
        var s = new StateDict();
        s.Meta["epoch"] = _epoch;
        s.Meta["batch_index"] = _next;
        s.Meta["batch_size"] = BatchSize;
        s.Meta["samples"] = Samples;
        s.Meta["shuffle"] = Shuffle;
        s.Meta["seed"] = Seed.ToString(System.Globalization.CultureInfo.InvariantCulture);
        s.Meta["drop_last"] = DropLast;
        return s;
    }

    /// <summary>
    /// Restores a position saved by <see cref="StateDict"/>. The loader must have the same batch
    /// size, sample count, shuffling, seed and dropLast, or the saved position would name other batches.
    /// </summary>
    public void LoadStateDict(StateDict state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var m = state.Meta;
        int epoch = Get<int>(m, "epoch"), next = Get<int>(m, "batch_index");
        Expect("batch_size", Get<int>(m, "batch_size"), BatchSize);
        Expect("samples", Get<int>(m, "samples"), Samples);
        Expect("shuffle", Get<bool>(m, "shuffle"), Shuffle);
        Expect("seed", Get<string>(m, "seed"), Seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Expect("drop_last", Get<bool>(m, "drop_last"), DropLast);
        if (epoch is < 0 or > MaxEpoch)
            throw new ArgumentException($"DataLoader.LoadStateDict: 'epoch' is {epoch}; it must be in [0, {MaxEpoch}].", nameof(state));
        if (epoch == MaxEpoch && Count > 0 && next == Count)
            throw new ArgumentException($"DataLoader.LoadStateDict: position epoch {epoch}, batch {next} ends epoch {MaxEpoch}, the last one a loader counts.", nameof(state));
        if (next < 0 || next > Count)
            throw new ArgumentException($"DataLoader.LoadStateDict: position epoch {epoch}, batch {next} is invalid for a loader with {Count} batches per epoch.", nameof(state));
        _epoch = epoch;
        _next = next;
        if (Count > 0 && _next == Count) { _epoch++; _next = 0; }
        _version++;
    }

    private static T Get<T>(JsonObject m, string key)
    {
        if (m[key] is not JsonValue v)
            throw new ArgumentException($"DataLoader.LoadStateDict: the state has no '{key}' entry (is it a data loader's state?).", "state");
        try { return v.GetValue<T>(); }
        catch (Exception e) when (e is FormatException or InvalidOperationException or OverflowException)
        {
            string expected = typeof(T) == typeof(int) ? "an integer" : typeof(T) == typeof(bool) ? "true or false" : "a string";
            throw new ArgumentException($"DataLoader.LoadStateDict: '{key}' must be {expected}, found {v.ToJsonString()}.", "state", e);
        }
    }

    private static void Expect<T>(string key, T saved, T mine)
    {
        if (!EqualityComparer<T>.Default.Equals(saved, mine))
            throw new ArgumentException(
                $"DataLoader.LoadStateDict: the state was saved by a loader with {key} = {saved}, this loader has {key} = {mine}; " +
                "the saved position would name different batches.", "state");
    }

    /// <summary>Enumerates the batches from the current position to the end of the epoch, advancing the position as it goes.</summary>
    public Enumerator GetEnumerator()
    {
        int version = ++_version;
        return new(this, version, Prefetch ? StartPrefetch() : null);
    }

    IEnumerator<Batch> IEnumerable<Batch>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Enumerates one epoch from the loader's position; a struct so that <c>foreach</c> allocates nothing for it.</summary>
    public struct Enumerator : IEnumerator<Batch>
    {
        private readonly DataLoader _loader;
        private readonly int _version;
        private readonly int _epoch;
        private readonly Prefetcher? _prefetcher;
        private bool _done;

        internal Enumerator(DataLoader loader, int version, Prefetcher? prefetcher)
        {
            _loader = loader;
            _version = version;
            _prefetcher = prefetcher;
            _epoch = loader._epoch;
            _done = false;
            Current = default;
        }

        /// <summary>The batch produced by the last successful <see cref="MoveNext"/>.</summary>
        public Batch Current { get; private set; }

        readonly object IEnumerator.Current => Current;

        /// <summary>Loads the next batch and moves the loader's position past it.</summary>
        public bool MoveNext()
        {
            var l = _loader;
            if (l._version != _version)
                throw new InvalidOperationException(
                    "DataLoader: the loader's position was changed (Epoch, SkipBatches, LoadStateDict or another enumeration of it) while it was being enumerated.");
            if (_done || l._epoch != _epoch) { _done = true; return false; }
            if (l.Count == 0)
            {
                // An empty epoch still counts, so that epochs stay in step with the caller's loop.
                l._epoch++;
                _done = true;
                return false;
            }
            if (_prefetcher != null)
            {
                // The batch handed out before is finished with: the background thread releases it (when recycling).
                Current = _prefetcher.Take(l._next, l._previous);
                l._previous = l.RecycleBatches ? Current : default;
            }
            else
            {
                if (l.RecycleBatches)
                {
                    // The previous batch's buffers go back to the pool (unless detached), so this one reuses them.
                    l._previous.Input?._storage.Release();
                    l._previous.Target?._storage.Release();
                }
                Current = BuildBatch(l.Dataset, l.BatchIndices(l._epoch, l._next), l._epoch);
                if (l.RecycleBatches) l._previous = Current;
            }
            // The position moves as the batch is handed out: a checkpoint taken while processing
            // it records the batch after it.
            if (++l._next == l.Count) { l._epoch++; l._next = 0; }
            return true;
        }

        /// <summary>Not supported: the position is the loader's; set <see cref="Epoch"/> instead.</summary>
        public readonly void Reset() => throw new NotSupportedException("DataLoader.Enumerator.Reset: set the loader's Epoch to start an epoch again.");

        /// <summary>Stops the background thread of a prefetching loader (waiting at most for the batch it is making).</summary>
        public readonly void Dispose()
        {
            if (_prefetcher == null) return;
            _prefetcher.Stop();
            if (_loader._prefetcher == _prefetcher) _loader._prefetcher = null;
        }
    }
}
