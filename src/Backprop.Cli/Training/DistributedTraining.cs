using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Backprop.Distributed;

namespace Backprop.Cli.Training;

/// <summary>
/// <c>backprop train --distributed</c> under mpirun: one process per rank, each with the whole model
/// and its part of every global batch (<see cref="Data.DataLoader.SetShard"/>); gradients averaged by
/// <see cref="DistributedDataParallel"/>; only rank 0 prints and saves. Any failure after MPI is up
/// prints one line naming the rank and ends the whole job (MPI_Abort), so no rank waits forever.
/// </summary>
internal sealed class DistributedTraining : IStepSync, IDisposable
{
    private readonly double[] _reduce = new double[3];
    private readonly long _faultStep = -1;
    private NN.Module? _model;
    private Func<long> _stepOf = () => 0;
    private MpiCommunicator? _comm;
    private double _blockingSeconds;
    private string _progress = "off", _threadLevel = "";

    /// <summary>This rank and the number of ranks, as the launcher's environment says (before MPI starts).</summary>
    public int Rank { get; }
    /// <inheritdoc/>
    public int Size { get; }
    /// <summary>Whether this rank prints and saves.</summary>
    public bool IsRoot => Rank == 0;
    /// <summary>The data-parallel wrapper (after <see cref="Attach"/>).</summary>
    public DistributedDataParallel? Ddp { get; private set; }
    /// <inheritdoc/>
    public int GlobalSamples { get; private set; }
    /// <inheritdoc/>
    public bool StopAgreed { get; private set; }
    /// <summary>Whether MPI is initialized (failures from then on must end the job with MPI_Abort).</summary>
    public bool Started => _comm != null;

    /// <summary>Reads the rank and size from the launcher's environment; a one-line error when mpirun did not start the process.</summary>
    public DistributedTraining()
    {
        if (!Mpi.StartedByLauncher)
            throw new CliException("--distributed: this process was not started by mpirun (OMPI_COMM_WORLD_SIZE is not set); run: mpirun -np N backprop train ... --distributed");
        Rank = EnvInt("OMPI_COMM_WORLD_RANK") ?? EnvInt("PMIX_RANK") ?? 0;
        Size = EnvInt("OMPI_COMM_WORLD_SIZE") ?? throw new CliException("--distributed: OMPI_COMM_WORLD_SIZE is not set; start the command with Open MPI's mpirun.");
        // Test hook (docs/distributed.md): BACKPROP_DISTRIBUTED_FAULT=RANK:STEP makes rank RANK throw at step STEP.
        if (Environment.GetEnvironmentVariable("BACKPROP_DISTRIBUTED_FAULT") is { } f && f.Split(':') is [var r, var s] &&
            int.TryParse(r, CultureInfo.InvariantCulture, out int fr) && fr == Rank && long.TryParse(s, CultureInfo.InvariantCulture, out long fs))
            _faultStep = fs;
    }

    /// <summary>
    /// One rank of a <c>--distributed</c> command (<c>train</c>, <c>train text</c>): <paramref name="run"/>
    /// gets this rank's <see cref="DistributedTraining"/> and its stdout and stderr (rank 0's own; the
    /// others' are discarded). Threads default to the cores shared by the ranks on this machine (a
    /// resumed run's count or --threads win inside <paramref name="run"/>). An error before MPI starts
    /// (an option, the batch size) is the same on every rank: rank 0 prints it, exit code 2; a failure
    /// after it prints one line naming the rank and ends every rank (<see cref="Fail"/>).
    /// </summary>
    public static int RunRank(ParseResult r, Func<DistributedTraining, TextWriter, TextWriter, int> run)
    {
        var dist = new DistributedTraining();
        Threads.Count = DefaultThreads();
        try
        {
            int code = run(dist, dist.IsRoot ? r.InvocationConfiguration.Output : TextWriter.Null,
                dist.IsRoot ? r.InvocationConfiguration.Error : TextWriter.Null);
            dist.Dispose();
            return code;
        }
        catch (Exception e) when (dist.Started)
        {
            dist.Fail(e, e is CliException ? 2 : 1);
            throw;
        }
        catch (CliException) when (!dist.IsRoot)
        {
            return 2;
        }
    }

    private static int? EnvInt(string name) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : null;

    /// <summary>The default thread count per rank: the cores shared by the ranks on this machine.</summary>
    public static int DefaultThreads() => Math.Max(1, Environment.ProcessorCount / Mpi.LocalSize);

    /// <summary>
    /// Checks the batch size against the number of ranks, starts MPI, shards the loader and wraps the
    /// model (broadcasting rank 0's parameters). Collective.
    /// </summary>
    public void Attach(Trainer trainer)
    {
        int b = trainer.Options.BatchSize;
        CheckBatch(b);
        int last = trainer.Loader.Samples % b;
        if (last > 0 && last < Size)
            throw new CliException($"--distributed: the last batch of each epoch has {last} sample(s) ({trainer.Loader.Samples} samples, batch {b}), fewer than the {Size} ranks; change --batch-size or --limit.");
        Start(trainer.Model, () => trainer.Step, () => trainer.Loader.SetShard(Rank, Size));
        trainer.Sync = this;
    }

    /// <summary>
    /// The same for <c>train text</c>: checks the batch size, starts MPI and wraps the language model;
    /// the caller draws each global batch and keeps its part (<see cref="Data.DataLoader.ShardRange"/>). Collective.
    /// </summary>
    public void AttachModel(NN.Module model, int batchSize, Func<long> stepOf)
    {
        CheckBatch(batchSize);
        Start(model, stepOf, () => { });
    }

    private void CheckBatch(int b)
    {
        if (b % Size != 0)
            throw new CliException($"--batch-size {b} is the global batch and must be divisible by the {Size} ranks (mpirun -np {Size}); e.g. --batch-size {Math.Max(Size, b / Size * Size)}.");
    }

    private void Start(NN.Module model, Func<long> stepOf, Action shard)
    {
        long bucketBytes = DistributedDataParallel.DefaultBucketBytes;
        if (Environment.GetEnvironmentVariable("BACKPROP_BUCKET_KB") is { } kb && long.TryParse(kb, CultureInfo.InvariantCulture, out long k) && k > 0)
            bucketBytes = k * 1024;
        try
        {
            _comm = new MpiCommunicator();
        }
        catch (MpiException e)
        {
            throw new CliException(e.Message);
        }
        if (_comm.Size != Size || _comm.Rank != Rank)
            throw new CliException($"--distributed: MPI says rank {_comm.Rank} of {_comm.Size}, the launcher's environment rank {Rank} of {Size}.");
        (_model, _stepOf) = (model, stepOf);
        _progress = _comm.Progress == MpiCommunicator.ProgressMode.Thread && Size > 1 ? $"thread, {_comm.ProgressIntervalMicroseconds} us" : "off";
        _threadLevel = _comm.ThreadLevel.ToString();
        shard();
        _comm.Activity = "the parameter broadcast";
        // BACKPROP_SYNC_BATCHNORM=off: each rank normalizes with its own part's statistics (PyTorch's plain BatchNorm under DDP)
        bool syncBn = !string.Equals(Environment.GetEnvironmentVariable("BACKPROP_SYNC_BATCHNORM"), "off", StringComparison.OrdinalIgnoreCase);
        Ddp = new DistributedDataParallel(model, _comm, bucketBytes, syncBn);
        _comm.Activity = "the all-reduce timing";
        _blockingSeconds = Ddp.MeasureAllReduceSeconds();
    }

    /// <inheritdoc/>
    public double AfterForward(double localLoss, int localSamples, bool stopRequested)
    {
        long step = _stepOf();
        if (step + 1 == _faultStep) throw new InvalidOperationException($"injected fault (BACKPROP_DISTRIBUTED_FAULT) at step {_faultStep}");
        _comm!.Activity = $"step {step + 1}";
        _reduce[0] = localLoss * localSamples;
        _reduce[1] = localSamples;
        _reduce[2] = stopRequested ? 1 : 0;
        _comm.AllReduceSum(_reduce);
        GlobalSamples = (int)_reduce[1];
        StopAgreed = _reduce[2] > 0;
        Ddp!.SetLocalShare(localSamples, GlobalSamples);
        return _reduce[0] / _reduce[1];
    }

    /// <inheritdoc/>
    public void BeforeUpdate() => Ddp!.FinishGradientSync();

    /// <inheritdoc/>
    public void Broadcast(Span<float> data, int root)
    {
        _comm!.Activity = $"the broadcast of rank {root}'s carried state";
        _comm.Broadcast(data, root);
    }

    /// <summary>
    /// Whether any rank was asked to stop (a signal): every rank gets the same answer. Collective.
    /// <paramref name="withStepStop"/>: also when the last step's all-reduce agreed to stop (in
    /// `train` that carries the signal too; in `train text` it carries rank 0's --minutes limit,
    /// which is not an interruption).
    /// </summary>
    public bool AgreeStop(bool local, bool withStepStop = true)
    {
        Span<double> flag = [local || (withStepStop && StopAgreed) ? 1 : 0];
        _comm!.Activity = "the stop agreement";
        _comm.AllReduceMax(flag);
        return flag[0] > 0;
    }

    /// <summary>
    /// Checks that every rank holds the same parameters (a 52-bit hash of their bits, compared with
    /// an all-reduce); a disagreement ends the job with one line. Collective.
    /// </summary>
    public void CheckAgreement()
    {
        ulong h = 1469598103934665603UL;
        foreach (var p in _model!.Parameters())
            foreach (float v in p.ToArray())
                h = (h ^ BitConverter.SingleToUInt32Bits(v)) * 1099511628211UL;
        double mine = h & ((1UL << 52) - 1);
        Span<double> both = [mine, -mine];
        _comm!.Activity = "the parameter agreement check";
        _comm.AllReduceMax(both);
        if (both[0] != mine || -both[1] != mine)
            _comm.Abort($"error: rank {Rank} of {Size}: the ranks' parameters differ after step {_stepOf()} (the all-reduce gave ranks different sums); ending the job.", 5);
    }

    /// <summary>One failure on this rank: print it (naming the rank) and end every rank.</summary>
    public void Fail(Exception e, int code)
    {
        string what = e is CliException or TrainingDivergedException ? Cli.OneLine(e.Message) : $"{e.GetType().Name}: {Cli.OneLine(e.Message)}";
        var line = $"error: rank {Rank} of {Size} failed: {what}; ending all {Size} ranks (the last checkpoint written stays).";
        if (_comm == null) { Console.Error.WriteLine(line); return; }
        // A divergence is seen by every rank at the same step (the loss is all-reduced): rank 0 says so.
        if (e is TrainingDivergedException && !IsRoot)
        {
            Thread.Sleep(2000);
            Mpi.Abort(code);
        }
        _comm.Abort(e is TrainingDivergedException ? $"error: {what}" : line, code);
    }

    /// <summary>The measurements, for the JSON result and the last line.</summary>
    public JsonObject ToJson()
    {
        var d = Ddp!;
        var s = d.Stats;
        double exposed = s.Steps > 0 ? s.ExposedSeconds / s.Steps : 0;
        return new JsonObject
        {
            ["ranks"] = Size,
            ["threads_per_rank"] = Threads.Count,
            ["bucket_bytes"] = d.BucketBytes,
            ["buckets"] = d.BucketCount,
            ["bytes_per_step"] = d.BytesPerStep,
            // A ring all-reduce sends (and receives) 2 (N-1)/N of the payload per rank.
            ["ring_bytes_sent_per_rank_per_step"] = (long)(2.0 * (Size - 1) / Size * d.BytesPerStep),
            ["steps"] = s.Steps,
            ["allreduce_seconds_blocking"] = _blockingSeconds,
            ["exposed_seconds_per_step"] = exposed,
            ["hidden_fraction"] = _blockingSeconds > 0 ? Math.Clamp(1 - exposed / _blockingSeconds, 0, 1) : 0,
            ["buckets_started_during_backward"] = s.Buckets > 0 ? (double)s.BucketsDuringBackward / s.Buckets : 0,
            ["buckets_completed_during_backward"] = s.Buckets > 0 ? (double)s.BucketsCompletedDuringBackward / s.Buckets : 0,
            // the share of the step's all-reduce bytes whose reduction finished while backward still ran (hidden behind it)
            ["bytes_hidden_fraction"] = s.Steps > 0 && d.BytesPerStep > 0 ? (double)s.BytesCompletedDuringBackward / (s.Steps * d.BytesPerStep) : 0,
            ["progress"] = _progress,
            ["mpi_thread_level"] = _threadLevel,
            ["sync_batch_norm_layers"] = d.SyncBatchNormLayers,
        };
    }

    /// <summary>One line of the measurements.</summary>
    public string Summary()
    {
        var j = ToJson();
        return string.Create(CultureInfo.InvariantCulture,
            $"distributed: {Size} ranks x {Threads.Count} thread(s), {Ddp!.BucketCount} bucket(s) of <= {Ddp.BucketBytes / 1024} KiB, {Ddp.BytesPerStep} bytes all-reduced per step, " +
            $"blocking all-reduce {1e3 * (double)j["allreduce_seconds_blocking"]!:F3} ms, exposed {1e3 * (double)j["exposed_seconds_per_step"]!:F3} ms per step (hidden {100 * (double)j["hidden_fraction"]!:F0}%; {100 * (double)j["bytes_hidden_fraction"]!:F0}% of the bytes reduced before backward ended)");
    }

    /// <summary>MPI_Finalize (after a barrier, so no rank leaves while another still talks to it).</summary>
    public void Dispose()
    {
        if (_comm == null) return;
        _comm.Activity = "the final barrier";
        _comm.Barrier();
        _comm.Dispose();
        _comm = null;
    }

}
