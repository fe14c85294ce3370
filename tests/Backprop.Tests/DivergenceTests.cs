using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Backprop.IO;

namespace Backprop.Tests;

/// <summary>
/// --keep N and the divergence advice: the newest kept checkpoint from before the divergence began,
/// with a learning rate ten times lower, really trains on (docs/reliability.md).
/// </summary>
[Collection("Threads")]
public partial class DivergenceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-diverge").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string P(string name) => Path.Combine(_dir, name);

    private static (int Code, string Out, string Err) Run(params string[] args) => ResumeTests.Run(args);

    private static double? RecordedLoss(string path) =>
        Checkpoint.Load(path).Extra["trainer"]!["loss"] is JsonValue v ? v.GetValue<double>() : null;

    // xor, SGD with ReLU: stable at lr 0.1 and 100, diverges (loss 1000 times the lowest, then NaN) at 1000.
    private static readonly string[] Xor = ["train", "xor", "--optimizer", "sgd", "--activation", "relu", "--threads", "1", "--quiet"];

    [Fact]
    public void KeepNKeepsTheLastNCheckpointsWithTheirLoss()
    {
        string ck = P("ck");
        Assert.Equal(0, Run([.. Xor, "--lr", "0.1", "--epochs", "1", "--save", ck, "--save-every", "5", "--keep", "3"]).Code);
        // Saves at steps 5, 10, ..., 30 and 32 (the epoch's end): the last three are kept.
        Assert.Equal(32, Checkpoint.Load(ck).Step);
        Assert.Equal(30, Checkpoint.Load(ck + ".1").Step);
        Assert.Equal(25, Checkpoint.Load(ck + ".2").Step);
        Assert.False(File.Exists(ck + ".3"));
        foreach (var f in new[] { ck, ck + ".1", ck + ".2" })
            Assert.True(RecordedLoss(f) is double l && double.IsFinite(l) && l > 0, f);
        Assert.True(Checkpoint.Load(ck).Extra["trainer"]!["min_loss"] is JsonValue);

        // The default keeps two.
        Assert.Equal(0, Run([.. Xor, "--lr", "0.1", "--epochs", "1", "--save", P("two"), "--save-every", "5"]).Code);
        Assert.Equal(30, Checkpoint.Load(P("two.1")).Step);
        Assert.False(File.Exists(P("two.2")));
        TestUtil.OneLineError(Run([.. Xor, "--keep", "3"]).Code, Run([.. Xor, "--keep", "3"]).Err, "--keep needs --save PATH");
    }

    [Fact]
    public void TheAdvisedCheckpointAndLearningRateTrainOnWithAFiniteLoss()
    {
        string ck = P("ck");
        Assert.Equal(0, Run([.. Xor, "--lr", "0.1", "--epochs", "1", "--save", ck]).Code);
        // Resumed at lr 1000 the loss explodes at the second step (34) and is NaN at step 54; saves
        // every 4 steps go on meanwhile, finite but diverged. With --keep 2 none from before is left ...
        string[] diverge = ["--lr", "1000", "--epochs", "4", "--save-every", "4", "--quiet"];
        File.Copy(ck, P("ck2"));
        var none = Run(["train", "--resume", P("ck2"), "--save", P("ck2"), .. diverge]);
        Assert.Equal(1, none.Code);
        Assert.Single(none.Err.TrimEnd().Split('\n'));
        Assert.Contains("divergence began at step 34 (training loss ", none.Err);
        Assert.Contains("no checkpoint from before it is left (--keep 2 kept); start again with --lr 100 (now 1000).", none.Err);

        // ... with --keep 8 the one resumed from (step 32) still is, as ck.5.
        var kept = Run(["train", "--resume", ck, "--save", ck, "--keep", "8", .. diverge]);
        Assert.Equal(1, kept.Code);
        Assert.Single(kept.Err.TrimEnd().Split('\n'));
        var m = AdviceRegex().Match(kept.Err);
        Assert.True(m.Success, kept.Err);
        Assert.Equal(ck + ".5", m.Groups[1].Value);
        Assert.Equal(32, Checkpoint.Load(m.Groups[1].Value).Step);
        Assert.Equal("100", m.Groups[2].Value);

        // Following the advice trains on with a finite loss.
        var again = Run("train", "--resume", m.Groups[1].Value, "--lr", m.Groups[2].Value, "--epochs", "3", "--json", "--quiet");
        Assert.True(again.Code == 0, again.Err);
        var json = JsonNode.Parse(again.Out.TrimEnd().Split('\n')[^1])!;
        Assert.True(json["train_loss"] is JsonValue v && double.IsFinite(v.GetValue<double>()), again.Out);
    }

    [GeneratedRegex(@"the newest kept checkpoint from before it is (\S+) \(epoch \d+, step \d+, training loss [^)]+\); continue with --resume \S+ --lr (\S+) \(now 1000\)")]
    private static partial Regex AdviceRegex();
}
