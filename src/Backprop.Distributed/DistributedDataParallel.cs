using System.Diagnostics;
using System.Numerics.Tensors;

namespace Backprop.Distributed;

/// <summary>
/// Data-parallel training, like PyTorch's DistributedDataParallel. Every rank holds the whole model
/// and trains on its own part of each batch (<see cref="Data.DataLoader.SetShard"/>); this wrapper
/// <list type="bullet">
/// <item>copies rank 0's parameters and float32 buffers to every rank at construction;</item>
/// <item>averages the gradients over the ranks: the parameters are grouped in buckets of about
/// <see cref="BucketBytes"/> bytes, filled in reverse parameter order (the order backward produces
/// them), and a bucket's non-blocking all-reduce (MPI_Iallreduce) starts from the parameters'
/// post-accumulate-gradient hooks as soon as its last gradient is ready, while backward goes on
/// computing the gradients of the layers below;</item>
/// <item><see cref="FinishGradientSync"/> (before the optimizer step) waits for the buckets and
/// writes the averaged gradients back, so the optimizer step, the same on every rank, gives the
/// same parameters everywhere;</item>
/// <item><see cref="NoSync"/> skips the communication for gradient accumulation: gradients add up
/// locally and the next synchronized backward reduces the sum.</item>
/// </list>
/// Buckets are started strictly in bucket order on every rank (MPI requires the same order of
/// collectives), and a bucket whose parameters got no gradient in a pass is started, with zeros for
/// them, by <see cref="FinishGradientSync"/>.
/// </summary>
public sealed class DistributedDataParallel : NN.Module
{
    /// <summary>The default bucket size: 1 MiB (chosen by measurement, docs/distributed.md).</summary>
    public const long DefaultBucketBytes = 1 << 20;

    private sealed class Bucket
    {
        public required float[] Buffer;          // pinned
        public required List<(Parameter P, int Offset)> Members;
        public int Ready;
        public bool[] Seen = [];
        public PendingReduce? Pending;
    }

    private readonly Bucket[] _buckets;
    private readonly Dictionary<Parameter, (int Bucket, int Member)> _where = new(ReferenceEqualityComparer.Instance);
    private readonly List<IDisposable> _hooks = [];
    private int _nextLaunch;
    private int _noSync;
    private long _firstLaunch, _syncCalls;

    /// <summary>The wrapped model.</summary>
    public NN.Module Module { get; }
    /// <summary>The group of ranks.</summary>
    public Communicator Communicator { get; }
    /// <summary>The bucket size asked for, in bytes.</summary>
    public long BucketBytes { get; }
    /// <summary>The number of buckets (all-reduce calls per step).</summary>
    public int BucketCount => _buckets.Length;
    /// <summary>The bytes each rank contributes to the all-reduces of one step (4 per parameter).</summary>
    public long BytesPerStep { get; }
    /// <summary>
    /// The factor the summed gradients are multiplied by: 1/Size by default (the mean over ranks of
    /// per-rank mean gradients, which is the mean over the whole batch when the parts are equal); for
    /// unequal parts set it per step with <see cref="SetLocalShare"/>.
    /// </summary>
    public double GradientScale { get; private set; }

    /// <summary>The batch-norm layers synchronized across the ranks.</summary>
    public int SyncBatchNormLayers { get; }

    /// <summary>Statistics of the synchronized steps so far.</summary>
    public DdpStats Stats { get; } = new();

    /// <summary>
    /// Wraps <paramref name="module"/>: broadcasts rank 0's parameters and buffers, and hooks every
    /// parameter that requires grad. With <paramref name="syncBatchNorm"/> (and more than one rank)
    /// every batch-norm layer of the module normalizes with the statistics of the whole global batch
    /// (<see cref="NN.BatchNormBase.Sync"/>, like PyTorch's SyncBatchNorm).
    /// </summary>
    public DistributedDataParallel(NN.Module module, Communicator communicator, long bucketBytes = DefaultBucketBytes, bool syncBatchNorm = true)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(communicator);
        if (bucketBytes < 4) throw new ArgumentOutOfRangeException(nameof(bucketBytes), bucketBytes, "DistributedDataParallel: the bucket size must be at least 4 bytes.");
        Module = RegisterModule("module", module);
        Communicator = communicator;
        BucketBytes = bucketBytes;
        GradientScale = 1.0 / communicator.Size;
        var named = module.NamedParameters().ToList();
        foreach (var (name, p) in named)
            if (p.DType != DType.Float32)
                throw new ArgumentException($"DistributedDataParallel: parameter '{name}' is {p.DType.Name()}; only float32 parameters are supported.");
        Broadcast(module);
        if (syncBatchNorm && communicator.Size > 1)
            foreach (var (_, m) in module.NamedModules())
                if (m is NN.BatchNormBase bn) { bn.Sync = new CommunicatorBatchNormSync(this); SyncBatchNormLayers++; }

        // Buckets in reverse parameter order: the last layer's gradients are ready first.
        var buckets = new List<Bucket>();
        var members = new List<(Parameter, int)>();
        long size = 0;
        void Close()
        {
            if (members.Count == 0) return;
            buckets.Add(new Bucket { Buffer = GC.AllocateArray<float>(checked((int)size), pinned: true), Members = [.. members], Seen = new bool[members.Count] });
            members.Clear();
            size = 0;
        }
        foreach (var (_, p) in Enumerable.Reverse(named))
        {
            if (!p.RequiresGrad) continue;
            if (size > 0 && (size + p.NumElements) * 4 > bucketBytes) Close();
            members.Add((p, (int)size));
            size += p.NumElements;
            BytesPerStep += 4L * p.NumElements;
        }
        Close();
        _buckets = [.. buckets];
        for (int b = 0; b < _buckets.Length; b++)
            for (int m = 0; m < _buckets[b].Members.Count; m++)
            {
                var p = _buckets[b].Members[m].P;
                if (!_where.TryAdd(p, (b, m))) continue; // a parameter shared by two modules is reduced once
                _hooks.Add(p.RegisterPostAccumulateGradHook(OnGradientReady));
            }
    }

    /// <summary>The sizes of the buckets in parameters, in launch order.</summary>
    public IReadOnlyList<int> BucketSizes => [.. _buckets.Select(b => b.Buffer.Length)];

    /// <summary>Copies rank 0's parameters and float32 buffers to every rank.</summary>
    private void Broadcast(NN.Module module)
    {
        var tensors = module.Parameters().Cast<Tensor>().Concat(module.NamedBuffers().Select(b => b.Buffer).Where(b => b.DType == DType.Float32)).ToList();
        long total = tensors.Sum(t => (long)t.NumElements);
        if (Communicator.Size == 1 || total == 0) return;
        var buffer = new float[checked((int)total)];
        int at = 0;
        foreach (var t in tensors) { t.Contiguous().CopyToHost<float>(buffer.AsSpan(at, t.NumElements)); at += t.NumElements; }
        Communicator.Broadcast(buffer, 0);
        at = 0;
        using (Tensor.NoGrad())
            foreach (var t in tensors)
            {
                var part = buffer.AsSpan(at, t.NumElements);
                if (t.IsContiguous) t.CopyFromHost<float>(part);
                else t.CopyFrom(Tensor.FromArray(part.ToArray(), [.. t.Shape]));
                at += t.NumElements;
            }
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Module.Forward(input);

    /// <summary>
    /// Sets this rank's share of the step's samples (its samples / all ranks' samples), so that the
    /// summed gradients are the mean over the whole batch when the parts are unequal.
    /// </summary>
    public void SetLocalShare(int localSamples, int globalSamples)
    {
        if (globalSamples <= 0 || localSamples < 0 || localSamples > globalSamples)
            throw new ArgumentOutOfRangeException(nameof(localSamples), $"DistributedDataParallel.SetLocalShare: {localSamples} of {globalSamples} samples is not a share.");
        GradientScale = (double)localSamples / globalSamples;
    }

    /// <summary>Within the scope, backward does not communicate: gradients accumulate locally (gradient accumulation).</summary>
    public IDisposable NoSync()
    {
        _noSync++;
        return new Scope(this);
    }

    private sealed class Scope(DistributedDataParallel ddp) : IDisposable
    {
        private bool _done;
        public void Dispose() { if (!_done) { _done = true; ddp._noSync--; } }
    }

    /// <summary>Whether backward currently communicates (false inside <see cref="NoSync"/>).</summary>
    public bool SyncEnabled => _noSync == 0;

    private void OnGradientReady(Tensor t)
    {
        if (_noSync > 0) return;
        var (b, m) = _where[(Parameter)t];
        var bucket = _buckets[b];
        if (bucket.Seen[m]) return;
        bucket.Seen[m] = true;
        Fill(bucket, m);
        bucket.Ready++;
        Launch(all: false);
        // MPI progresses non-blocking collectives inside MPI calls: poke the ones in flight.
        for (int i = 0; i < _nextLaunch; i++) _buckets[i].Pending?.Test();
    }

    private void Fill(Bucket bucket, int m)
    {
        var (p, offset) = bucket.Members[m];
        var span = bucket.Buffer.AsSpan(offset, p.NumElements);
        if (p.Grad is { } g)
        {
            g.CopyToHost<float>(span);
            if (GradientScale != 1) TensorPrimitives.Multiply(span, (float)GradientScale, span);
        }
        else span.Clear();
    }

    private void Launch(bool all)
    {
        while (_nextLaunch < _buckets.Length)
        {
            var bucket = _buckets[_nextLaunch];
            if (bucket.Ready < bucket.Members.Count)
            {
                if (!all) return;
                for (int m = 0; m < bucket.Members.Count; m++)
                    if (!bucket.Seen[m]) { bucket.Seen[m] = true; Fill(bucket, m); bucket.Ready++; }
            }
            if (_nextLaunch == 0) _firstLaunch = Stopwatch.GetTimestamp();
            bucket.Pending = Communicator.StartAllReduceSum(bucket.Buffer, 0, bucket.Buffer.Length);
            _nextLaunch++;
        }
    }

    /// <summary>
    /// Ends the step's gradient synchronization: starts the buckets still waiting (parameters without
    /// a gradient count as zeros), waits for all of them and writes the averaged gradients into the
    /// parameters' <see cref="Tensor.Grad"/>. Call it after backward and before the optimizer step
    /// (inside <see cref="NoSync"/> it does nothing). Returns the seconds spent waiting.
    /// </summary>
    public double FinishGradientSync()
    {
        if (_noSync > 0) return 0;
        long start = Stopwatch.GetTimestamp();
        bool overlapped = _nextLaunch > 0;
        double backwardOverlap = overlapped ? Stopwatch.GetElapsedTime(_firstLaunch, start).TotalSeconds : 0;
        int launchedDuringBackward = _nextLaunch, completedDuringBackward = 0;
        long completedBytes = 0;
        for (int i = 0; i < _nextLaunch; i++)
            if (_buckets[i].Pending!.IsCompleted) { completedDuringBackward++; completedBytes += 4L * _buckets[i].Buffer.Length; }
        Launch(all: true);
        foreach (var bucket in _buckets) bucket.Pending!.Wait();
        double waited = Stopwatch.GetElapsedTime(start).TotalSeconds;
        using (Tensor.NoGrad())
            foreach (var bucket in _buckets)
            {
                foreach (var (p, offset) in bucket.Members)
                {
                    var span = bucket.Buffer.AsSpan(offset, p.NumElements);
                    if (p.Grad is not { } g)
                        p.Grad = g = Tensor.Zeros([.. p.Shape], DType.Float32);
                    if (g.IsContiguous) g.CopyFromHost<float>(span);
                    else g.CopyFrom(Tensor.FromArray(span.ToArray(), [.. p.Shape]));
                }
                bucket.Ready = 0;
                Array.Clear(bucket.Seen);
                bucket.Pending = null;
            }
        _nextLaunch = 0;
        _syncCalls++;
        Stats.Add(waited, backwardOverlap, launchedDuringBackward, completedDuringBackward, completedBytes, _buckets.Length);
        return waited;
    }

    /// <summary>
    /// Times a blocking reduction of all buckets (the median of <paramref name="repeats"/>, after one
    /// warm-up), without changing any gradient: the communication cost that overlap can hide.
    /// Collective: every rank must call it.
    /// </summary>
    public double MeasureAllReduceSeconds(int repeats = 5)
    {
        var times = new List<double>();
        var scratch = _buckets.Select(b => GC.AllocateArray<float>(b.Buffer.Length, pinned: true)).ToArray();
        for (int r = 0; r <= repeats; r++)
        {
            Communicator.Barrier();
            long t0 = Stopwatch.GetTimestamp();
            var pending = scratch.Select(s => Communicator.StartAllReduceSum(s, 0, s.Length)).ToList();
            foreach (var p in pending) p.Wait();
            if (r > 0) times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        times.Sort();
        return times.Count == 0 ? 0 : times[times.Count / 2];
    }

    /// <summary>Removes the hooks.</summary>
    public void RemoveHooks()
    {
        foreach (var h in _hooks) h.Dispose();
        _hooks.Clear();
    }
}

/// <summary>Batch-norm statistics summed over the ranks of a <see cref="DistributedDataParallel"/> (blocking all-reduces in float64).</summary>
internal sealed class CommunicatorBatchNormSync(DistributedDataParallel ddp) : NN.BatchNormSync
{
    public override double LocalShare => ddp.GradientScale;

    public override Tensor AllReduceSum(Tensor local)
    {
        if (local.Rank != 1) throw new ShapeException($"BatchNormSync.AllReduceSum: expected a vector, got {local.Shape}.");
        var host = new double[local.NumElements];
        local.To(DType.Float64).Contiguous().CopyToHost<double>(host);
        ddp.Communicator.AllReduceSum(host);
        return Tensor.FromArray(host, host.Length).To(local.DType);
    }
}

/// <summary>Counters of the synchronized steps of a <see cref="DistributedDataParallel"/>.</summary>
public sealed class DdpStats
{
    /// <summary>Synchronized steps.</summary>
    public long Steps { get; private set; }
    /// <summary>Seconds spent in <see cref="DistributedDataParallel.FinishGradientSync"/> waiting for the reductions (communication not hidden behind backward).</summary>
    public double ExposedSeconds { get; private set; }
    /// <summary>Seconds between the first bucket's start and the end of backward, summed over steps (communication running beside backward).</summary>
    public double OverlapSeconds { get; private set; }
    /// <summary>Buckets started from the hooks, while backward ran, summed over steps.</summary>
    public long BucketsDuringBackward { get; private set; }
    /// <summary>Buckets whose all-reduce had completed before backward ended (moved by the progress thread), summed over steps.</summary>
    public long BucketsCompletedDuringBackward { get; private set; }
    /// <summary>Buckets in total, summed over steps.</summary>
    public long Buckets { get; private set; }

    /// <summary>Bytes of the buckets whose all-reduce had completed before backward ended, summed over steps.</summary>
    public long BytesCompletedDuringBackward { get; private set; }

    internal void Add(double exposed, double overlap, int duringBackward, int completedDuringBackward, long completedBytes, int buckets)
    {
        BytesCompletedDuringBackward += completedBytes;
        BucketsCompletedDuringBackward += completedDuringBackward;
        Steps++;
        ExposedSeconds += exposed;
        OverlapSeconds += overlap;
        BucketsDuringBackward += duringBackward;
        Buckets += buckets;
    }
}
