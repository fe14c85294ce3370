using System.Diagnostics;

namespace Backprop.Distributed;

/// <summary>A non-blocking all-reduce in flight.</summary>
public abstract class PendingReduce
{
    /// <summary>Whether it completed (drives progress; cheap).</summary>
    public abstract bool Test();
    /// <summary>Waits until it completes.</summary>
    public abstract void Wait();
    /// <summary>Whether it is known to have completed, without calling MPI (a progress thread's finding).</summary>
    public virtual bool IsCompleted => false;
}

/// <summary>
/// The collective operations data-parallel training needs, over a group of <see cref="Size"/>
/// ranks: <see cref="MpiCommunicator"/> (processes started by mpirun) or <see cref="LocalCommunicator"/>
/// (one process). Every rank must call the collectives in the same order.
/// </summary>
public abstract class Communicator : IDisposable
{
    /// <summary>This rank, 0 .. Size-1.</summary>
    public abstract int Rank { get; }
    /// <summary>The number of ranks.</summary>
    public abstract int Size { get; }
    /// <summary>Waits until every rank got here.</summary>
    public abstract void Barrier();
    /// <summary>Every rank's <paramref name="data"/> becomes <paramref name="root"/>'s.</summary>
    public abstract void Broadcast(Span<float> data, int root);
    /// <summary>Every rank's <paramref name="data"/> becomes the element-wise sum over the ranks (blocking).</summary>
    public abstract void AllReduceSum(Span<double> data);
    /// <summary>Every rank's <paramref name="data"/> becomes the element-wise maximum over the ranks (blocking).</summary>
    public abstract void AllReduceMax(Span<double> data);
    /// <summary>
    /// Starts summing <paramref name="count"/> floats of <paramref name="buffer"/> from
    /// <paramref name="offset"/> over the ranks, in place; the buffer must be pinned
    /// (GC.AllocateArray(pinned: true)) and left alone until the returned request completes.
    /// </summary>
    public abstract PendingReduce StartAllReduceSum(float[] buffer, int offset, int count);
    /// <summary>Ends every rank of the job with <paramref name="code"/> after printing <paramref name="message"/> (one line) on stderr.</summary>
    public abstract void Abort(string message, int code);
    /// <inheritdoc/>
    public virtual void Dispose() { }
}

/// <summary>A group of one: every collective is the identity. Lets the data-parallel code run (and be tested) without MPI.</summary>
public sealed class LocalCommunicator : Communicator
{
    private sealed class Done : PendingReduce
    {
        public static readonly Done Instance = new();
        public override bool Test() => true;
        public override void Wait() { }
    }

    /// <inheritdoc/>
    public override int Rank => 0;
    /// <inheritdoc/>
    public override int Size => 1;
    /// <inheritdoc/>
    public override void Barrier() { }
    /// <inheritdoc/>
    public override void Broadcast(Span<float> data, int root) { }
    /// <inheritdoc/>
    public override void AllReduceSum(Span<double> data) { }
    /// <inheritdoc/>
    public override void AllReduceMax(Span<double> data) { }
    /// <inheritdoc/>
    public override PendingReduce StartAllReduceSum(float[] buffer, int offset, int count) => Done.Instance;
    /// <inheritdoc/>
    public override void Abort(string message, int code)
    {
        Console.Error.WriteLine(message);
        Environment.Exit(code);
    }
}

/// <summary>
/// MPI_COMM_WORLD of Open MPI. Every wait is bounded: when a collective gets no reply from the
/// other ranks within <see cref="Timeout"/> (a rank hung, or died without mpirun noticing), this
/// rank prints one line and calls MPI_Abort, which ends the whole job (the watchdog; a rank that
/// dies is normally noticed by mpirun itself, which ends the job at once).
/// <para>
/// Progress: Open MPI advances a non-blocking collective only inside MPI calls made by some thread
/// of the process. A <em>progress thread</em> (<see cref="Progress"/>) calls MPI_Test on the
/// reductions in flight every <see cref="ProgressIntervalMicroseconds"/> while backward runs on the
/// other threads, so a bucket's all-reduce moves while the layers below compute their gradients.
/// Every MPI call is made under one lock, which is what MPI_THREAD_SERIALIZED asks (Open MPI 4.1
/// grants MPI_THREAD_MULTIPLE, which allows it too).
/// </para>
/// </summary>
public sealed unsafe class MpiCommunicator : Communicator
{
    private readonly int _rank, _size;
    private bool _finalized;
    private readonly object _mpi = new();
    private readonly List<Request> _inFlight = [];
    private readonly SemaphoreSlim _work = new(0);
    private Thread? _progress;
    private volatile bool _stopProgress;

    /// <summary>The longest a collective may wait for the other ranks (BACKPROP_DISTRIBUTED_TIMEOUT seconds, default 300).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(DefaultTimeoutSeconds());

    /// <summary>The thread support MPI provided.</summary>
    public Mpi.ThreadLevel ThreadLevel { get; }

    /// <summary>What the rank was doing, for the watchdog's message ("all-reduce of step 57").</summary>
    public string Activity { get; set; } = "start-up";

    /// <summary>How non-blocking reductions progress while the caller computes.</summary>
    public enum ProgressMode
    {
        /// <summary>Only when the caller tests or waits (MPI's default: little moves before the wait).</summary>
        Off,
        /// <summary>A background thread tests the reductions in flight every <see cref="ProgressIntervalMicroseconds"/>.</summary>
        Thread,
    }

    /// <summary>The progress mode (BACKPROP_MPI_PROGRESS=off|thread; default thread).</summary>
    public ProgressMode Progress { get; }

    /// <summary>The pause of the progress thread between two sweeps of MPI_Test, in microseconds (BACKPROP_MPI_PROGRESS_US, default 50).</summary>
    public int ProgressIntervalMicroseconds { get; } = 50;

    /// <summary>Sweeps of the progress thread (each an MPI_Test of every reduction in flight).</summary>
    public long ProgressSweeps => Interlocked.Read(ref _sweeps);
    private long _sweeps;

    /// <summary>Initializes MPI (a one-line <see cref="MpiException"/> when libmpi is missing or mpirun did not start the process).</summary>
    public MpiCommunicator()
    {
        ThreadLevel = Mpi.Init(Mpi.ThreadLevel.Multiple);
        if (ThreadLevel < Mpi.ThreadLevel.Serialized)
            throw new MpiException($"--distributed: Open MPI provides thread level {ThreadLevel}; Backprop needs at least Serialized.");
        _rank = Mpi.Rank;
        _size = Mpi.Size;
        Progress = Environment.GetEnvironmentVariable("BACKPROP_MPI_PROGRESS")?.ToLowerInvariant() switch
        {
            null or "" or "thread" => ProgressMode.Thread,
            "off" => ProgressMode.Off,
            var v => throw new MpiException($"--distributed: BACKPROP_MPI_PROGRESS={v}: expected thread or off."),
        };
        if (int.TryParse(Environment.GetEnvironmentVariable("BACKPROP_MPI_PROGRESS_US"), out int us) && us >= 0) ProgressIntervalMicroseconds = us;
        if (Progress == ProgressMode.Thread && _size > 1)
        {
            _progress = new Thread(ProgressLoop) { IsBackground = true, Name = "mpi-progress" };
            _progress.Start();
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "usleep")]
    private static extern int USleep(uint microseconds);

    private void ProgressLoop()
    {
        var pending = new List<Request>();
        while (!_stopProgress)
        {
            lock (_inFlight)
            {
                pending.Clear();
                pending.AddRange(_inFlight);
            }
            if (pending.Count == 0)
            {
                _work.Wait(100);
                continue;
            }
            bool allDone = true;
            foreach (var r in pending)
                if (!r.Test()) allDone = false;
            Interlocked.Increment(ref _sweeps);
            lock (_inFlight) _inFlight.RemoveAll(r => r.Done);
            if (!allDone && ProgressIntervalMicroseconds > 0) USleep((uint)ProgressIntervalMicroseconds);
        }
    }

    private static double DefaultTimeoutSeconds() =>
        double.TryParse(Environment.GetEnvironmentVariable("BACKPROP_DISTRIBUTED_TIMEOUT"), System.Globalization.NumberStyles.Float,
            System.Globalization.CultureInfo.InvariantCulture, out double s) && s > 0 ? s : 300;

    /// <inheritdoc/>
    public override int Rank => _rank;
    /// <inheritdoc/>
    public override int Size => _size;

    private bool TestLocked(ref nint request)
    {
        lock (_mpi) return Mpi.Test(ref request);
    }

    /// <summary>Waits for a request with the watchdog: spins on MPI_Test, then yields, then sleeps; past <see cref="Timeout"/>, aborts the job.</summary>
    internal void WaitBounded(ref nint request)
    {
        if (TestLocked(ref request)) return;
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; ; i++)
        {
            if (TestLocked(ref request)) return;
            if (i < 2000) continue;
            var waited = Stopwatch.GetElapsedTime(start);
            if (waited > Timeout)
                Abort($"error: rank {_rank} of {_size}: no reply from the other ranks for {Timeout.TotalSeconds:F0} s during {Activity} " +
                    "(a rank hung or died); ending the job (BACKPROP_DISTRIBUTED_TIMEOUT sets the limit).", 4);
            if (waited.TotalMilliseconds < 50) Thread.Yield();
            else Thread.Sleep(1);
        }
    }

    private sealed class Request(MpiCommunicator comm, nint request) : PendingReduce
    {
        private nint _request = request;
        private volatile bool _done = request == 0;
        public bool Done => _done;
        public override bool IsCompleted => _done;

        public override bool Test()
        {
            if (_done) return true;
            lock (comm._mpi)
            {
                if (_done) return true;
                if (Mpi.Test(ref _request)) _done = true;
            }
            return _done;
        }

        public override void Wait()
        {
            if (_done) return;
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; !Test(); i++)
            {
                if (i < 2000) continue;
                var waited = Stopwatch.GetElapsedTime(start);
                if (waited > comm.Timeout)
                    comm.Abort($"error: rank {comm._rank} of {comm._size}: no reply from the other ranks for {comm.Timeout.TotalSeconds:F0} s during {comm.Activity} " +
                        "(a rank hung or died); ending the job (BACKPROP_DISTRIBUTED_TIMEOUT sets the limit).", 4);
                if (waited.TotalMilliseconds < 50) Thread.Yield();
                else Thread.Sleep(1);
            }
        }
    }

    /// <inheritdoc/>
    public override void Barrier()
    {
        nint r;
        lock (_mpi) r = Mpi.StartBarrier();
        WaitBounded(ref r);
    }

    /// <inheritdoc/>
    public override void Broadcast(Span<float> data, int root)
    {
        fixed (float* p = data)
        {
            nint r;
            lock (_mpi) r = Mpi.StartBroadcast(p, data.Length, Mpi.Float, root);
            WaitBounded(ref r);
        }
    }

    /// <inheritdoc/>
    public override void AllReduceSum(Span<double> data) => AllReduce(data, Mpi.OpSum);
    /// <inheritdoc/>
    public override void AllReduceMax(Span<double> data) => AllReduce(data, Mpi.OpMax);

    private void AllReduce(Span<double> data, nint op)
    {
        fixed (double* p = data)
        {
            nint r;
            lock (_mpi) r = Mpi.StartAllReduce(p, data.Length, Mpi.Double, op);
            WaitBounded(ref r);
        }
    }

    /// <inheritdoc/>
    public override PendingReduce StartAllReduceSum(float[] buffer, int offset, int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((long)offset + count, buffer.Length);
        Request req;
        fixed (float* p = buffer) // pinned by the caller, so the address stays valid after this block
            lock (_mpi) req = new Request(this, Mpi.StartAllReduce(p + offset, count, Mpi.Float, Mpi.OpSum));
        if (_progress != null && !req.Done)
        {
            lock (_inFlight) _inFlight.Add(req);
            _work.Release();
        }
        return req;
    }

    /// <inheritdoc/>
    public override void Abort(string message, int code)
    {
        Console.Error.WriteLine(message);
        Console.Error.Flush();
        Mpi.Abort(code);
    }

    /// <summary>Stops the progress thread and calls MPI_Finalize (once).</summary>
    public override void Dispose()
    {
        if (_finalized) return;
        _finalized = true;
        _stopProgress = true;
        _work.Release();
        _progress?.Join();
        lock (_mpi) Mpi.Shutdown();
    }
}
