using System.Text.Json.Nodes;

namespace Backprop.Tests;

[Collection("Threads")]
public sealed class TextCliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"textcli-{Guid.NewGuid():N}");
    private readonly string _names;

    public TextCliTests()
    {
        Directory.CreateDirectory(_dir);
        _names = Path.Combine(_dir, "names.txt");
        var g = new Generator(11);
        string[] stems = ["an", "em", "ol", "is", "ma", "li", "ra", "el"];
        File.WriteAllLines(_names, Enumerable.Range(0, 300).Select(_ => stems[g.NextInt(8)] + stems[g.NextInt(8)] + (g.NextInt(2) == 0 ? "a" : "")));
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static JsonNode Last(string stdout) => JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!;

    [Fact]
    public void NamesTrainingLearnsReportsJsonAndResumesWithTheTokenizer()
    {
        string ckpt = Path.Combine(_dir, "n.safetensors");
        var (code, stdout, err) = Run("train", "text", "--model", "nlm", "--data", _names, "--names", "--steps", "150", "--eval-every", "75",
            "--context", "3", "--width", "32", "--embedding", "8", "--threads", "1", "--json", "--quiet", "--save", ckpt);
        Assert.True(code == 0, err);
        var j = Last(stdout);
        double val = (double)j["val_loss"]!;
        Assert.True(val < Math.Log(10) - 0.4, $"validation loss {val} did not fall well below uniform over the 10 tokens");
        Assert.True((double)j["tokens_per_second"]! > 0);
        Assert.Equal(150, (int)j["steps"]!);
        Assert.Equal(2, j["history"]!.AsArray().Count);
        Assert.Equal(5, j["samples"]!.AsArray().Count);
        Assert.All(j["samples"]!.AsArray(), s => Assert.Matches("^[a-z]*$", (string)s!));

        // Resuming to 200 steps in total continues from step 150 with the recorded tokenizer and options.
        var (rc, rout, rerr) = Run("train", "text", "--resume", ckpt, "--steps", "200", "--json", "--quiet");
        Assert.True(rc == 0, rerr);
        var r = Last(rout);
        Assert.Equal(200, (int)r["steps"]!);
        Assert.Equal(50, (int)r["steps_this_run"]!);
        Assert.Equal(10, (int)r["vocab_size"]!);

        // Generation: seeded, names stop at the boundary, the prompt starts each one.
        var (gc, gout, gerr) = Run("generate", "--checkpoint", ckpt, "--prompt", "em", "--samples", "4", "--seed", "3", "--json");
        Assert.True(gc == 0, gerr);
        var g = Last(gout);
        Assert.Equal(4, g["samples"]!.AsArray().Count);
        Assert.All(g["samples"]!.AsArray(), s => Assert.StartsWith("em", (string)s!));
        Assert.Equal(g["samples"]!.ToJsonString(), Last(Run("generate", "--checkpoint", ckpt, "--prompt", "em", "--samples", "4", "--seed", "3", "--json").Out)["samples"]!.ToJsonString());
        var greedy = Run("generate", "--checkpoint", ckpt, "--samples", "2", "--temperature", "0");
        var lines = greedy.Out.TrimEnd().Split('\n');
        Assert.Equal(lines[0], lines[1]);
    }

    [Fact]
    public void StreamTrainingWithBpeSavesTheTokenizer()
    {
        string text = Path.Combine(_dir, "t.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("the cat sat on the mat; the dog sat on the log.\n", 60)));
        string ckpt = Path.Combine(_dir, "s.safetensors");
        var (code, stdout, err) = Run("train", "text", "--data", text, "--tokenizer", "bpe:300", "--steps", "40", "--context", "4",
            "--width", "32", "--threads", "1", "--json", "--quiet", "--save", ckpt);
        Assert.True(code == 0, err);
        Assert.InRange((int)Last(stdout)["vocab_size"]!, 260, 300);   // the repetitive text runs out of pairs to merge before 300
        var (gc, gout, gerr) = Run("generate", "--checkpoint", ckpt, "--prompt", "the cat", "--tokens", "10", "--top-k", "3", "--top-p", "0.9");
        Assert.True(gc == 0, gerr);
        Assert.StartsWith("the cat", gout);
    }

    [Fact]
    public void WordTokenizerTakesItsVocabularyFromTheTrainingPartWithAMinimumCount()
    {
        string text = Path.Combine(_dir, "w.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("the cat sat on the mat and the dog sat on the log\n", 40)) + "zebra zebra zebra");
        var (code, stdout, err) = Run("train", "text", "--data", text, "--tokenizer", "word", "--min-count", "50", "--steps", "5", "--context", "2",
            "--width", "8", "--threads", "1", "--json", "--quiet");
        Assert.True(code == 0, err);
        // Seen at least 50 times in the training part: the (80 times), sat, on (80), <unk>; "zebra" is only in the validation part.
        Assert.Equal(4, (int)Last(stdout)["vocab_size"]!);
    }

    [Theory]
    [InlineData("lstm")]
    [InlineData("gru")]
    [InlineData("rnn")]
    [InlineData("gpt")]
    public void EverySequenceModelTrainsOnNamesAndLowersTheLoss(string model)
    {
        // A few steps of each model the factory builds, small: the loss after them is below ln(27) = 3.30
        // (a uniform guess over the 26 letters and the boundary), and the JSON carries val_loss.
        var (code, stdout, err) = Run("train", "text", "--model", model, "--data", _names, "--names", "--steps", "60",
            "--width", "32", "--embedding", "16", "--layers", "1", "--heads", "2", "--context", "16", "--eval-every", "60", "--threads", "1", "--json", "--quiet");
        Assert.True(code == 0, err);
        double val = (double)Last(stdout)["val_loss"]!;
        Assert.True(val < 3.2, $"{model}: validation loss {val} after 60 steps");
    }

    [Fact]
    public void MistakesAreOneLineErrors()
    {
        TestUtil.OneLineError(Run("train", "text", "--data", _names, "--tokenizer", "bpe:100").Code, Run("train", "text", "--data", _names, "--tokenizer", "bpe:100").Err, "bpe needs a vocabulary size above 256");
        var heads = Run("train", "text", "--model", "gpt", "--data", _names, "--names", "--steps", "1", "--width", "30", "--heads", "4");
        TestUtil.OneLineError(heads.Code, heads.Err, "the width 30 must be a positive multiple of the number of heads 4");
        var bad = Run("train", "text", "--model", "transformer");
        TestUtil.OneLineError(bad.Code, bad.Err, "unknown model 'transformer'");
        var missing = Run("train", "text", "--data", Path.Combine(_dir, "nope.txt"));
        TestUtil.OneLineError(missing.Code, missing.Err, "--data: text file not found");
        string bin = Path.Combine(_dir, "bin.txt");
        File.WriteAllBytes(bin, [(byte)'a', 0xC3, (byte)'b']);
        var nonUtf8 = Run("train", "text", "--data", bin);
        TestUtil.OneLineError(nonUtf8.Code, nonUtf8.Err, "bin.txt: invalid UTF-8 (byte 0xC3) at byte 1");
        var noCkpt = Run("generate", "--prompt", "x");
        TestUtil.OneLineError(noCkpt.Code, noCkpt.Err, "generate needs --checkpoint FILE");
        var topP = Run("generate", "--checkpoint", "x.safetensors", "--top-p", "0");
        TestUtil.OneLineError(topP.Code, topP.Err, "top-p must be in (0, 1]");
        var notFound = Run("generate", "--checkpoint", Path.Combine(_dir, "none.safetensors"));
        TestUtil.OneLineError(notFound.Code, notFound.Err, "--checkpoint: checkpoint not found");
        var steps = Run("train", "text", "--steps", "0");
        TestUtil.OneLineError(steps.Code, steps.Err, "option --steps must be between 1");
    }
}

/// <summary>The sequence path of the text trainer (what rnn, lstm, gru and gpt use), with a bigram model standing in.</summary>
public sealed class TextTrainerSequenceTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"texttrainer-{Guid.NewGuid():N}");

    public TextTrainerSequenceTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>logits[b, t] = row tokens[b, t] of a table: a bigram model that counts its state calls.</summary>
    private sealed class Bigram(int vocab) : Backprop.Text.LanguageModel
    {
        private readonly Backprop.NN.Embedding _table = new(vocab, vocab, new Generator(1));
        public int Resets, Detaches;
        public override int VocabSize => vocab;
        public override Tensor Logits(Tensor tokens) => _table.Forward(tokens);
        public override void ResetState() => Resets++;
        public override void DetachState() => Detaches++;
    }

    private Cli.Text.TextTrainOptions Options(string data, bool lines, bool bptt, int steps) => new()
    {
        Model = "gru",
        Data = data,
        Lines = lines,
        Tokenizer = "char",
        Context = 5,
        Embedding = 4,
        Layers = 1,
        Width = 4,
        Heads = 1,
        Dropout = 0,
        Steps = steps,
        BatchSize = 4,
        Optimizer = "adam",
        Lr = 0.05,
        MinLrFraction = 1,
        WeightDecay = 0,
        Seed = 1,
        EvalEvery = 10,
        Bptt = bptt,
    };

    [Fact]
    public void NamesAsPaddedSequencesLearnTheBigrams()
    {
        string names = Path.Combine(_dir, "names.txt");
        File.WriteAllLines(names, Enumerable.Range(0, 50).Select(i => i % 2 == 0 ? "abc" : "cab"));
        Bigram? model = null;
        var t = new Cli.Text.TextTrainer(Options(names, lines: true, bptt: false, steps: 150), create: (o, v, b, g) => model = new Bigram(v));
        double before = t.Validate();
        for (int i = 0; i < 150; i++) t.TrainStep();
        double after = t.Validate();
        Assert.True(after < before - 0.5 && after < 0.6, $"validation loss {before} -> {after}");
        Assert.Equal(150, model!.Detaches);
        Assert.True(model.Resets >= 150);   // random batches: a fresh state every step
    }

    [Fact]
    public void BpttCarriesTheStateAcrossChunksAndResetsEachPass()
    {
        string text = Path.Combine(_dir, "t.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("abcd", 60)));
        Bigram? model = null;
        var t = new Cli.Text.TextTrainer(Options(text, lines: false, bptt: true, steps: 30), create: (o, v, b, g) => model = new Bigram(v));
        var streams = t.Data.Bptt!;
        Assert.Equal(10, streams.Count);   // 215 training tokens: 4 streams of 53, chunks of 5
        double before = t.Validate();
        int resetsBefore = model!.Resets;
        for (int i = 0; i < 25; i++) t.TrainStep();
        Assert.Equal(3, model.Resets - resetsBefore);   // passes start at steps 1, 11, 21
        Assert.Equal(25, model.Detaches);
        double after = t.Validate();
        Assert.True(after < before - 0.5, $"validation loss {before} -> {after}");
    }
}

[Collection("Threads")]
public sealed class TextCliDefaultsTests
{
    [Fact]
    public void WithoutDataItTrainsOnTinyShakespeareAndSaysSoAndMinutesBoundTheRun()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Cli.Cli.Run(["train", "text", "--minutes", "0", "--steps", "1000", "--context", "2", "--width", "4", "--embedding", "2", "--threads", "1", "--json"], o, e);
        bool found = Directory.GetParent(Environment.CurrentDirectory) is not null
            && Enumerable.Range(0, 12).Select(i => string.Concat(Enumerable.Repeat("../", i)) + "shared/data/tinyshakespeare/input.txt")
                .Concat(Enumerable.Range(0, 12).Select(i => Path.Combine(AppContext.BaseDirectory, string.Concat(Enumerable.Repeat("../", i)) + "shared/data/tinyshakespeare/input.txt")))
                .Any(File.Exists);
        if (!found)
        {
            TestUtil.OneLineError(code, e.ToString(), "no --data given and Tiny Shakespeare was not found");
            return;
        }
        Assert.True(code == 0, e.ToString());
        Assert.Contains("no --data given: training on Tiny Shakespeare", e.ToString());
        var j = System.Text.Json.Nodes.JsonNode.Parse(o.ToString().TrimEnd().Split('\n')[^1])!;
        Assert.Equal(0, (int)j["steps"]!);   // --minutes 0: no step fits
        Assert.Equal(65, (int)j["vocab_size"]!);
        Assert.NotNull(j["val_loss"]);
    }
}
