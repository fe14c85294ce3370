using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Backprop;

/// <summary>A unit of parallel work: <see cref="Run"/> is called once per chunk index in [0, chunks).</summary>
/// <remarks>Implemented by reusable objects (or structs boxed once) so that dispatch allocates nothing.</remarks>
public interface IParallelWork
{
    /// <summary>Runs chunk <paramref name="chunk"/> of <paramref name="chunks"/>.</summary>
    void Run(int chunk, int chunks);
}

/// <summary>
/// The library's one threading policy: how many threads kernels (GEMM, large elementwise maps and
/// reductions) may use. Defaults to the number of cores, or to <c>BACKPROP_THREADS</c> when set;
/// <see cref="Count"/> sets it for the process and <see cref="Use"/> for a scope on one thread.
/// </summary>
/// <remarks>
/// Workers are dedicated background threads that watch for work for a short while (~100 µs,
/// yielding as they spin) and then block, so a core taken by another process slows us down in
/// proportion rather than stalling every barrier. A chunk whose worker has not started it by the
/// time the caller has finished its own runs on the caller instead, so a worker that is slow to
/// wake (or that the OS queued on the caller's own core) never makes a region slower than serial.
/// Work submitted from inside a parallel region runs serially, so nested kernels never
/// oversubscribe the machine. The pool serves one parallel region at a time: a thread that finds
/// it busy (another thread's kernel is running on it) runs its own chunks itself, one after
/// another, so concurrent callers never wait for each other and never share a worker.
/// </remarks>
public static class Threads
{
    private static int _count = DefaultCount();
    private static WorkerPool? _pool;
    // Held by the one caller whose region the workers are running; growing the pool also takes it,
    // so a pool is never replaced while its workers run someone's chunks.
    private static readonly object DispatchLock = new();

    [ThreadStatic] private static bool _inRegion;
    // This thread's scoped count (0: none, use _count); see Use.
    [ThreadStatic] private static int t_count;
    [ThreadStatic] private static ThreadCountScope? t_scope;

    /// <summary>
    /// Number of threads kernels called from this thread may use (at least 1): the innermost
    /// <see cref="Use"/> scope's count on this thread, else the process-wide setting. Setting it
    /// changes the process-wide setting (every thread without a scope).
    /// </summary>
    public static int Count
    {
        get
        {
            int n = t_count;
            return n != 0 ? n : _count;
        }
        set
        {
            if (value < 1)
                throw new ArgumentOutOfRangeException(nameof(value), value, "Threads.Count must be at least 1.");
            _count = value;
        }
    }

    /// <summary>
    /// Sets the thread count for kernels called from the current thread until the returned scope is
    /// disposed, without changing it for other threads: <c>using (Threads.Use(1)) { ... }</c>.
    /// Scopes nest; disposing one restores the count that was in effect when it began.
    /// </summary>
    /// <remarks>
    /// The setting belongs to the thread, not to an async flow: dispose the scope on the thread that
    /// created it (do not await inside it), or a <see cref="InvalidOperationException"/> says so.
    /// </remarks>
    public static ThreadCountScope Use(int count)
    {
        if (count < 1)
            throw new ArgumentOutOfRangeException(nameof(count), count, "Threads.Use: the thread count must be at least 1.");
        return new ThreadCountScope(count);
    }

    /// <summary>Workers in the pool (0 before the first parallel region; for tests).</summary>
    internal static int PoolSize => _pool?.Size ?? 0;

    /// <summary>True while the current thread is running a chunk of a parallel region.</summary>
    public static bool InParallelRegion => _inRegion;

    private static int DefaultCount()
    {
        var env = Environment.GetEnvironmentVariable("BACKPROP_THREADS");
        if (!string.IsNullOrWhiteSpace(env))
        {
            if (int.TryParse(env, out var n) && n >= 1)
                return n;
            throw new InvalidOperationException($"BACKPROP_THREADS must be a positive integer, got '{env}'.");
        }
        return Math.Max(1, Environment.ProcessorCount);
    }

    internal static void Enter(ThreadCountScope scope, int count)
    {
        scope.Outer = t_scope;
        scope.OuterCount = t_count;
        t_scope = scope;
        t_count = count;
    }

    internal static void Exit(ThreadCountScope scope)
    {
        if (t_scope != scope)
            throw new InvalidOperationException(scope.Owner != Environment.CurrentManagedThreadId
                ? "Threads.Use: a scope must be disposed on the thread that created it (it is not carried across await)."
                : "Threads.Use: scopes must be disposed in the reverse order of their creation.");
        t_scope = scope.Outer;
        t_count = scope.OuterCount;
        scope.Outer = null;
    }

    /// <summary>
    /// How many chunks a job of <paramref name="work"/> units should be split into, given that a
    /// chunk is worth its dispatch cost only above <paramref name="minWorkPerChunk"/> units.
    /// </summary>
    public static int ChunksFor(long work, long minWorkPerChunk)
    {
        if (_inRegion) return 1;
        int n = t_count;
        if (n == 0) n = _count;
        if (n == 1) return 1;
        long c = work / Math.Max(1, minWorkPerChunk);
        return (int)Math.Clamp(c, 1, n);
    }

    /// <summary>
    /// Runs <paramref name="work"/> for every chunk in [0, chunks): chunk 0 on the calling thread,
    /// the others on worker threads (or on the caller, if it gets to one before its worker does).
    /// Returns when all chunks have finished; rethrows the first exception a chunk threw.
    /// </summary>
    public static void For(int chunks, IParallelWork work)
    {
        if (chunks <= 1 || _inRegion)
        {
            for (int i = 0; i < Math.Max(chunks, 1); i++) RunChunk(work, i, Math.Max(chunks, 1));
            return;
        }
        // Another thread's region is running on the workers: run this one here rather than wait.
        if (!Monitor.TryEnter(DispatchLock))
        {
            for (int i = 0; i < chunks; i++) RunChunk(work, i, chunks);
            return;
        }
        try
        {
            int count = Count;
            var pool = _pool;
            if (pool == null || pool.Size < chunks - 1)
                _pool = pool = new WorkerPool(Math.Max(chunks - 1, count - 1), pool);
            pool.Run(chunks, work, count);
        }
        finally { Monitor.Exit(DispatchLock); }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void RunChunk(IParallelWork work, int chunk, int chunks)
    {
        bool was = _inRegion;
        _inRegion = true;
        try { work.Run(chunk, chunks); }
        finally { _inRegion = was; }
    }

    /// <summary>Runs a chunk on a worker with the caller's thread count and default generator in effect.</summary>
    private static void RunChunkFor(IParallelWork work, int chunk, int chunks, int count, Generator? generator)
    {
        t_count = count;
        var savedGenerator = Generator.SwapScoped(generator);
        try { RunChunk(work, chunk, chunks); }
        finally
        {
            t_count = 0;
            Generator.SwapScoped(savedGenerator);
        }
    }

    /// <summary>Fixed set of background workers; one job at a time (the caller holds <see cref="DispatchLock"/>).</summary>
    private sealed class WorkerPool
    {
        private readonly Worker[] _workers;
        private readonly CountdownSignal _done = new();
        public int Size => _workers.Length;

        public WorkerPool(int size, WorkerPool? previous)
        {
            _workers = new Worker[size];
            for (int i = 0; i < size; i++)
                _workers[i] = previous != null && i < previous._workers.Length ? previous._workers[i] : new Worker(i + 1);
        }

        public void Run(int chunks, IParallelWork work, int count)
        {
            var generator = Generator.Scoped;
            var done = _done;
            done.Reset(chunks - 1);
            for (int i = 1; i < chunks; i++) _workers[i - 1].Post(work, i, chunks, count, generator, done);
            Exception? first = null;
            try { RunChunk(work, 0, chunks); }
            catch (Exception e) { first = e; }
            // A worker that has not picked up its chunk yet is still waking (tens of
            // microseconds, more in a VM) or is queued behind this thread on the same core;
            // with chunks of equal size, running it here always finishes sooner than waiting.
            for (int i = 1; i < chunks; i++)
            {
                if (!_workers[i - 1].TryRevoke()) continue;
                Exception? error = null;
                try { RunChunk(work, i, chunks); }
                catch (Exception e) { error = e; }
                done.Signal(error);
            }
            done.Wait();
            first ??= done.Error;
            if (first != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
    }

    // How long an idle worker watches for the next job before blocking, and how long a caller
    // waits for running chunks before blocking. Waking a blocked thread costs 10-100 µs under
    // virtualization, as much as a whole mid-sized kernel; SpinWait yields, so a thread sharing
    // the core still gets to run.
    private static readonly long WorkerSpinTicks = Stopwatch.Frequency / 10_000;  // 100 µs
    private static readonly long CallerSpinTicks = Stopwatch.Frequency / 5_000;   // 200 µs

    /// <summary>
    /// Completion counter: spins for a while, then blocks on a monitor whose lock object exists from
    /// the start. (A ManualResetEventSlim creates its lock object the first time a wait blocks: an
    /// allocation on the caller's thread that fell into whichever warm step first waited for a
    /// late worker, so "a warm step allocates nothing" held or not depending on timing.)
    /// </summary>
    private sealed class CountdownSignal
    {
        private int _remaining;
        private readonly object _gate = new();
        private bool _set;
        public volatile Exception? Error;

        public void Reset(int count)
        {
            Error = null;
            lock (_gate) _set = count == 0;
            _remaining = count;
        }

        public void Signal(Exception? e)
        {
            if (e != null) Error ??= e;
            if (Interlocked.Decrement(ref _remaining) == 0)
                lock (_gate)
                {
                    _set = true;
                    Monitor.PulseAll(_gate);
                }
        }

        public void Wait()
        {
            // Chunks still outstanding here were started before the caller finished its own, so
            // they end soon; spin for them rather than pay a wake-up.
            if (Volatile.Read(ref _remaining) > 0)
            {
                long deadline = Stopwatch.GetTimestamp() + CallerSpinTicks;
                var spinner = new SpinWait();
                while (Volatile.Read(ref _remaining) > 0 && Stopwatch.GetTimestamp() < deadline)
                    spinner.SpinOnce(sleep1Threshold: -1);
            }
            // Wait for the signal even when the count is already 0: the last Signal may not have set
            // it yet, and a set arriving after the next Reset would end the next job's wait early.
            lock (_gate)
                while (!_set) Monitor.Wait(_gate);
        }
    }

    private sealed class Worker
    {
        private const int Idle = 0, Posted = 1, Running = 2;
        private readonly ManualResetEventSlim _wake = new(false, spinCount: 1);
        private int _state;
        private IParallelWork? _work;
        private int _chunk, _chunks, _count;
        private Generator? _generator;
        private CountdownSignal? _done;

        public Worker(int id)
        {
            var t = new Thread(Loop) { IsBackground = true, Name = $"backprop-worker-{id}" };
            t.Start();
        }

        public void Post(IParallelWork work, int chunk, int chunks, int count, Generator? generator, CountdownSignal done)
        {
            _work = work; _chunk = chunk; _chunks = chunks; _count = count; _generator = generator; _done = done;
            Volatile.Write(ref _state, Posted);
            _wake.Set();
        }

        /// <summary>Takes back a posted chunk the worker has not started; true if the caller must now run it.</summary>
        public bool TryRevoke() => Interlocked.CompareExchange(ref _state, Idle, Posted) == Posted;

        private void Loop()
        {
            while (true)
            {
                WaitForPost();
                if (Interlocked.CompareExchange(ref _state, Running, Posted) != Posted) continue; // revoked
                var done = _done!;
                Exception? error = null;
                try { RunChunkFor(_work!, _chunk, _chunks, _count, _generator); }
                catch (Exception e) { error = e; }
                _work = null; _generator = null; _done = null;
                Volatile.Write(ref _state, Idle);
                done.Signal(error);
            }
        }

        private void WaitForPost()
        {
            // Kernels come in quick succession (layer after layer), so watch for the next job
            // for a while before blocking. The state, not the event, says whether there is work:
            // a wake-up left over from a revoked post just loops back here.
            long deadline = Stopwatch.GetTimestamp() + WorkerSpinTicks;
            var spinner = new SpinWait();
            while (Volatile.Read(ref _state) != Posted)
            {
                if (Stopwatch.GetTimestamp() < deadline)
                {
                    spinner.SpinOnce(sleep1Threshold: -1);
                    continue;
                }
                _wake.Wait();
                _wake.Reset();
            }
        }
    }
}

/// <summary>
/// A thread count in effect on one thread until disposed; returned by <see cref="Threads.Use"/>.
/// Disposing it twice does nothing.
/// </summary>
public sealed class ThreadCountScope : IDisposable
{
    internal ThreadCountScope? Outer;
    internal int OuterCount;
    internal readonly int Owner = Environment.CurrentManagedThreadId;
    private bool _disposed;

    internal ThreadCountScope(int count)
    {
        Count = count;
        Threads.Enter(this, count);
    }

    /// <summary>The thread count this scope sets.</summary>
    public int Count { get; }

    /// <summary>Restores the thread count in effect before the scope began.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        Threads.Exit(this);
        _disposed = true;
    }
}
