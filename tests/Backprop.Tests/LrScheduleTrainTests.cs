using Backprop.Cli.Training;
using Backprop.IO;

namespace Backprop.Tests;

/// <summary>`train --min-lr`: cosine decay of the learning rate over every step of every epoch, resumable.</summary>
[Collection("Threads")]
public class LrScheduleTrainTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-minlr").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string P(string name) => Path.Combine(_dir, name);

    private static TrainOptions Xor(double minLr) =>
        new() { Dataset = "xor", Model = "mlp:2-8-2", Activation = "tanh", Optimizer = "adam", Lr = 0.02, BatchSize = 32, Epochs = 3, MinLrFraction = minLr };

    [Fact]
    public void EachStepUsesTheCosineRateFromLrDownToLrTimesMinLr()
    {
        Threads.Count = 1;
        var t = new Trainer(Xor(0.1));
        long total = 3L * t.Loader.Count;
        Assert.True(total > 10);
        var used = new List<double>();
        for (int e = 0; e < 3; e++) t.TrainEpoch((_, _) => used.Add(t.Optimizer.Lr));
        Assert.Equal(total, used.Count);
        Assert.Equal(0.02, used[0], 15);
        Assert.Equal(0.002, used[^1], 15);
        for (int s = 1; s <= total; s++)
        {
            double expected = 0.02 * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * (s - 1) / (total - 1))));
            Assert.Equal(expected, used[s - 1], 12);
        }
        // the default, 1, keeps the rate constant
        var c = new Trainer(Xor(1));
        c.TrainEpoch((_, _) => Assert.Equal(0.02, c.Optimizer.Lr));
    }

    [Fact]
    public void AMidRunCheckpointResumesTheScheduleBitIdentically()
    {
        Threads.Count = 1;
        var straight = new Trainer(Xor(0.05));
        straight.TrainEpoch((_, _) => { if (straight.Step == 13) straight.SaveCheckpoint(P("mid")); });
        straight.TrainEpoch();
        straight.TrainEpoch();
        straight.SaveCheckpoint(P("straight"));

        var resumed = new Trainer(Xor(0.05));
        resumed.Restore(Checkpoint.Load(P("mid")));
        Assert.Equal(13L, resumed.Step);
        while (resumed.EpochsDone < 3) resumed.TrainEpoch();
        resumed.SaveCheckpoint(P("resumed"));
        ResumeTests.AssertSameRun(P("straight"), P("resumed"));
        // and the checkpoint records the fraction, so that `--resume` continues the same schedule
        Assert.Equal(0.05, TrainOptions.FromJson(Checkpoint.Load(P("mid")).Extra["options"]!.AsObject(), "mid").MinLrFraction);
    }

    [Fact]
    public void TheCommandLineTakesMinLrAndRecordsIt()
    {
        var r = ResumeTests.Run("train", "xor", "--epochs", "2", "--min-lr", "0.1", "--threads", "1", "--save", P("c"), "--json");
        Assert.Equal(0, r.Code);
        Assert.Contains("(cosine to 0.002", r.Err + r.Out);
        var bad = ResumeTests.Run("train", "xor", "--min-lr", "2");
        Assert.NotEqual(0, bad.Code);
        Assert.Contains("--min-lr", bad.Err);
    }
}
