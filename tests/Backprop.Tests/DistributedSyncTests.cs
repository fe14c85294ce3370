using Backprop.Data;
using Backprop.Distributed;
using Backprop.NN;
using Backprop.Optim;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>A <see cref="BatchNormSync"/> over thread-ranks (tests only), summing in rank order like <see cref="ThreadCommunicator"/>.</summary>
internal sealed class ThreadBatchNormSync(ThreadCommunicator comm, double share) : BatchNormSync
{
    public override double LocalShare => share;

    public override Tensor AllReduceSum(Tensor local)
    {
        var host = local.ToDoubleArray();
        comm.AllReduceSum(host);
        return Tensor.FromArray(host, host.Length).To(local.DType);
    }
}

/// <summary>
/// Synchronized batch norm (<see cref="Functional.SyncBatchNorm"/>) and dropout masks from the global
/// sample index (<see cref="SampleMasks"/>): N ranks compute what one process computes on the whole batch.
/// </summary>
public class DistributedSyncTests
{
    [Fact]
    public void SyncBatchNormGradChecks()
    {
        var g = new Generator(21);
        var one = new LocalBatchNormSync();
        Check(x => Functional.SyncBatchNorm(x[0], one, null, null, x[1], x[2]), R(g, 3, 2, 3, 5), R(g, 2), R(g, 2));
        Check(x => Functional.SyncBatchNorm(x[0], one, null, null).Square(), R(g, 5, 3));
        Check(x => Functional.SyncBatchNorm(x[0], one, null, null, x[1], x[2]).Tanh(), R(g, 3, 3, 5), R(g, 3), R(g, 3));
    }

    [Fact]
    public void SyncBatchNormOfOneRankIsBatchNorm()
    {
        var g = new Generator(22);
        var x = R(g, 7, 3, 5);
        var (w, b) = (R(g, 3), R(g, 3));
        var r = R(g, 7, 3, 5);
        (Tensor Y, Tensor[] Grads, Tensor Mean, Tensor Var) Run(bool sync)
        {
            var (xs, ws, bs) = (x.Clone().RequiresGrad_(), w.Clone().RequiresGrad_(), b.Clone().RequiresGrad_());
            var (rm, rv) = (Tensor.Zeros([3], DType.Float64), Tensor.Ones([3], DType.Float64));
            var y = sync ? Functional.SyncBatchNorm(xs, new LocalBatchNormSync(), rm, rv, ws, bs, 0.1)
                : Functional.BatchNorm(xs, rm, rv, ws, bs, training: true, momentum: 0.1);
            (y * r).Sum().Backward();
            return (y, [xs.Grad!, ws.Grad!, bs.Grad!], rm, rv);
        }
        var (a, c) = (Run(false), Run(true));
        AssertClose(a.Y, c.Y, 1e-12);
        for (int i = 0; i < 3; i++) AssertClose(a.Grads[i], c.Grads[i], 1e-12);
        AssertClose(a.Mean, c.Mean, 1e-12);
        AssertClose(a.Var, c.Var, 1e-12);
    }

    private static void AssertClose(Tensor expected, Tensor actual, double tol)
    {
        var (e, a) = (expected.ToDoubleArray(), actual.ToDoubleArray());
        Assert.Equal(e.Length, a.Length);
        double scale = Math.Max(1e-300, e.Max(Math.Abs));
        for (int i = 0; i < e.Length; i++) Assert.True(Math.Abs(e[i] - a[i]) <= tol * scale, $"element {i}: {a[i]} against {e[i]}");
    }

    /// <summary>Runs <paramref name="body"/> on <paramref name="ranks"/> thread-ranks with their communicators; rethrows a failure.</summary>
    internal static T[] OnThreads<T>(int ranks, Func<ThreadCommunicator, T> body)
    {
        var group = new ThreadGroup(ranks);
        var results = new T[ranks];
        var errors = new Exception?[ranks];
        var threads = Enumerable.Range(0, ranks).Select(r => new Thread(() =>
        {
            try
            {
                using var one = Threads.Use(1);
                results[r] = body(new ThreadCommunicator(group, r));
            }
            catch (Exception e) { errors[r] = e; group.Barrier.RemoveParticipant(); }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        foreach (var e in errors) if (e != null) throw new InvalidOperationException("a rank failed", e);
        return results;
    }

    [Fact]
    public void TwoRanksOfSyncBatchNormComputeTheWholeBatchStatisticsAndGradients()
    {
        var g = new Generator(23);
        var x = R(g, 6, 3, 4);
        var (w, b) = (R(g, 3), R(g, 3));
        var r = R(g, 6, 3, 4);
        var xs = x.Clone().RequiresGrad_();
        var (rm, rv) = (Tensor.Zeros([3], DType.Float64), Tensor.Ones([3], DType.Float64));
        var y = Functional.BatchNorm(xs, rm, rv, w, b, training: true);
        (y * r).Sum().Backward();
        var parts = OnThreads(2, comm =>
        {
            // each rank's loss is its part of the sum, so the shares are equal (any value)
            var xr = x.Slice(0, 3 * comm.Rank, 3 * comm.Rank + 3).Clone().RequiresGrad_();
            var (m, v) = (Tensor.Zeros([3], DType.Float64), Tensor.Ones([3], DType.Float64));
            var yr = Functional.SyncBatchNorm(xr, new ThreadBatchNormSync(comm, 0.5), m, v, w, b);
            (yr * r.Slice(0, 3 * comm.Rank, 3 * comm.Rank + 3)).Sum().Backward();
            return (Y: yr.Detach(), Dx: xr.Grad!, Mean: m, Var: v);
        });
        AssertClose(y.Detach(), Tensor.Concat([parts[0].Y, parts[1].Y]), 1e-12);
        AssertClose(xs.Grad!, Tensor.Concat([parts[0].Dx, parts[1].Dx]), 1e-12);
        foreach (var p in parts)
        {
            AssertClose(rm, p.Mean, 1e-12);
            AssertClose(rv, p.Var, 1e-12);
        }
    }

    private static Sequential Net(ulong seed) => new(
        new Linear(5, 8, generator: new Generator(seed)), new BatchNorm1d(8), new Relu(), new Dropout(0.3),
        new Linear(8, 3, generator: new Generator(seed + 1)));

    private static TensorDataset Data(int n)
    {
        var g = new Generator(11);
        var x = Tensor.Randn([n, 5], g);
        var y = Tensor.FromArray(Enumerable.Range(0, n).Select(i => (long)(i * 7 % 3)).ToArray(), n);
        return new TensorDataset(x, y);
    }

    private static float[][] State(Sequential model) =>
        [.. model.Parameters().Cast<Tensor>().Concat(model.NamedBuffers().Select(b => b.Buffer).Where(t => t.DType == DType.Float32)).Select(t => t.ToArray())];

    /// <summary>SGD with batch 8 on one process, or on thread-ranks with DDP (a rank's part given by the loader's shard).</summary>
    private static float[][] Train(int ranks, int steps, bool syncBatchNorm = true, bool sampleMasks = true)
    {
        float[][] Rank(Communicator? comm)
        {
            var model = Net(comm is { Rank: > 0 } ? 50UL : 1UL);
            var ddp = comm == null ? null : new DistributedDataParallel(model, comm, bucketBytes: 4 * 40, syncBatchNorm: syncBatchNorm);
            // the mutation: masks keyed by the rank's own row index instead of the global one
            var masks = new SampleMasks(7);
            Assert.Equal(1, masks.Attach(model));
            var opt = new Sgd(model.Parameters(), 0.1, momentum: 0.9);
            var loader = new DataLoader(Data(64), 8, shuffle: true, seed: 3);
            if (comm != null) loader.SetShard(comm.Rank, comm.Size);
            int step = 0;
            foreach (var (x, y) in loader)
            {
                (masks.Step, masks.FirstSample) = (step, sampleMasks ? loader.LastShardStart : 0);
                ddp?.SetLocalShare(x.Size(0), 8);
                var loss = Loss.CrossEntropy(model.Forward(x), y);
                opt.ZeroGrad();
                loss.Backward();
                ddp?.FinishGradientSync();
                opt.Step();
                if (++step == steps) break;
            }
            return State(model);
        }
        if (ranks == 0) return Rank(null);
        var all = OnThreads(ranks, c => Rank(c));
        if (syncBatchNorm) // every rank holds the same bits (unsynchronized running statistics differ)
            foreach (var other in all)
                for (int i = 0; i < other.Length; i++) Assert.Equal(all[0][i], other[i]);
        return all[0];
    }

    private static double MaxRelative(float[][] expected, float[][] actual) => expected.Zip(actual, (e, a) =>
        e.Zip(a, (u, v) => (double)Math.Abs(u - v)).Max() / Math.Max(1e-30, e.Max(v => Math.Abs(v)))).Max();

    [Fact]
    public void RanksWithBatchNormAndDropoutMatchOneProcess()
    {
        var single = Train(0, 6);
        foreach (int ranks in new[] { 2, 3 }) // 3 ranks: parts of 2, 3 and 3 samples (unequal shares)
            Assert.True(MaxRelative(single, Train(ranks, 6)) < 1e-5, $"{ranks} ranks differ from one process");
        // what the test guards: without synchronized statistics, or with masks per rank, the runs differ
        Assert.True(MaxRelative(single, Train(2, 6, syncBatchNorm: false)) > 1e-3);
        Assert.True(MaxRelative(single, Train(2, 6, sampleMasks: false)) > 1e-3);
    }

    [Fact]
    public void PerSampleMasksDependOnTheGlobalIndexOnly()
    {
        var x = Tensor.Ones([6, 10]);
        var whole = Functional.DropoutPerSample(x, 0.5, 42, 0).ToArray();
        var tail = Functional.DropoutPerSample(Tensor.Ones([2, 10]), 0.5, 42, 4).ToArray();
        Assert.Equal(whole[40..], tail);
        Assert.NotEqual(whole[..10], whole[10..20]); // rows differ
        Assert.NotEqual(whole, Functional.DropoutPerSample(x, 0.5, 43, 0).ToArray()); // keys differ
        Assert.All(whole, v => Assert.True(v == 0 || v == 2));
    }

    [Fact]
    public void TheResumeHintAfterAnInterruptNamesMpirunUnderMpirun()
    {
        Assert.Equal("backprop train --resume ck.safetensors --save ck.safetensors", Cli.Training.TrainCommand.ResumeCommand(null, "ck.safetensors"));
        Assert.StartsWith("mpirun -np 4 backprop train --resume ck.safetensors --save ck.safetensors --distributed", Cli.Training.TrainCommand.ResumeCommand(4, "ck.safetensors"));
    }

    [Fact]
    public void TrainTextDistributedWithoutMpirunIsOneLine()
    {
        if (Mpi.StartedByLauncher) return;
        var err = new StringWriter();
        Assert.Equal(2, Cli.Cli.Run(["train", "text", "--steps", "1", "--distributed"], new StringWriter(), err));
        Assert.StartsWith("error: --distributed: this process was not started by mpirun", err.ToString());
        Assert.Single(err.ToString().Trim().Split('\n'));
    }
}
