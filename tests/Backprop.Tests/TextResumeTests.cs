using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Backprop.Cli.Text;
using Backprop.IO;

namespace Backprop.Tests;

/// <summary>
/// 'backprop train text' interrupted and resumed (docs/language-models.md, docs/reliability.md): a
/// checkpoint taken between two validations, in the middle of a truncated-BPTT pass, with dropout,
/// continues bit for bit like the uninterrupted run; SIGINT and SIGTERM finish the step, save and exit
/// 130 or 143; a second signal exits at once and leaves the last checkpoint whole.
/// </summary>
[Collection("Threads")]
public sealed partial class TextResumeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-text-resume").FullName;
    private readonly string _text, _names;

    public TextResumeTests()
    {
        // A running text of ~1,700 characters (for --bptt) and a list of names (for --lines).
        var g = new Generator(7);
        string[] words = ["the", "king", "and", "queen", "of", "a", "fair", "land", "speak", "now", "to", "me", "my", "lord"];
        _text = P("text.txt");
        File.WriteAllText(_text, string.Join(" ", Enumerable.Range(0, 400).Select(i => words[g.NextInt(words.Length)] + (i % 11 == 10 ? ".\n" : ""))));
        string[] stems = ["an", "em", "ol", "is", "ma", "li", "ra", "el"];
        _names = P("names.txt");
        File.WriteAllLines(_names, Enumerable.Range(0, 300).Select(_ => stems[g.NextInt(8)] + stems[g.NextInt(8)] + (g.NextInt(2) == 0 ? "a" : "")));
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private string P(string name) => Path.Combine(_dir, name);

    /// <summary>
    /// Asserts two text checkpoints hold the same run: bit-identical tensors (model, optimizer, carried
    /// state), step, every generator state (batches, dropout), and the same history and losses since the
    /// last validation.
    /// </summary>
    internal static void AssertSameTextRun(string expected, string actual)
    {
        var (a, b) = (Checkpoint.Load(expected), Checkpoint.Load(actual));
        static Dictionary<string, Tensor> Tensors(CheckpointContent c) =>
            c.Components.SelectMany(k => k.Value.Tensors.Select(t => (Key: $"{k.Key}.{t.Key}", t.Value))).ToDictionary(t => t.Key, t => t.Value);
        CheckpointTests.AssertBitIdentical(Tensors(a), Tensors(b));
        Assert.Equal(a.Step, b.Step);
        Assert.Equal(a.RngStates.Keys.Order(), b.RngStates.Keys.Order());
        foreach (var (name, state) in a.RngStates) Assert.True(state.SequenceEqual(b.RngStates[name]), $"generator '{name}' differs");
        foreach (var key in new[] { "history", "pending_loss_sum", "pending_loss_count" })
            Assert.Equal(a.Extra[TextTrainer.ExtraKey]![key]!.ToJsonString(), b.Extra[TextTrainer.ExtraKey]![key]!.ToJsonString());
    }

    private TextTrainOptions Options(string model, bool bptt, bool lines, double dropout) => new()
    {
        Model = model, Data = lines ? _names : _text, Lines = lines, Tokenizer = "char", Context = model == "nlm" ? 3 : 8, Embedding = 8,
        Layers = model == "nlm" ? 1 : 2, Width = 16, Heads = 2, Dropout = dropout, Steps = 9, BatchSize = 4, Optimizer = "adamw", Lr = 3e-3,
        MinLrFraction = 0.05, WeightDecay = 0.01, Seed = 5, EvalEvery = 4, Bptt = bptt,
    };

    /// <summary>The loop of 'train text' (validation every EvalEvery steps), with a checkpoint at <paramref name="saveAt"/>.</summary>
    private static void Train(TextTrainer t, long saveAt = -1, string? path = null)
    {
        while (t.Step < t.Options.Steps)
        {
            t.TrainStep();
            if (t.Step % t.Options.EvalEvery == 0) t.Evaluate();
            if (t.Step == saveAt) t.Save(path!);
        }
    }

    [Theory]
    [InlineData("nlm", false, true, 0.0)]
    [InlineData("rnn", true, false, 0.3)]   // carried state in the middle of a pass, dropout between the layers
    [InlineData("lstm", true, false, 0.3)]  // h and c carried
    [InlineData("gru", false, true, 0.3)]
    [InlineData("gpt", true, false, 0.2)]   // dropout on embeddings, attention weights and residual branches
    public void ACheckpointBetweenValidationsResumesBitIdentically(string model, bool bptt, bool lines, double dropout)
    {
        using var threads = Threads.Use(1);
        var options = Options(model, bptt, lines, dropout);
        var straight = new TextTrainer(options);
        Train(straight, saveAt: 6, path: P("mid"));
        straight.Save(P("straight"));

        var mid = Checkpoint.Load(P("mid"));
        var (recorded, tokenizer, _) = TextTrainer.Recorded(mid, P("mid"), "--resume");
        var resumed = new TextTrainer(recorded, tokenizer);
        resumed.Restore(mid);
        Assert.Equal(6, resumed.Step);
        if (bptt && model != "gpt") Assert.NotEmpty(resumed.Model.CarriedState());   // step 6 is inside a pass over the streams
        Train(resumed);
        resumed.Save(P("resumed"));
        AssertSameTextRun(P("straight"), P("resumed"));
        Assert.Equal(straight.History.Select(h => (h.Step, h.TrainLoss, h.ValLoss)), resumed.History.Select(h => (h.Step, h.TrainLoss, h.ValLoss)));
    }

    [Fact]
    public void ValidatingKeepsTheCarriedState()
    {
        using var threads = Threads.Use(1);
        var t = new TextTrainer(Options("lstm", bptt: true, lines: false, dropout: 0));
        t.TrainStep();
        var before = t.Model.CarriedState().Select(kv => kv.Value.ToArray()).ToArray();
        Assert.Equal(2, before.Length);
        t.Validate();
        var after = t.Model.CarriedState().Select(kv => kv.Value.ToArray()).ToArray();
        Assert.Equal(before, after);
    }

    // ------------------------------------------------------------------ signals, in a real process

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    private const int SigInt = 2, SigTerm = 15;

    // The CLI started as InterruptTests starts it (SIGINT back at its default, so the test does not
    // depend on how dotnet test itself was started).
    private static Process Start(IEnumerable<string> args, ConcurrentQueue<string> stdout, ConcurrentQueue<string> stderr, int pauseMs = 0) =>
        InterruptTests.Start(args, stdout, stderr, pauseMs);

    private static void WaitFor(Func<bool> condition, Process p, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.False(p.HasExited, $"the CLI exited (code {(p.HasExited ? p.ExitCode : 0)}) before {what}");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"timed out waiting for {what}");
            Thread.Sleep(5);
        }
    }

    // A small two-layer LSTM with dropout on a running text, truncated BPTT; a constant learning rate
    // (--min-lr 1), so that a run of N steps is the first N steps of any longer one.
    private string[] Lstm(int steps) =>
        ["train", "text", "--model", "lstm", "--bptt", "--data", _text, "--context", "8", "--batch-size", "4", "--embedding", "8", "--width", "16",
         "--layers", "2", "--dropout", "0.2", "--min-lr", "1", "--eval-every", "20", "--threads", "1", "--steps", steps.ToString(CultureInfo.InvariantCulture)];

    [Fact]
    public void SigtermFinishesTheStepSavesAndResumesExactly()
    {
        string ck = P("ck");
        var (o, e) = (new ConcurrentQueue<string>(), new ConcurrentQueue<string>());
        using var p = Start([.. Lstm(1_000_000), "--save", ck], o, e);
        WaitFor(() => o.Any(l => l.StartsWith("step      20/", StringComparison.Ordinal)), p, "the first validation");
        Assert.Equal(0, Kill(p.Id, SigTerm));
        Assert.True(p.WaitForExit(60_000), "the CLI did not stop after the signal");
        p.WaitForExit();
        Assert.True(p.ExitCode == 143, $"exit code {p.ExitCode}; stderr: {string.Join("\n", e)}");
        Assert.Contains(e, l => l.StartsWith("interrupted by SIGTERM at step ", StringComparison.Ordinal) &&
            l.Contains($"checkpoint {ck} written; continue with: backprop train text --resume {ck}", StringComparison.Ordinal));
        var saved = Checkpoint.Load(ck);
        Assert.True(saved.Step >= 20, $"the checkpoint is at step {saved.Step}, before the signal");
        Assert.Null(Checkpoint.FindNonFinite(saved));

        // Five steps more, resumed, end exactly where an uninterrupted run of as many steps does.
        int total = (int)saved.Step + 5;
        var straight = ResumeTests.Run([.. Lstm(total), "--save", P("ref"), "--quiet"]);
        Assert.True(straight.Code == 0, straight.Err);
        var resumed = ResumeTests.Run(["train", "text", "--resume", ck, "--steps", total.ToString(CultureInfo.InvariantCulture), "--save", P("resumed"), "--quiet"]);
        Assert.True(resumed.Code == 0, resumed.Err);
        AssertSameTextRun(P("ref"), P("resumed"));
    }

    [Fact]
    public void ASecondSigintExitsAtOnceAndLeavesTheLastCheckpointWhole()
    {
        string ck = P("ck");
        var (o, e) = (new ConcurrentQueue<string>(), new ConcurrentQueue<string>());
        // Every save pauses twice (the test hook: after its first write and before the rename): the
        // first signal lands in the second save's first pause, the second in its pause before the rename.
        using var p = Start([.. Lstm(1_000_000), "--save", ck], o, e, pauseMs: 1000);
        int Hooks() => e.Count(l => l.StartsWith("backprop-test-hook:", StringComparison.Ordinal));
        WaitFor(() => File.Exists(ck), p, "the first checkpoint");
        long first = Checkpoint.Load(ck).Step;
        WaitFor(() => Hooks() >= 3, p, "the second save's first pause");
        Assert.Equal(0, Kill(p.Id, SigInt));
        WaitFor(() => Hooks() >= 4, p, "the second save's pause before its rename");
        Assert.Equal(0, Kill(p.Id, SigInt));
        Assert.True(p.WaitForExit(60_000), "the CLI did not stop after the second signal");
        p.WaitForExit();
        Assert.True(p.ExitCode == 130, $"exit code {p.ExitCode}; stderr: {string.Join("\n", e)}");
        Assert.Contains(e, l => l.Contains("SIGINT again: stopped at once", StringComparison.Ordinal));
        // Whole, and the one written before: the process ended inside the pause, before the rename.
        var left = Checkpoint.Load(ck);
        Assert.Equal(first, left.Step);
        Assert.Null(Checkpoint.FindNonFinite(left));
    }
}
