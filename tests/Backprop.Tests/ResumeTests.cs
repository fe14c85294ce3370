using System.Diagnostics;
using System.Text.Json.Nodes;
using Backprop.Cli.Training;
using Backprop.IO;
using Xunit.Abstractions;

namespace Backprop.Tests;

[Collection("Threads")]
public class ResumeTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-resume").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string P(string name) => Path.Combine(_dir, name);

    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static JsonNode LastJson(string stdout) => JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!;

    /// <summary>Every tensor of a checkpoint (model and optimizer state) by its name in the file.</summary>
    private static Dictionary<string, Tensor> Tensors(string path) =>
        Checkpoint.Load(path).Components.SelectMany(c => c.Value.Tensors.Select(t => (Key: $"{c.Key}.{t.Key}", t.Value))).ToDictionary(t => t.Key, t => t.Value);

    /// <summary>Asserts two checkpoints hold the same run: bit-identical tensors, position, loader state and init generator.</summary>
    internal static void AssertSameRun(string expected, string actual)
    {
        CheckpointTests.AssertBitIdentical(Tensors(expected), Tensors(actual));
        var (a, b) = (Checkpoint.Load(expected), Checkpoint.Load(actual));
        Assert.Equal((a.Epoch, a.Step), (b.Epoch, b.Step));
        Assert.Equal(a.Components["loader"].Meta.ToJsonString(), b.Components["loader"].Meta.ToJsonString());
        Assert.Equal(a.RngStates["init"], b.RngStates["init"]);
    }

    [Fact]
    public void OneEpochThenResumeForASecondEqualsTwoEpochs()
    {
        // The issue's example on the default digits (limited, for speed).
        string[] common = ["--limit", "600", "--threads", "1", "--quiet", "--json"];
        var a = Run(["train", "--epochs", "1", "--save", P("a"), .. common]);
        Assert.Equal(0, a.Code);
        var b = Run(["train", "--epochs", "2", "--resume", P("a"), "--save", P("b"), .. common]);
        Assert.Equal(0, b.Code);
        var c = Run(["train", "--epochs", "2", "--save", P("c"), .. common]);
        Assert.Equal(0, c.Code);
        AssertSameRun(P("c"), P("b"));
        // The reported history continues too: epoch 1 comes from the checkpoint, epoch 2 was trained here.
        var (hb, hc) = (LastJson(b.Out)["history"]!.AsArray(), LastJson(c.Out)["history"]!.AsArray());
        Assert.Equal(2, hb.Count);
        for (int i = 0; i < 2; i++)
            Assert.Equal((double)hc[i]!["train_loss"]!, (double)hb[i]!["train_loss"]!);
        Assert.Equal((double)LastJson(c.Out)["test_accuracy"]!, (double)LastJson(b.Out)["test_accuracy"]!);
        Assert.Equal(P("a"), (string?)LastJson(b.Out)["resumed_from"]);
    }

    [Fact]
    public void MidEpochCheckpointResumesBitIdenticallyWithTheSameEpochLoss()
    {
        var options = new TrainOptions { Dataset = "xor", Model = "mlp:2-8-2", Activation = "tanh", Optimizer = "adam", Lr = 0.02, BatchSize = 32, Epochs = 2 };
        Threads.Count = 1;
        var straight = new Trainer(options);
        var first = straight.TrainEpoch((b, _) => { if (straight.Step == 13) straight.SaveCheckpoint(P("mid")); });
        straight.TrainEpoch();
        straight.SaveCheckpoint(P("straight"));

        var resumed = new Trainer(options with { Seed = 1 });
        resumed.Restore(Checkpoint.Load(P("mid")));
        Assert.Equal((0, 13, 13L), (resumed.EpochsDone, resumed.Loader.BatchIndex, resumed.Step));
        var again = resumed.TrainEpoch();
        Assert.Equal(first.MeanLoss, again.MeanLoss);      // the epoch's mean includes the 13 batches before the save
        resumed.TrainEpoch();
        resumed.SaveCheckpoint(P("resumed"));
        AssertSameRun(P("straight"), P("resumed"));
    }

    [Fact]
    public void SavingEveryFewStepsDoesNotChangeTheRun()
    {
        string[] common = ["train", "xor", "--epochs", "2", "--threads", "1", "--quiet"];
        Assert.Equal(0, Run([.. common, "--save", P("ref")]).Code);
        Assert.Equal(0, Run([.. common, "--save-every", "3", "--save", P("every")]).Code);
        AssertSameRun(P("ref"), P("every"));
    }

    [Fact]
    public void ResumeHonoursOverridesAndRefusesAModelThatDoesNotFit()
    {
        Assert.Equal(0, Run("train", "xor", "--epochs", "1", "--save", P("a"), "--quiet", "--threads", "1").Code);
        var lr = Run("train", "--resume", P("a"), "--epochs", "2", "--lr", "0.005", "--quiet", "--json", "--save", P("b"));
        Assert.Equal(0, lr.Code);
        Assert.Equal(0.005, (double)LastJson(lr.Out)["lr"]!);
        Assert.Equal(0.005, (double)Checkpoint.Load(P("b")).Components["optim"].Meta["param_groups"]![0]!["lr"]!);
        Assert.Equal("xor", (string)LastJson(lr.Out)["dataset"]!);

        var model = Run("train", "--resume", P("a"), "--epochs", "2", "--model", "mlp:2-16-2");
        Assert.Equal(2, model.Code);
        Assert.Single(model.Err.TrimEnd().Split('\n'));
        Assert.Contains("'model.0.weight': expected [16, 2] float32, found [8, 2] float32", model.Err);
        Assert.StartsWith("error: --resume " + P("a"), model.Err);

        var opt = Run("train", "--resume", P("a"), "--epochs", "2", "--optimizer", "sgd");
        Assert.Equal(2, opt.Code);
        Assert.Contains("the checkpoint holds the state of optimizer Adam, not Sgd", opt.Err);

        // A new batch size is fine at an epoch boundary (the position is just an epoch number).
        var batch = Run("train", "--resume", P("a"), "--epochs", "2", "--batch-size", "50", "--quiet", "--json");
        Assert.Equal(0, batch.Code);
        Assert.Equal(32 + 20, (long)LastJson(batch.Out)["steps"]!);

        var done = Run("train", "--resume", P("b"), "--epochs", "2");
        Assert.Equal(0, done.Code);
        Assert.Contains("nothing to train", done.Out);
    }

    [Theory]
    [InlineData("--save-every needs --save PATH", "train", "xor", "--save-every", "3")]
    [InlineData("option --save-every must be between 1 and", "train", "xor", "--save-every", "0", "--save", "x")]
    [InlineData("checkpoint not found", "train", "--resume", "/no/such/checkpoint.safetensors")]
    public void CheckpointOptionMistakesAreOneLineErrors(string message, params string[] args)
    {
        var (code, _, err) = Run(args);
        TestUtil.OneLineError(code, err, message);
    }

    [Fact]
    public void CorruptOrForeignResumeFilesAreOneLineErrors()
    {
        Assert.Equal(0, Run("train", "xor", "--epochs", "1", "--save", P("good"), "--quiet").Code);
        var bytes = File.ReadAllBytes(P("good"));
        File.WriteAllBytes(P("cut"), bytes[..(bytes.Length - 10)]);
        File.WriteAllBytes(P("junk"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        SafeTensors.Save(P("plain"), [new("x", Tensor.Zeros(1))]);
        foreach (var (file, message) in new[] { ("cut", "truncated"), ("junk", "header length"), ("plain", "not a Backprop checkpoint") })
        {
            var (code, _, err) = Run("train", "--resume", P(file));
            Assert.Equal(2, code);
            Assert.Contains(P(file), err);
            Assert.Contains(message, err);
            Assert.Single(err.TrimEnd().Split('\n'));
        }
        var dir = Run("train", "xor", "--save", _dir);
        Assert.Equal(2, dir.Code);
        Assert.Contains("it is a directory", dir.Err);
    }

    [Fact]
    public void ANaNLossStopsWithExitCode1AndKeepsTheLastGoodCheckpoint()
    {
        string ck = P("nan");
        string[] diverging = ["train", "xor", "--optimizer", "sgd", "--lr", "1e6", "--activation", "relu", "--epochs", "3", "--threads", "1", "--quiet"];
        var (code, _, err) = Run([.. diverging, "--save", ck, "--save-every", "3"]);
        Assert.Equal(1, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        var m = System.Text.RegularExpressions.Regex.Match(err, @"the training loss became NaN at epoch 1, step (\d+) \(batch (\d+) of 32\)");
        Assert.True(m.Success, err);
        int step = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var last = Checkpoint.Load(ck);
        Assert.Equal((step - 1) / 3 * 3, last.Step);       // the last save before the NaN, never the NaN model
        // The loss exploded at step 2, before any save: none of the kept checkpoints is from before it.
        Assert.Contains("divergence began at step 2 (training loss ", err);
        Assert.Contains("no checkpoint from before it is left (--keep 2 kept); start again with --lr 1E+05 (now 1E+06).", err);
        Assert.Null(Checkpoint.FindNonFinite(last));

        var anomaly = Run([.. diverging, "--detect-anomaly"]);
        Assert.Equal(1, anomaly.Code);
        Assert.Single(anomaly.Err.TrimEnd().Split('\n'));
        Assert.Contains("anomaly detected (DetectAnomaly: Linear produced", anomaly.Err);
        Assert.Contains($"at epoch 1, step {step}", anomaly.Err);
        // Detection changes nothing when all is well.
        Assert.Equal(0, Run("train", "xor", "--epochs", "1", "--detect-anomaly", "--quiet", "--threads", "1", "--save", P("ok-anomaly")).Code);
        Assert.Equal(0, Run("train", "xor", "--epochs", "1", "--quiet", "--threads", "1", "--save", P("ok")).Code);
        AssertSameRun(P("ok"), P("ok-anomaly"));
    }

    [Fact]
    public void ANonFiniteModelIsNeverSaved()
    {
        var options = new TrainOptions { Dataset = "xor", Model = "mlp:2-8-2", Activation = "tanh", Optimizer = "adam", Lr = 0.02, BatchSize = 32, Epochs = 1 };
        var t = new Trainer(options);
        t.TrainEpoch();
        t.SaveCheckpoint(P("good"));
        using (Tensor.NoGrad()) t.Model.Parameters().Last().Fill_(float.PositiveInfinity);
        var e = Assert.Throws<TrainingDivergedException>(() => t.SaveCheckpoint(P("good")));
        Assert.Contains("'model.2.bias' holds NaN or infinity after epoch 1, step 32", e.Message);
        Assert.Contains($"the newest kept checkpoint from before it is {P("good")} (epoch 1, step 32, training loss ", e.Message);
        Assert.Null(Checkpoint.FindNonFinite(Checkpoint.Load(P("good"))));
    }

    // ------------------------------------------------------------------ real processes, SIGKILL

    /// <summary>The CLI built next to the tests (the test project references it).</summary>
    private static string CliDll
    {
        get
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "Backprop.Cli.dll");
            Assert.True(File.Exists(dll), $"the CLI is not built next to the tests: {dll} is missing");
            return dll;
        }
    }

    private static Process Start(IEnumerable<string> args, int pauseMs, Action<string>? onStderr = null)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(CliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("BACKPROP_THREADS");
        if (pauseMs > 0) psi.Environment[AtomicFile.PauseVariable] = pauseMs.ToString(System.Globalization.CultureInfo.InvariantCulture);
        else psi.Environment.Remove(AtomicFile.PauseVariable);
        var p = new Process { StartInfo = psi };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) onStderr?.Invoke(e.Data); };
        p.OutputDataReceived += (_, _) => { };
        p.Start();
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        return p;
    }

    private static void KillAndWait(Process p)
    {
        p.Kill(); // SIGKILL on Linux and macOS: no handler, no cleanup, like a crash
        Assert.True(p.WaitForExit(20_000), "the killed CLI did not exit");
    }

    private static void RunToEnd(IEnumerable<string> args)
    {
        var err = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var p = Start(args, 0, err.Enqueue);
        Assert.True(p.WaitForExit(60_000), "the CLI did not finish in 60 s");
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"exit code {p.ExitCode}: {string.Join("\n", err)}");
    }

    private static readonly string[] XorRun = ["train", "xor", "--epochs", "3", "--threads", "1", "--quiet"];

    /// <summary>
    /// Kills the CLI with SIGKILL inside its <paramref name="nth"/> save, at the test hook's pause
    /// <paramref name="where"/> ("mid-write": the temporary file is incomplete; "before rename": it is
    /// complete but not yet in place). The checkpoint at the path must then be the previous save, and
    /// resuming from it must end exactly where an uninterrupted run ends.
    /// </summary>
    [Theory]
    [InlineData(3, "mid-write")]
    [InlineData(4, "before rename")]
    public void KilledInTheMiddleOfASaveResumesExactly(int nth, string where)
    {
        Assert.Equal(0, Run([.. XorRun, "--save", P("ref")]).Code);
        string ck = P("ck");
        int seen = 0;
        string? tmp = null;
        using var hit = new ManualResetEventSlim();
        using (var p = Start([.. XorRun, "--save-every", "5", "--save", ck], pauseMs: 1000, line =>
        {
            const string prefix = "backprop-test-hook: save paused ";
            if (!line.StartsWith(prefix + where + ": ", StringComparison.Ordinal) || ++seen != nth) return;
            tmp = line[(prefix.Length + where.Length + 2)..];
            hit.Set();
        }))
        {
            Assert.True(hit.Wait(60_000), $"save {nth} never reached the pause {where}");
            KillAndWait(p);
        }
        Assert.True(File.Exists(tmp), "the kill came before the temporary file existed");
        if (where == "mid-write")
            Assert.Equal(8, new FileInfo(tmp!).Length);                 // only the header length reached the file
        else
            Assert.Equal(5L * nth, Checkpoint.Load(tmp!).Step);         // complete, but never renamed into place
        var last = Checkpoint.Load(ck);                                 // the previous save, intact
        Assert.Equal(5L * (nth - 1), last.Step);

        RunToEnd(["train", "--resume", ck, "--save", P("out")]);
        AssertSameRun(P("ref"), P("out"));
        Assert.Empty(AtomicFile.StaleTemporaries(P("out")));
    }

    [Fact]
    public void KilledDuringTheFirstSaveLeavesNoCheckpointAndAClearError()
    {
        string ck = P("first");
        using var hit = new ManualResetEventSlim();
        using (var p = Start([.. XorRun, "--save-every", "5", "--save", ck], pauseMs: 400, line =>
        {
            if (line.StartsWith("backprop-test-hook: save paused mid-write", StringComparison.Ordinal)) hit.Set();
        }))
        {
            Assert.True(hit.Wait(60_000), "the first save never started");
            KillAndWait(p);
        }
        Assert.False(File.Exists(ck));
        var (code, _, err) = Run("train", "--resume", ck);
        Assert.Equal(2, code);
        Assert.Contains("the incomplete temporary file of an interrupted save", err);
        // The next run's first successful save clears the debris.
        Assert.Equal(0, Run("train", "xor", "--epochs", "1", "--save", ck, "--quiet").Code);
        Assert.Empty(AtomicFile.StaleTemporaries(ck));
    }

    /// <summary>SIGKILL at seeded random moments (saves every step, slowed a little so some kills land in one).</summary>
    [Fact]
    public void KilledAtRandomMomentsAlwaysLeavesALoadableCheckpointThatResumesExactly()
    {
        Assert.Equal(0, Run([.. XorRun, "--save", P("ref")]).Code);
        var rng = new Random(20240607);
        for (int round = 0; round < 3; round++)
        {
            string ck = P($"random{round}");
            using (var p = Start([.. XorRun, "--save-every", "1", "--save", ck], pauseMs: 3))
            {
                var sw = Stopwatch.StartNew();
                while (!File.Exists(ck) && !p.HasExited && sw.ElapsedMilliseconds < 60_000) Thread.Sleep(5);
                Thread.Sleep(rng.Next(0, 120));
                if (!p.HasExited) KillAndWait(p);
            }
            var c = Checkpoint.Load(ck);
            Assert.InRange(c.Step, 1, 96);
            output.WriteLine($"round {round}: killed after step {c.Step}; {(AtomicFile.StaleTemporaries(ck).Count > 0 ? "inside a save (a temporary file was left)" : "between saves")}");
            Assert.Null(Checkpoint.FindNonFinite(c));
            RunToEnd(["train", "--resume", ck, "--save", P($"out{round}")]);
            AssertSameRun(P("ref"), P($"out{round}"));
        }
    }
}
