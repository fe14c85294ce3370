using System.Diagnostics;
using System.Text.Json.Nodes;
using Backprop.Cli;
using Backprop.Cli.Training;
using Backprop.Data;
using Backprop.Distributed;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>A fact that needs Open MPI's mpirun on PATH; skipped without it (the CI steps of .ci/run make it mandatory).</summary>
public sealed class MpiFactAttribute : FactAttribute
{
    public static readonly string? Mpirun = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
        .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    public MpiFactAttribute()
    {
        if (Mpirun == null) Skip = "mpirun (Open MPI) is not installed: apt-get install openmpi-bin libopenmpi-dev";
    }
}

/// <summary>
/// An in-process group of ranks on threads (tests only): collectives meet at a barrier and sum in
/// rank order, so every rank gets the same bits, like MPI. Non-blocking reductions complete at once.
/// </summary>
internal sealed class ThreadGroup(int size)
{
    public readonly Barrier Barrier = new(size);
    public readonly object?[] Slots = new object?[size];
    public int Size => size;
}

internal sealed class ThreadCommunicator(ThreadGroup group, int rank) : Communicator
{
    private sealed class Done : PendingReduce
    {
        public override bool Test() => true;
        public override void Wait() { }
    }

    public int Reductions;
    public override int Rank => rank;
    public override int Size => group.Size;
    public override void Barrier() => group.Barrier.SignalAndWait();

    private T[] Exchange<T>(T[] mine, Func<T[][], T[]> combine)
    {
        group.Slots[rank] = mine;
        group.Barrier.SignalAndWait();
        var result = combine([.. group.Slots.Cast<T[]>()]);
        group.Barrier.SignalAndWait();
        return result;
    }

    public override void Broadcast(Span<float> data, int root) => Exchange(data.ToArray(), all => all[root]).CopyTo(data);

    public override void AllReduceSum(Span<double> data) => Exchange(data.ToArray(), all =>
        [.. Enumerable.Range(0, all[0].Length).Select(i => { double s = 0; foreach (var a in all) s += a[i]; return s; })]).CopyTo(data);

    public override void AllReduceMax(Span<double> data) => Exchange(data.ToArray(), all =>
        [.. Enumerable.Range(0, all[0].Length).Select(i => all.Max(a => a[i]))]).CopyTo(data);

    public override PendingReduce StartAllReduceSum(float[] buffer, int offset, int count)
    {
        Reductions++;
        Exchange(buffer.AsSpan(offset, count).ToArray(), all =>
            [.. Enumerable.Range(0, count).Select(i => { float s = 0; foreach (var a in all) s += a[i]; return s; })]).CopyTo(buffer, offset);
        return new Done();
    }

    public override void Abort(string message, int code) => throw new InvalidOperationException(message);
}

public class DistributedTests
{
    private static Sequential Mlp(ulong seed) => new(
        new Linear(5, 7, generator: new Generator(seed)), new Relu(), new Linear(7, 6, generator: new Generator(seed + 1)), new Relu(),
        new Linear(6, 3, generator: new Generator(seed + 2)));

    private static TensorDataset Data(int n)
    {
        var g = new Generator(11);
        var x = Tensor.Randn([n, 5], g);
        var y = Tensor.FromArray(Enumerable.Range(0, n).Select(i => (long)(i * 7 % 3)).ToArray(), n);
        return new TensorDataset(x, y);
    }

    [Fact]
    public void ShardsAreDisjointAndMakeUpTheGlobalBatchInOrder()
    {
        var data = Data(23);
        foreach (bool prefetch in new[] { false, true })
        {
            var whole = new DataLoader(data, 8, shuffle: true, seed: 5);
            var parts = Enumerable.Range(0, 3).Select(r => new DataLoader(data, 8, shuffle: true, seed: 5, prefetch: prefetch).SetShard(r, 3)).ToArray();
            for (int epoch = 0; epoch < 2; epoch++)
            {
                var expected = whole.Select(b => b.Input.ToArray()).ToList();
                var got = parts.Select(p => p.Select(b => b.Input.ToArray()).ToList()).ToArray();
                Assert.Equal(expected.Count, got[0].Count);
                for (int b = 0; b < expected.Count; b++)
                    Assert.Equal(expected[b], got.SelectMany(g => g[b]).ToArray()); // rank order = the global order
                Assert.All(parts, p => Assert.Equal(whole.StateDict().Meta.ToJsonString(), p.StateDict().Meta.ToJsonString()));
            }
        }
        Assert.Equal((0, 2), DataLoader.ShardRange(7, 0, 3));
        Assert.Equal((2, 2), DataLoader.ShardRange(7, 1, 3));
        Assert.Equal((4, 3), DataLoader.ShardRange(7, 2, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader(data, 8).SetShard(3, 3));
    }

    [Fact]
    public void BucketsFollowReverseParameterOrderAndTheSizeLimit()
    {
        var model = Mlp(1); // 5*7+7 = 42, 7*6+6 = 48, 6*3+3 = 21 parameters
        var ddp = new DistributedDataParallel(model, new LocalCommunicator(), bucketBytes: 4 * 30);
        // Reverse order: [fc3.b 3, fc3.w 18] = 21; fc2.b 6 -> 27; fc2.w 42 opens a new bucket; ...
        Assert.Equal([27, 42, 7, 35], ddp.BucketSizes);
        Assert.Equal(4L * (42 + 48 + 21), ddp.BytesPerStep);
        Assert.Single(new DistributedDataParallel(Mlp(1), new LocalCommunicator()).BucketSizes);
    }

    /// <summary>Runs <paramref name="steps"/> SGD steps with batch 8 on <paramref name="ranks"/> thread-ranks; returns each rank's parameters.</summary>
    private static (float[][] Params, int Reductions)[] TrainOnThreads(int ranks, int steps, int accumulate = 1)
    {
        var group = new ThreadGroup(ranks);
        var data = Data(64);
        var results = new (float[][], int)[ranks];
        var errors = new Exception?[ranks];
        var threads = Enumerable.Range(0, ranks).Select(r => new Thread(() =>
        {
            try
            {
                using var one = Threads.Use(1);
                var comm = new ThreadCommunicator(group, r);
                var model = Mlp(r == 0 ? 1UL : 99UL); // rank 1 starts elsewhere: the broadcast must fix that
                var ddp = new DistributedDataParallel(model, comm, bucketBytes: 4 * 30);
                var opt = new Sgd(model.Parameters(), 0.1, momentum: 0.9);
                var loader = new DataLoader(data, 8, shuffle: true, seed: 3).SetShard(r, ranks);
                int step = 0;
                opt.ZeroGrad();
                foreach (var (x, y) in loader)
                {
                    bool last = (step + 1) % accumulate == 0;
                    using (last ? null : ddp.NoSync())
                        Loss.CrossEntropy(ddp.Forward(x), y).Backward();
                    step++;
                    if (!last) continue;
                    ddp.FinishGradientSync();
                    opt.Step();
                    opt.ZeroGrad();
                    if (step == steps * accumulate) break;
                }
                results[r] = ([.. model.Parameters().Select(p => p.ToArray())], comm.Reductions);
            }
            catch (Exception e) { errors[r] = e; group.Barrier.RemoveParticipant(); }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        foreach (var e in errors) if (e != null) throw new InvalidOperationException("a rank failed", e);
        return results;
    }

    private static float[][] TrainSingle(int steps, int accumulate = 1)
    {
        var model = Mlp(1);
        var opt = new Sgd(model.Parameters(), 0.1, momentum: 0.9);
        int step = 0;
        foreach (var (x, y) in new DataLoader(Data(64), 8, shuffle: true, seed: 3))
        {
            Loss.CrossEntropy(model.Forward(x), y).Backward();
            step++;
            if (step % accumulate != 0) continue;
            // Accumulated micro-batches: the sum of per-micro-batch means, as DDP's NoSync gives.
            opt.Step();
            opt.ZeroGrad();
            if (step == steps * accumulate) break;
        }
        return [.. model.Parameters().Select(p => p.ToArray())];
    }

    private static void AssertClose(float[][] expected, float[][] actual, double rtol)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            double scale = expected[i].Max(v => Math.Abs(v)), diff = expected[i].Zip(actual[i], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(diff <= rtol * scale, $"parameter {i}: max difference {diff} against scale {scale}");
        }
    }

    [Fact]
    public void TwoRanksMatchOneProcessAndAgreeBitForBit()
    {
        var single = TrainSingle(6);
        foreach (int ranks in new[] { 2, 4 })
        {
            var r = TrainOnThreads(ranks, 6);
            AssertClose(single, r[0].Params, 1e-5);
            for (int k = 1; k < ranks; k++)
                for (int i = 0; i < single.Length; i++) Assert.Equal(r[0].Params[i], r[k].Params[i]);
            Assert.Equal(6 * 4, r[0].Reductions); // 4 buckets per step
        }
    }

    [Fact]
    public void NoSyncAccumulatesLocallyAndReducesTheSumOnce()
    {
        var single = TrainSingle(3, accumulate: 2);
        var r = TrainOnThreads(2, 3, accumulate: 2);
        AssertClose(single, r[0].Params, 1e-5);
        Assert.Equal(3 * 4, r[0].Reductions); // only the synchronized backward passes communicate
    }

    [Fact]
    public void MissingLibraryAndMissingLauncherAreOneLineErrors()
    {
        var e = Assert.Throws<MpiException>(() => Mpi.Load(["/nonexistent/libmpi.so.40"]));
        Assert.StartsWith("--distributed: cannot load Open MPI's libmpi (libmpi.so.40)", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        if (Mpi.StartedByLauncher) return;
        var c = Assert.Throws<CliException>(() => new DistributedTraining());
        Assert.Equal("--distributed: this process was not started by mpirun (OMPI_COMM_WORLD_SIZE is not set); run: mpirun -np N backprop train ... --distributed", c.Message);
        var err = new StringWriter();
        Assert.Equal(2, Cli.Cli.Run(["train", "--epochs", "1", "--limit", "64", "--distributed"], new StringWriter(), err));
        Assert.StartsWith("error: --distributed: this process was not started by mpirun", err.ToString());
    }

    [MpiFact]
    public void MpirunTwoRanksTrainsAndReportsTheCommunication()
    {
        string dll = typeof(Cli.Cli).Assembly.Location;
        var psi = new ProcessStartInfo(MpiFactAttribute.Mpirun!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment["TERM"] = "dumb"; // no keypad escape from .NET on mpirun's pseudo-terminal
        foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "-np", "2", "dotnet", dll, "train", "--model", "mlp:64-16-10",
            "--optimizer", "sgd", "--batch-size", "32", "--limit", "128", "--epochs", "1", "--json", "--quiet", "--distributed" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(120_000), "mpirun did not finish in 120 s");
        Assert.True(p.ExitCode == 0, $"mpirun exited with {p.ExitCode}: {stdout} {stderr.Result}");
        var json = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;
        var d = json["distributed"]!;
        Assert.Equal(2, (int)d["ranks"]!);
        Assert.Equal(4L * (64 * 16 + 16 + 16 * 10 + 10), (long)d["bytes_per_step"]!);
        Assert.Equal(1, (int)d["buckets"]!);
        Assert.Equal(4, (int)d["steps"]!);
        Assert.Equal(4, (int)json["steps"]!);
        // the progress thread runs (MPI granted at least SERIALIZED), and the overlap measures are fractions
        Assert.StartsWith("thread", (string)d["progress"]!);
        Assert.Contains((string)d["mpi_thread_level"]!, new[] { "Serialized", "Multiple" });
        Assert.InRange((double)d["bytes_hidden_fraction"]!, 0, 1);
        Assert.Equal(0, (int)d["sync_batch_norm_layers"]!);
    }
}
