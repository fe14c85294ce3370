using System.Text.Json.Nodes;
using Backprop.Cli;

namespace Backprop.Tests;

[Collection("Threads")]
public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void TrainJsonReportsTheRequiredFields()
    {
        var (code, stdout, _) = Run("train", "--epochs", "2", "--json", "--quiet");
        Assert.Equal(0, code);
        var json = JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!.AsObject();
        foreach (var k in new[] { "dataset", "model", "epochs", "train_loss", "test_loss", "test_accuracy", "seconds", "samples_per_second" })
            Assert.True(json.ContainsKey(k), $"missing {k}");
        Assert.Equal("digits", (string)json["dataset"]!);
        Assert.Equal("mlp:64-64-10", (string)json["model"]!);
        double acc = (double)json["test_accuracy"]!;
        Assert.InRange(acc, 0.5, 1.0);
        Assert.True((double)json["samples_per_second"]! > 0);
        Assert.Equal(2, json["history"]!.AsArray().Count);
    }

    [Fact]
    public void TheDefaultJobLearnsTheEmbeddedDigits()
    {
        var (code, stdout, _) = Run("train", "--json", "--quiet", "--min-accuracy", "0.95");
        Assert.Equal(0, code);
        var json = JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!;
        Assert.True((double)json["test_accuracy"]! >= 0.95);
    }

    [Fact]
    public void SameSeedSameNumbers()
    {
        var a = JsonNode.Parse(Run("train", "xor", "--epochs", "3", "--json", "--quiet", "--threads", "1").Out.TrimEnd().Split('\n')[^1])!;
        var b = JsonNode.Parse(Run("train", "xor", "--epochs", "3", "--json", "--quiet", "--threads", "1").Out.TrimEnd().Split('\n')[^1])!;
        Assert.Equal((double)a["train_loss"]!, (double)b["train_loss"]!);
        var c = JsonNode.Parse(Run("train", "xor", "--epochs", "3", "--json", "--quiet", "--seed", "2", "--threads", "1").Out.TrimEnd().Split('\n')[^1])!;
        Assert.NotEqual((double)a["train_loss"]!, (double)c["train_loss"]!);
    }

    [Fact]
    public void HumanOutputShowsEpochsAndHowToTrainMnist()
    {
        var (code, stdout, _) = Run("train", "--epochs", "1");
        Assert.Equal(0, code);
        Assert.Contains("epoch   1/1", stdout);
        Assert.Contains("test accuracy", stdout);
        Assert.Contains("backprop train mnist", stdout);
    }

    [Theory]
    [InlineData("unknown dataset 'nope'", "train", "nope")]
    [InlineData("option --lr expects a number, got 'abc'", "train", "--lr", "abc")]
    [InlineData("option --epochs must be between 1 and", "train", "--epochs", "0")]
    [InlineData("option --batch-size needs a value", "train", "--batch-size")]
    [InlineData("does not accept option --bogus", "train", "--bogus", "1")]
    [InlineData("the input size 10 does not match the 64 features of digits", "train", "--model", "mlp:10-10")]
    [InlineData("the output size 3 does not match the 10 classes", "train", "--model", "mlp:64-3")]
    [InlineData("invalid --model 'cnn:5'", "train", "--model", "cnn:5")]
    [InlineData("unknown activation 'swish'", "train", "--activation", "swish")]
    [InlineData("unknown optimizer 'lbfgs'", "train", "--optimizer", "lbfgs")]
    [InlineData("folder '/no/such/folder' does not exist", "train", "mnist", "--data", "/no/such/folder")]
    [InlineData("unknown command 'fly'", "fly")]
    [InlineData("option --seed is given more than once", "train", "--seed", "1", "--seed", "2")]
    [InlineData("option --lr expects a number, got 'a\\nb'", "train", "--lr", "a\nb")]   // still one line
    public void BadArgumentsGiveOneLineAndExitCode2(string message, params string[] args)
    {
        var (code, _, err) = Run(args);
        TestUtil.OneLineError(code, err, message);
    }

    [Fact]
    public void CorruptDataFileIsAOneLineError()
    {
        var dir = Directory.CreateTempSubdirectory("bp-cli").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(dir, "train-images-idx3-ubyte"), [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3]);
            File.WriteAllBytes(Path.Combine(dir, "train-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 2, 1, 2]);
            var (code, _, err) = Run("train", "mnist", "--data", dir);
            Assert.Equal(2, code);
            Assert.Contains("train-images-idx3-ubyte", err);
            Assert.Contains("truncated", err);
            Assert.Single(err.TrimEnd().Split('\n'));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void MinAccuracyFailsWithExitCode3()
    {
        var (code, _, err) = Run("train", "--epochs", "1", "--quiet", "--limit", "50", "--min-accuracy", "0.999");
        Assert.Equal(3, code);
        Assert.Contains("below the required", err);
    }

    [Fact]
    public void HelpAndUsage()
    {
        Assert.Equal(0, Run("--help").Code);
        Assert.Equal(0, Run("train", "--help").Code);
        Assert.Contains("--batch-size", Run("train", "--help").Out);
        Assert.Equal(2, Run().Code);
    }
}

[Collection("Threads")]
public class BenchCommandTests
{
    private static JsonNode RunJson(params string[] args)
    {
        var o = new StringWriter();
        Assert.Equal(0, Cli.Cli.Run(args, o, TextWriter.Null));
        return JsonNode.Parse(o.ToString().TrimEnd().Split('\n')[^1])!;
    }

    [Fact]
    public void GemmPeakAndModelReportJson()
    {
        var g = RunJson("bench", "gemm", "--size", "64", "--repeats", "3", "--json");
        Assert.True((double)g["gflops"]! > 0);
        Assert.Equal(64, (int)g["size"]!);
        var p = RunJson("bench", "peak", "--threads", "1", "--json");
        Assert.True((double)p["gflops"]! > 0);
        var m = RunJson("bench", "model", "mlp-small", "--steps", "20", "--warmup-seconds", "0", "--json");
        Assert.True((double)m["samples_per_second"]! > 0);
        Assert.Equal("mlp-small", (string)m["model"]!);
    }

    [Fact]
    public void BenchOutputIsReadableTextAndUnescapedJson()
    {
        var json = new StringWriter();
        Assert.Equal(0, Cli.Cli.Run(["bench", "gemm", "--size", "8", "--repeats", "1", "--json"], json, TextWriter.Null));
        Assert.Contains("m·n·k", json.ToString());      // not \u00B7
        Assert.DoesNotContain("\\u", json.ToString());
        var text = new StringWriter();
        Assert.Equal(0, Cli.Cli.Run(["bench", "gemm", "--size", "8", "--repeats", "1"], text, TextWriter.Null));
        var kernel = text.ToString().Split('\n').Single(l => l.StartsWith("kernel", StringComparison.Ordinal));
        Assert.Contains("micro-kernel", kernel);
        Assert.DoesNotContain("\"", kernel);           // a string value prints without JSON quotes
    }

    [Fact]
    public void BadBenchArguments()
    {
        var e = new StringWriter();
        Assert.Equal(2, Cli.Cli.Run(["bench", "model", "gpt-9"], TextWriter.Null, e));
        Assert.Contains("unknown benchmark model 'gpt-9'", e.ToString());
        e = new StringWriter();
        Assert.Equal(2, Cli.Cli.Run(["bench", "gemm", "--size", "0"], TextWriter.Null, e));
        Assert.Contains("--size must be between 1", e.ToString());
    }
}
