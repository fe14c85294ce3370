using System.Text.Json.Nodes;
using Backprop.IO;

namespace Backprop.Tests;

/// <summary>
/// Everything `--resume` reads from a checkpoint is validated before use: a bad value is one line
/// on stderr naming the field and the value, exit code 2, never a stack trace or a run that never ends.
/// </summary>
[Collection("Threads")]
public class RecordedStateTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-recorded").FullName;

    public void Dispose()
    {
        Directory.Delete(_dir, true);
        GC.SuppressFinalize(this);
    }

    private string P(string name) => Path.Combine(_dir, name);

    public static TheoryData<string, string, string> Edits => new()
    {
        { "options.batch_size", "0", "'batch_size' must be an integer in [1, 1048576], found 0" },
        { "options.batch_size", "-1", "'batch_size' must be an integer in [1, 1048576], found -1" },
        { "options.limit", "0", "'limit' must be an integer in [1, 2147483647], found 0" },
        { "options.limit", "-5", "'limit' must be an integer in [1, 2147483647], found -5" },
        { "options.lr", "\"abc\"", "'lr' must be a number in [0, 1000000], found \"abc\"" },
        { "options.epochs", "1e300", "'epochs' must be an integer in [1, 100000], found 1e300" },
        { "options.seed", "-3", "'seed' must be a non-empty string, found -3" },
        { "loader.epoch", "2147483647", "'epoch' is 2147483647; it must be in [0, 1000000000]" },
        { "loader.batch_size", "\"x\"", "batch_size' must be an integer in [1, 2147483647], found \"x\"" },
        { "epoch", "2147483647", "'epoch' must be an integer in [0, 1000000000], found 2147483647" },
        { "optim.lr", "\"abc\"", "'param_groups[0].lr' must be a number, found \"abc\"" },
        { "optim.lr", "-1", "invalid learning rate -1" },
        { "optim.momentum", "\"fast\"", "'hyperparameters.momentum' must be a number, found \"fast\"" },
        { "trainer.epoch_batches", "\"x\"", "'trainer.epoch_batches' must be an integer in [0, 2147483647], found \"x\"" },
        { "trainer.history", "[{\"epoch\": 1, \"train_loss\": \"x\"}]", "'trainer.history[0].train_loss' must be a number" },
    };

    [Theory]
    [MemberData(nameof(Edits))]
    public async Task BadRecordedValuesAreOneLineErrorsNamingTheField(string field, string json, string message)
    {
        string good = P("good");
        var (code0, _, err0) = ResumeTests.Run("train", "xor", "--epochs", "1", "--optimizer", "sgd", "--momentum", "0.5", "--threads", "1", "--save", good, "--quiet");
        Assert.True(code0 == 0, err0);
        var c = Checkpoint.Load(good);
        var value = JsonNode.Parse(json);
        switch (field)
        {
            case "epoch": c.Epoch = int.MaxValue; break;
            case "loader.epoch":
                c.Components[CheckpointContent.LoaderKey].Meta["epoch"] = value;
                break;
            case "optim.lr": ((JsonObject)c.Components[CheckpointContent.OptimizerKey].Meta["param_groups"]![0]!)["lr"] = value; break;
            case "optim.momentum": ((JsonObject)c.Components[CheckpointContent.OptimizerKey].Meta["hyperparameters"]!)["momentum"] = value; break;
            default:
                var (obj, key) = field.Split('.') switch
                {
                    ["options", var k] => ((JsonObject)c.Extra["options"]!, k),
                    ["trainer", var k] => ((JsonObject)c.Extra["trainer"]!, k),
                    ["loader", var k] => (c.Components[CheckpointContent.LoaderKey].Meta, k),
                    _ => throw new ArgumentException(field),
                };
                obj[key] = value;
                break;
        }
        string bad = P("bad");
        if (field == "epoch")
        {
            // Checkpoint.Save writes what it is given; the reader must refuse it.
            var ms = new MemoryStream();
            Checkpoint.Write(ms, c);
            File.WriteAllBytes(bad, ms.ToArray());
        }
        else Checkpoint.Save(bad, c);

        // On a worker with a deadline: before the fix a loader epoch of 2^31-1 overflowed and never ended.
        var run = Task.Run(() => ResumeTests.Run("train", "--resume", bad, "--epochs", "2", "--quiet"));
        var (code, _, err) = await run.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(2, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains(message, err);
        Assert.Contains(bad, err);
        Assert.DoesNotContain("cannot be converted", err);
        Assert.DoesNotContain("Actual value", err);
        Assert.DoesNotContain("\\n", err);
    }
}
