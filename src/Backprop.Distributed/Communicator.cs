using System.Diagnostics;

namespace Backprop.Distributed;

/// <summary>A non-blocking all-reduce in flight.</summary>
public abstract class PendingReduce
{
    /// <summary>Whether it completed (drives progress; cheap).</summary>
    public abstract bool Test();
    /// <summary>Waits until it completes.</summary>
    public abstract void Wait();
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
/// </summary>
public sealed unsafe class MpiCommunicator : Communicator
{
    private readonly int _rank, _size;
    private bool _finalized;

    /// <summary>The longest a collective may wait for the other ranks (BACKPROP_DISTRIBUTED_TIMEOUT seconds, default 300).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(DefaultTimeoutSeconds());

    /// <summary>The thread support MPI provided.</summary>
    public Mpi.ThreadLevel ThreadLevel { get; }

    /// <summary>What the rank was doing, for the watchdog's message ("all-reduce of step 57").</summary>
    public string Activity { get; set; } = "start-up";

    /// <summary>Initializes MPI (a one-line <see cref="MpiException"/> when libmpi is missing or mpirun did not start the process).</summary>
    public MpiCommunicator()
    {
        ThreadLevel = Mpi.Init(Mpi.ThreadLevel.Multiple);
        if (ThreadLevel < Mpi.ThreadLevel.Serialized)
            throw new MpiException($"--distributed: Open MPI provides thread level {ThreadLevel}; Backprop needs at least Serialized.");
        _rank = Mpi.Rank;
        _size = Mpi.Size;
    }

    private static double DefaultTimeoutSeconds() =>
        double.TryParse(Environment.GetEnvironmentVariable("BACKPROP_DISTRIBUTED_TIMEOUT"), System.Globalization.NumberStyles.Float,
            System.Globalization.CultureInfo.InvariantCulture, out double s) && s > 0 ? s : 300;

    /// <inheritdoc/>
    public override int Rank => _rank;
    /// <inheritdoc/>
    public override int Size => _size;

    /// <summary>Waits for a request with the watchdog: spins on MPI_Test, then yields, then sleeps; past <see cref="Timeout"/>, aborts the job.</summary>
    internal void WaitBounded(ref nint request)
    {
        if (Mpi.Test(ref request)) return;
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; ; i++)
        {
            if (Mpi.Test(ref request)) return;
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
        public override bool Test() => _request == 0 || Mpi.Test(ref _request);
        public override void Wait() { if (_request != 0) comm.WaitBounded(ref _request); }
    }

    /// <inheritdoc/>
    public override void Barrier()
    {
        nint r = Mpi.StartBarrier();
        WaitBounded(ref r);
    }

    /// <inheritdoc/>
    public override void Broadcast(Span<float> data, int root)
    {
        fixed (float* p = data)
        {
            nint r = Mpi.StartBroadcast(p, data.Length, Mpi.Float, root);
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
            nint r = Mpi.StartAllReduce(p, data.Length, Mpi.Double, op);
            WaitBounded(ref r);
        }
    }

    /// <inheritdoc/>
    public override PendingReduce StartAllReduceSum(float[] buffer, int offset, int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((long)offset + count, buffer.Length);
        fixed (float* p = buffer) // pinned by the caller, so the address stays valid after this block
            return new Request(this, Mpi.StartAllReduce(p + offset, count, Mpi.Float, Mpi.OpSum));
    }

    /// <inheritdoc/>
    public override void Abort(string message, int code)
    {
        Console.Error.WriteLine(message);
        Console.Error.Flush();
        Mpi.Abort(code);
    }

    /// <summary>MPI_Finalize (once).</summary>
    public override void Dispose()
    {
        if (_finalized) return;
        _finalized = true;
        Mpi.Shutdown();
    }
}
