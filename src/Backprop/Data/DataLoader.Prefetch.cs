using System.Runtime.ExceptionServices;

namespace Backprop.Data;

public sealed partial class DataLoader
{
    private Prefetcher? _prefetcher; // the background producer of the enumeration in progress, if any
    private int[]? _prefetchOrder;   // its copy of the epoch's order, so GetBatch(epoch, i) may run beside it

    /// <summary>The background thread of the enumeration in progress (for tests).</summary>
    internal Thread? ActivePrefetchThread => _prefetcher?.Thread;

    /// <summary>Fills <paramref name="order"/> with the visiting order of <paramref name="epoch"/>.</summary>
    private void FillOrder(int[] order, int epoch)
    {
        if (Shuffle) new Generator(EpochSeed(Seed, epoch)).Permutation(order);
        else for (int i = 0; i < order.Length; i++) order[i] = i;
    }

    /// <summary>Stops the previous enumeration's producer (if any) and starts one for the epoch from the current position.</summary>
    private Prefetcher? StartPrefetch()
    {
        _prefetcher?.Stop();
        _prefetcher = null;
        if (_next >= Count) return null;
        var order = _prefetchOrder ??= new int[Samples];
        FillOrder(order, _epoch);
        // The batch handed out last stays valid until the loader starts on the next one; the producer releases it first.
        var held = _previous;
        _previous = default;
        return _prefetcher = new Prefetcher(new Producer(this, order, _next, held));
    }

    /// <summary>
    /// The enumeration's handle on its <see cref="Producer"/>. The producer's thread does not
    /// reference it (nor the loader), so an enumerator that is dropped without Dispose, together with
    /// its loader, becomes garbage, and the finalizer tells the thread to end.
    /// </summary>
    internal sealed class Prefetcher(Producer producer)
    {
        ~Prefetcher() => producer.RequestStop();

        /// <summary>The producer thread (for tests).</summary>
        internal Thread Thread => producer.Thread;

        /// <inheritdoc cref="Producer.Take"/>
        public Batch Take(int index, Batch finished) => producer.Take(index, finished);

        /// <inheritdoc cref="Producer.Stop"/>
        public void Stop()
        {
            producer.Stop();
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>
    /// Builds the batches of one epoch on a background thread, one ahead of the consumer: the
    /// consumer's <see cref="Take"/> hands over the batch made next and lets the thread start on
    /// the one after it. Batches are made in order from the loader's own index order, so they are
    /// exactly the batches a loader without prefetching hands out.
    /// </summary>
    internal sealed class Producer
    {
        private readonly Dataset _dataset;
        private readonly int _batchSize, _samples, _count, _epoch;
        private readonly bool _recycle;
        private readonly int[] _order;
        private readonly Thread _thread;
        private readonly object _lock = new();
        private int _make;                    // index of the batch the thread makes next
        private Batch _ready;                 // a finished batch the consumer has not taken yet
        private int _readyIndex;
        private bool _hasReady;
        private ExceptionDispatchInfo? _error; // what the thread threw; rethrown by every Take after it
        private Batch _finished;              // with recycling: the batch the consumer moved past, released by the thread
        private bool _stop;

        public Producer(DataLoader loader, int[] order, int start, Batch finished)
        {
            // Copies of the loader's settings rather than the loader, so the thread keeps no path to the Prefetcher alive.
            _dataset = loader.Dataset;
            _batchSize = loader.BatchSize;
            _samples = loader.Samples;
            _count = loader.Count;
            _epoch = loader._epoch;
            _recycle = loader.RecycleBatches;
            _order = order;
            _make = start;
            _finished = finished;
            _thread = new Thread(Run) { IsBackground = true, Name = "Backprop DataLoader prefetch" };
            _thread.Start();
        }

        /// <summary>The producer thread.</summary>
        internal Thread Thread => _thread;

        private void Run()
        {
            while (true)
            {
                Batch finished;
                int index;
                lock (_lock)
                {
                    while (_hasReady && !_stop) Monitor.Wait(_lock);
                    if (_stop || _make >= _count) return;
                    index = _make;
                    finished = _finished;
                    _finished = default;
                }
                try
                {
                    if (_recycle) Release(finished); // its buffers go back to this thread's pool for the next batch
                    int start = index * _batchSize;
                    var batch = BuildBatch(_dataset, _order.AsSpan(start, Math.Min(_batchSize, _samples - start)), _epoch);
                    lock (_lock)
                    {
                        _ready = batch;
                        _readyIndex = index;
                        _hasReady = true;
                        _make = index + 1;
                        Monitor.PulseAll(_lock);
                    }
                }
                catch (Exception e)
                {
                    lock (_lock)
                    {
                        _error = ExceptionDispatchInfo.Capture(e);
                        _readyIndex = index;
                        _hasReady = true;
                        Monitor.PulseAll(_lock);
                    }
                    return;
                }
            }
        }

        /// <summary>Waits for batch <paramref name="index"/> and hands it over; <paramref name="finished"/> is the batch the consumer is done with.</summary>
        public Batch Take(int index, Batch finished)
        {
            lock (_lock)
            {
                while (!_hasReady)
                {
                    if (_stop) throw new InvalidOperationException("DataLoader: this enumeration was disposed, or another enumeration of the loader stopped its background thread.");
                    Monitor.Wait(_lock);
                }
                if (_readyIndex != index)
                    throw new InvalidOperationException($"DataLoader: the background thread made batch {_readyIndex} where batch {index} was expected.");
                _error?.Throw(); // the dataset's own exception, with the background thread's stack trace
                var b = _ready;
                _ready = default;
                _hasReady = false;
                _finished = finished;
                Monitor.PulseAll(_lock);
                return b;
            }
        }

        /// <summary>Tells the thread to end after the batch it is making, without waiting (from a finalizer).</summary>
        public void RequestStop()
        {
            lock (_lock)
            {
                _stop = true;
                Monitor.PulseAll(_lock);
            }
        }

        /// <summary>Stops the thread and waits for it (at most the batch it is making); releases recycled batches nobody will see.</summary>
        public void Stop()
        {
            lock (_lock)
            {
                if (_stop && !_thread.IsAlive) return;
                _stop = true;
                Monitor.PulseAll(_lock);
            }
            if (Thread.CurrentThread != _thread) _thread.Join();
            lock (_lock)
            {
                if (_recycle)
                {
                    if (_hasReady && _error is null) Release(_ready);
                    Release(_finished);
                }
                _ready = default;
                _finished = default;
                _hasReady = _error is not null;
            }
        }

        private static void Release(Batch b)
        {
            b.Input?._storage.Release();
            b.Target?._storage.Release();
        }
    }
}
