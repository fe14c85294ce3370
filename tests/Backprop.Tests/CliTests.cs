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
    [InlineData("digits: the training set has 64 features per sample; the model mlp:10-10 expects 10 (its input size)", "train", "--model", "mlp:10-10")]
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

    [Theory]
    [InlineData("--help", "train", "predict", "explain", "bench")]
    [InlineData("-h", "train", "predict", "explain", "bench")]
    [InlineData("train --help", "--batch-size", "--resume", "tangled-border")]
    [InlineData("train -h", "--epochs", "--detect-anomaly", "fashion-mnist")]
    [InlineData("explain --help", "numerical-vs-backprop")]
    [InlineData("explain -h", "chain-rule")]
    [InlineData("predict --help", "--checkpoint", "--input", "--dataset")]
    [InlineData("predict -h", "--checkpoint")]
    [InlineData("bench --help", "gemm", "peak", "model")]
    [InlineData("bench gemm --help", "--size", "--repeats", "--threads")]
    [InlineData("bench peak -h", "--threads", "--json")]
    [InlineData("bench model --help", "--steps", "--warmup-seconds", "window-lm")]
    [InlineData("bench conv --help", "--batch", "--seconds", "--threads")]
    [InlineData("help train", "--batch-size")]
    [InlineData("train xor --bogus --help", "--batch-size")]   // help wins over a mistake
    public void EveryCommandHasHelp(string args, params string[] mentions)
    {
        var (code, stdout, err) = Run(args.Split(' '));
        Assert.Equal(0, code);
        Assert.Equal("", err);
        Assert.Contains("Usage:", stdout);
        Assert.Contains("\n  backprop ", stdout);          // the usage line names the command, not the assembly
        Assert.DoesNotContain("  Backprop.Cli ", stdout);
        foreach (var m in mentions) Assert.Contains(m, stdout);
    }

    [Theory]
    [InlineData("(did you mean --epochs?)", "train", "--epoch", "3")]
    [InlineData("(did you mean --batch-size?)", "train", "--batchsize", "3")]
    [InlineData("(did you mean --repeats?)", "bench", "gemm", "--repaets", "3")]
    [InlineData("(did you mean --checkpoint?)", "predict", "--chekpoint", "a.safetensors")]
    [InlineData("(did you mean --version?)", "--versoin")]
    [InlineData("(did you mean 'train'?)", "trian")]
    [InlineData("(did you mean 'gemm'?)", "bench", "gem")]
    [InlineData("(did you mean 'mnist'?)", "train", "mnsit")]
    [InlineData("(did you mean 'relu'?)", "train", "--activation", "rleu")]
    [InlineData("(did you mean 'adam'?)", "train", "--optimizer", "adma")]
    [InlineData("(did you mean 'cities'?)", "explain", "citys")]
    public void MisspellingsGetASuggestion(string suggestion, params string[] args)
    {
        var (code, _, err) = Run(args);
        TestUtil.OneLineError(code, err, suggestion);
    }

    [Theory]
    [InlineData("does not accept option --bogus; see 'backprop train --help'", "train", "--bogus", "1")]
    [InlineData("'backprop' does not accept option -x; see", "-x")]
    [InlineData("option --json takes no value", "train", "--json=1")]
    [InlineData("option --json is given more than once", "train", "--json", "--json")]
    [InlineData("option --lr needs a value", "train", "--lr", "--json")]
    [InlineData("option --seed expects a non-negative integer, got '-1'", "train", "--seed", "-1")]
    [InlineData("option --momentum must be between 0 and 1, got 2", "train", "--momentum", "2")]
    [InlineData("unknown loss 'hinge'; expected one of: cross-entropy, mse", "train", "--loss", "hinge")]
    [InlineData("'train' takes at most one dataset, got: xor digits", "train", "xor", "digits")]
    [InlineData("unknown benchmark 'fly'; expected gemm, peak, model", "bench", "fly")]
    [InlineData("'bench gemm' takes no positional arguments, got 'x'", "bench", "gemm", "x")]
    [InlineData("'bench gemm' does not accept option --steps", "bench", "gemm", "--steps", "3")]
    [InlineData("option --threads must be between 1 and 1024, got 0", "bench", "--threads", "0", "peak")]
    [InlineData("'predict' needs --checkpoint FILE", "predict", "--dataset", "digits")]
    [InlineData("unknown command '@args.rsp'", "@args.rsp")]   // no response files
    [InlineData("option --version cannot be combined with other arguments", "--version", "train")]
    [InlineData("unknown command '[bogus]'", "[bogus]", "train")]   // [suggest] is the only directive
    public void MoreBadArgumentsGiveOneLineAndExitCode2(string message, params string[] args)
    {
        var (code, _, err) = Run(args);
        TestUtil.OneLineError(code, err, message);
    }

    [Fact]
    public void DataThatIsAFileSaysSo()
    {
        var file = Path.GetTempFileName();
        try
        {
            var (code, _, err) = Run("train", "mnist", "--data", file);
            TestUtil.OneLineError(code, err, $"--data: '{file}' is a file, not a folder");
            Assert.DoesNotContain("does not exist", err);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void VersionPrintsTheVersion()
    {
        var (code, stdout, err) = Run("--version");
        Assert.Equal(0, code);
        Assert.Equal("", err);
        var version = typeof(Cli.Cli).Assembly.GetName().Version!;
        Assert.StartsWith($"{version.Major}.{version.Minor}.{version.Build}", stdout.Trim());
        Assert.Single(stdout.TrimEnd().Split('\n'));
    }

    [Fact]
    public void QuietStillPrintsTheFinalLine()
    {
        var (code, stdout, err) = Run("train", "xor", "--epochs", "1", "--quiet", "--threads", "1");
        Assert.Equal(0, code);
        Assert.Equal("", err);
        var line = Assert.Single(stdout.TrimEnd().Split('\n'));
        Assert.Matches(@"^done in [0-9.]+ s: test accuracy [0-9.]+%$", line);
        // With --json as well, stdout is only the JSON object, and stderr stays empty.
        (code, stdout, err) = Run("train", "xor", "--epochs", "1", "--quiet", "--threads", "1", "--json");
        Assert.Equal(0, code);
        Assert.Equal("", err);
        Assert.StartsWith("{", Assert.Single(stdout.TrimEnd().Split('\n')));
    }

    [Fact]
    public void TabCompletionThroughTheSuggestDirective()
    {
        var (code, stdout, _) = Run("[suggest:20]", "backprop train --epo");
        Assert.Equal(0, code);
        Assert.Equal("--epochs", stdout.Trim());
        (code, stdout, _) = Run("[suggest:28]", "backprop train --activation ");
        Assert.Equal(0, code);
        Assert.Contains("leaky-relu", stdout.Split('\n').Select(l => l.Trim()));
        (code, stdout, _) = Run("[suggest:11]", "backprop be");
        Assert.Equal("bench", stdout.Trim());
    }
}

[Collection("Threads")]
public sealed class PredictCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-predict").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string P(string name) => Path.Combine(_dir, name);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>A digits model trained for two epochs, and its JSON result.</summary>
    private JsonNode TrainDigits()
    {
        var (code, stdout, _) = Run("train", "--epochs", "2", "--threads", "1", "--quiet", "--json", "--save", P("digits.safetensors"));
        Assert.Equal(0, code);
        return JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!;
    }

    [Fact]
    public void AccuracyOnTheDatasetMatchesTraining()
    {
        var trained = TrainDigits();
        var (code, stdout, err) = Run("predict", "--checkpoint", P("digits.safetensors"), "--dataset", "digits", "--json");
        Assert.Equal(0, code);
        Assert.Equal("", err);
        var json = JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!;
        Assert.Equal((double)trained["test_accuracy"]!, (double)json["accuracy"]!);
        Assert.Equal(1797, (int)json["samples"]!);
        Assert.Equal("digits", (string)json["dataset"]!);
        (code, stdout, _) = Run("predict", "--checkpoint", P("digits.safetensors"), "--dataset", "digits");
        Assert.Equal(0, code);
        Assert.Contains($"test accuracy {100 * (double)trained["test_accuracy"]!:F2}%", stdout);
    }

    [Fact]
    public void StandardizedDatasetsGetTheTrainingStatistics()
    {
        // cities is standardized with the training split's statistics: predict must apply them too.
        var (code, stdout, _) = Run("train", "cities", "--epochs", "3", "--threads", "1", "--quiet", "--json", "--save", P("cities.safetensors"));
        Assert.Equal(0, code);
        double trained = (double)JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!["test_accuracy"]!;
        (code, stdout, _) = Run("predict", "--checkpoint", P("cities.safetensors"), "--dataset", "cities", "--json");
        Assert.Equal(0, code);
        Assert.Equal(trained, (double)JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!["accuracy"]!);
    }

    [Fact]
    public void OnePredictionPerCsvRow()
    {
        TrainDigits();
        // The first five test digits, as CSV rows of 64 features; their predictions must be what the dataset run predicts.
        var test = Backprop.Data.Digits.Load(Backprop.Data.Split.Test);
        var x = test.Inputs.ToArray();
        var lines = Enumerable.Range(0, 5).Select(r => string.Join(",", x.Skip(r * 64).Take(64).Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))));
        File.WriteAllLines(P("rows.csv"), [.. lines, ""]);   // a blank last line is ignored
        var (code, stdout, err) = Run("predict", "--checkpoint", P("digits.safetensors"), "--input", P("rows.csv"));
        Assert.Equal(0, code);
        Assert.Equal("", err);
        var predicted = stdout.TrimEnd().Split('\n').Select(l => int.Parse(l.Trim(), System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(5, predicted.Length);
        var labels = test.Targets.ToLongArray().Take(5).Select(l => (int)l).ToArray();
        Assert.True(predicted.Zip(labels).Count(p => p.First == p.Second) >= 4, $"predicted {string.Join(",", predicted)} for labels {string.Join(",", labels)}");

        (code, stdout, _) = Run("predict", "--checkpoint", P("digits.safetensors"), "--input", P("rows.csv"), "--json");
        Assert.Equal(0, code);
        var json = JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!;
        Assert.Equal(5, (int)json["rows"]!);
        Assert.Equal(predicted, json["predictions"]!.AsArray().Select(p => (int)p!).ToArray());
    }

    [Fact]
    public void WrongFeatureCountNamesTheFileTheLineAndBothCounts()
    {
        TrainDigits();
        File.WriteAllLines(P("bad.csv"), [string.Join(",", Enumerable.Repeat("0.5", 64)), "", string.Join(",", Enumerable.Repeat("0.5", 63))]);
        var (code, stdout, err) = Run("predict", "--checkpoint", P("digits.safetensors"), "--input", P("bad.csv"));
        TestUtil.OneLineError(code, err, $"--input {P("bad.csv")}, line 3: 63 features, but the model mlp:64-64-10 from {P("digits.safetensors")} takes 64.");
        Assert.Equal("", stdout);
        File.WriteAllText(P("text.csv"), string.Join(",", Enumerable.Repeat("0.5", 63)) + ",x\n");
        (code, _, err) = Run("predict", "--checkpoint", P("digits.safetensors"), "--input", P("text.csv"));
        TestUtil.OneLineError(code, err, "line 1, field 64: 'x' is not a number");
    }

    [Fact]
    public void IdxImagesAreRows()
    {
        TrainDigits();
        // Three 8x8 images of unsigned bytes: 64 features each, scaled by 1/255.
        var pixels = new byte[3 * 64];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 7 % 256);
        Backprop.Data.Idx.Write(P("images.idx"), Backprop.Data.IdxType.UInt8, [3, 8, 8], pixels);
        var (code, stdout, _) = Run("predict", "--checkpoint", P("digits.safetensors"), "--input", P("images.idx"), "--json");
        Assert.Equal(0, code);
        Assert.Equal(3, JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!["predictions"]!.AsArray().Count);
        Backprop.Data.Idx.Write(P("wide.idx"), Backprop.Data.IdxType.UInt8, [1, 8, 9], new byte[72]);
        var (code2, _, err) = Run("predict", "--checkpoint", P("digits.safetensors"), "--input", P("wide.idx"));
        TestUtil.OneLineError(code2, err, "each row holds 72 features (8x9), but the model mlp:64-64-10");
    }

    [Theory]
    [InlineData("--input", "nope.csv", "--input: file '")]
    [InlineData("--dataset", "xor", "--dataset xor: 2 features, but the model mlp:64-64-10")]
    [InlineData("--dataset", "nope", "unknown dataset 'nope'")]
    public void BadPredictArguments(string option, string value, string message)
    {
        TrainDigits();
        var (code, _, err) = Run("predict", "--checkpoint", P("digits.safetensors"), option, option == "--input" ? P(value) : value);
        TestUtil.OneLineError(code, err, message);
        (code, _, err) = Run("predict", "--checkpoint", P("missing.safetensors"), "--dataset", "digits");
        TestUtil.OneLineError(code, err, "--checkpoint: ");
        (code, _, err) = Run("predict", "--checkpoint", P("digits.safetensors"), "--dataset", "digits", "--input", P("x.csv"));
        TestUtil.OneLineError(code, err, "'predict' takes --input or --dataset, not both.");
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

public class SummaryCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Backprop.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void SummaryShowsEachLayerWithItsOutputShapeAndParameters()
    {
        var (code, output, err) = Run("summary", "--model", "mlp:784-16-16-10", "--batch-size", "32");
        Assert.Equal(0, code);
        Assert.Equal("", err);
        var lines = output.Split('\n');
        Assert.Contains(lines, l => l.Contains("Linear") && l.Contains("[32, 16]") && l.TrimEnd().EndsWith("12,560"));
        Assert.Contains(lines, l => l.Contains("Sigmoid") && l.Contains("[32, 16]"));
        Assert.Contains(lines, l => l.Contains("Linear") && l.Contains("[32, 10]") && l.TrimEnd().EndsWith("170"));
        Assert.Contains("Total params: 13,002", output);
        var relu = Run("summary", "--model", "mlp:4-3-2", "--activation", "relu").Out;
        Assert.Contains("Relu", relu);
        Assert.Contains("Total params: 23", relu);
    }

    [Fact]
    public void SummaryErrorsAreOneLine()
    {
        var (code, _, err) = Run("summary", "--model", "mlp:784-x");
        TestUtil.OneLineError(code, err, "layer size 'x' is not a positive integer");
        var (code2, _, err2) = Run("summary");
        TestUtil.OneLineError(code2, err2, "summary needs --model");
        var (code3, help, _) = Run("summary", "-h");
        Assert.Equal(0, code3);
        Assert.Contains("--model", help);
    }
}
