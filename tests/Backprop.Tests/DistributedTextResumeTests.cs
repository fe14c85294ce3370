using Backprop.Cli.Text;
using Backprop.Distributed;
using Backprop.IO;

namespace Backprop.Tests;

/// <summary>
/// 'train text --distributed --resume' on thread-ranks (docs/distributed.md): with --bptt each rank
/// carries only its own rows' state, so a checkpoint gathers every rank's rows (rank 0 writes it) and a
/// resumed rank takes its rows back. Resuming with the same number of ranks continues bit for bit; with
/// another number (or one process) at the same step, to rounding. (tools/distributed-check.sh step 8
/// checks the same under mpirun.)
/// </summary>
public sealed class DistributedTextResumeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-ddp-text-resume").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string P(string name) => Path.Combine(_dir, name);

    private TextTrainOptions Lstm()
    {
        string path = P("t.txt");
        if (!File.Exists(path)) File.WriteAllText(path, string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 10)));
        // 4 streams of ~110 characters in chunks of 6: the checkpoint at step 5 is inside a pass
        return new()
        {
            Model = "lstm", Data = path, Lines = false, Tokenizer = "char", Context = 6, Embedding = 6, Layers = 2, Width = 8, Heads = 2,
            Dropout = 0.3, Steps = 8, BatchSize = 4, Optimizer = "sgd", Lr = 0.5, MinLrFraction = 0.05, WeightDecay = 0, Seed = 5,
            EvalEvery = 3, Bptt = true,
        };
    }

    /// <summary>
    /// The loop of 'train text' on <paramref name="ranks"/> thread-ranks (0: one process), from
    /// <paramref name="resume"/> if given, saving (every rank calls Save, rank 0 writes) at
    /// <paramref name="saveAt"/> to <paramref name="mid"/> and at the end to <paramref name="end"/>.
    /// </summary>
    private static void Run(TextTrainOptions o, int ranks, string end, string? resume = null, long saveAt = -1, string? mid = null)
    {
        void Rank(ThreadCommunicator? comm)
        {
            var t = new TextTrainer(o);
            if (comm != null) t.Dist = new ThreadStepSync(comm, new DistributedDataParallel(t.Model, comm, bucketBytes: 1024));
            if (resume != null) t.Restore(Checkpoint.Load(resume));
            while (t.Step < o.Steps)
            {
                t.TrainStep();
                if (t.Step % o.EvalEvery == 0) t.Evaluate();
                if (t.Step == saveAt) t.Save(mid!);
            }
            t.Save(end);
        }
        if (ranks == 0)
        {
            using var one = Threads.Use(1);
            Rank(null);
        }
        else DistributedSyncTests.OnThreads(ranks, c => { Rank(c); return 0; });
    }

    private static Dictionary<string, float[]> Tensors(string path) =>
        Checkpoint.Load(path).Components.Where(c => c.Key is "model" or TextTrainer.CarriedKey)
            .SelectMany(c => c.Value.Tensors.Select(t => (Key: $"{c.Key}.{t.Key}", t.Value))).ToDictionary(t => t.Key, t => t.Value.ToArray());

    private static double MaxRelative(string expected, string actual)
    {
        var (e, a) = (Tensors(expected), Tensors(actual));
        Assert.Equal(e.Keys.Order(), a.Keys.Order());
        return e.Max(kv => kv.Value.Zip(a[kv.Key], (u, v) => (double)Math.Abs(u - v)).Max() / Math.Max(1e-30, kv.Value.Max(v => Math.Abs(v))));
    }

    [Fact]
    public void LstmWithBpttAndDropoutResumesOnTheSameAndOtherNumbersOfRanks()
    {
        var o = Lstm();
        Run(o, 2, P("straight"), saveAt: 5, mid: P("mid"));

        // the checkpoint holds the carried state of the whole batch (both ranks' rows), and what a rank
        // carries after step 5 differs by row (so putting a row at the wrong place would show)
        var carried = Checkpoint.Load(P("mid")).Components[TextTrainer.CarriedKey].Tensors.ToDictionary();
        Assert.Equal(["c", "h"], carried.Keys.Order());
        var h = carried["h"];
        Assert.Equal((2, 4, 8), (h.Size(0), h.Size(1), h.Size(2)));
        Assert.NotEqual(h.Narrow(1, 0, 2).ToArray(), h.Narrow(1, 2, 2).ToArray());
        Assert.Equal(2, Checkpoint.Load(P("mid")).Extra["ranks"]!.GetValue<int>());

        Run(o, 2, P("resumed2"), resume: P("mid"));
        TextResumeTests.AssertSameTextRun(P("straight"), P("resumed2"));

        foreach (int ranks in new[] { 4, 0 })   // 4 ranks: one row each; 0: one process
        {
            string path = P($"resumed{ranks}");
            Run(o, ranks, path, resume: P("mid"));
            Assert.Equal(8, Checkpoint.Load(path).Step);
            double d = MaxRelative(P("straight"), path);
            Assert.True(d < 1e-5, $"resumed on {ranks} rank(s): {d} from the uninterrupted 2-rank run");
        }

        // what the test guards: a resume that starts the carried state from zeros is far off
        var zeros = P("zeros");
        var content = Checkpoint.Load(P("mid"));
        content.Components.Remove(TextTrainer.CarriedKey);
        Checkpoint.Save(zeros, content);
        Run(o, 2, P("resumedZeros"), resume: zeros);
        Assert.True(MaxRelative(P("straight"), P("resumedZeros")) > 1e-3);
    }
}
