using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Backprop.Data;
using Backprop.IO;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>
/// The code blocks of the README and the guides that are marked
/// <c>&lt;!-- snippet: tested by DocSnippetTests.Name --&gt;</c> run here, line for line, after the
/// set-up they assume; <see cref="EveryMarkedSnippetIsRunHereLineForLine"/> fails when a marked block
/// has a line (comments and spacing aside) that this file does not contain, so the docs cannot drift.
/// </summary>
public sealed partial class DocSnippetTests
{
    /// <summary>Runs <paramref name="body"/>, then deletes the files the snippet wrote to the working directory.</summary>
    private static void WithFiles(string[] files, Action body)
    {
        try { body(); }
        finally
        {
            foreach (var f in files)
                if (File.Exists(f)) File.Delete(f);
        }
    }

    [Fact]
    public void ReadmeSavingAndLoading() => WithFiles(["mnist.safetensors", "run.ckpt"], () =>
    {
        var train = new TensorDataset(Tensor.Rand([100, 784], new Generator(1)), Tensor.FromArray(Enumerable.Range(0, 100).Select(i => (long)(i % 10)).ToArray()));
        var model = new Sequential(
            new Linear(784, 16), new Sigmoid(),
            new Linear(16, 16), new Sigmoid(),
            new Linear(16, 10));
        var opt = new Sgd(model.Parameters(), lr: 0.3);
        var loader = new DataLoader(train, batchSize: 10, shuffle: true, seed: 1);
        foreach (var (x, y) in loader)
        {
            var loss = Loss.CrossEntropy(model.Forward(x), y);
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
        }

        model.Save("mnist.safetensors");
        var trained = new Sequential(
            new Linear(784, 16), new Sigmoid(),
            new Linear(16, 16), new Sigmoid(),
            new Linear(16, 10)).Load("mnist.safetensors");

        Checkpoint.Save("run.ckpt", model, opt, loader: loader);
        Checkpoint.Load("run.ckpt", model, opt, loader: loader);

        var probe = Tensor.Rand([3, 784], new Generator(1));
        using (Tensor.NoGrad()) Assert.Equal(model.Forward(probe).ToArray(), trained.Forward(probe).ToArray());
        Assert.Equal(1, loader.Epoch);
    });

    [Fact]
    public void SavingGuideWeights() => WithFiles(["model.safetensors"], () =>
    {
        var model = new Sequential(new Linear(4, 8, generator: new Generator(1)), new Relu(), new Linear(8, 2, generator: new Generator(2)));
        var backbone = new Sequential(new Linear(4, 8));

        model.Save("model.safetensors");
        model.Load("model.safetensors");
        var copy = new Sequential(new Linear(4, 8), new Relu(), new Linear(8, 2)).Load("model.safetensors");
        backbone.Load("model.safetensors", strict: false);

        var x = Tensor.Randn([2, 4], new Generator(3));
        using (Tensor.NoGrad()) Assert.Equal(model.Forward(x).ToArray(), copy.Forward(x).ToArray());
        Assert.Equal(model.StateDict()["0.weight"].ToArray(), backbone.StateDict()["0.weight"].ToArray());
    });

    [Fact]
    public void SavingGuideCheckpoint() => WithFiles(["run.ckpt"], () =>
    {
        var model = new Sequential(new Linear(2, 4), new Tanh(), new Linear(4, 2));
        var opt = new Adam(model.Parameters(), lr: 0.01);
        var sched = new StepLr(opt, stepSize: 1);
        var loader = new DataLoader(Xor.Generate(samples: 40, seed: 1), batchSize: 8, shuffle: true, seed: 1);
        long steps = 0;
        foreach (var (x, y) in loader)
        {
            var loss = Loss.CrossEntropy(model.Forward(x), y);
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
            if (++steps == 3) break;
        }

        Checkpoint.Save("run.ckpt", model, opt, sched, loader, step: steps);
        steps = 0;
        loader.Epoch = 0;
        var state = Checkpoint.Load("run.ckpt", model, opt, sched, loader);
        steps = state.Step;

        Assert.Equal(3, steps);
        Assert.Equal((0, 3), (loader.Epoch, loader.BatchIndex));
        Assert.Equal(0, state.Epoch);
    });

    [Fact]
    public void DataGuideWrappers()
    {
        var all = Digits.Load(Split.Train);
        var parts = Dataset.RandomSplit(all, [0.9, 0.1], seed: 1);
        var (train, valid) = (parts[0], parts[1]);
        var scaled = new TransformDataset(train, x => x * 2 - 1);
        var both = new ConcatDataset(train, new Subset(all, [0, 1, 2]));
        var loader = new DataLoader(scaled, batchSize: 32, shuffle: true, seed: 1, prefetch: true);

        Assert.Equal((3441, 382), (train.Count, valid.Count));
        Assert.Equal(train.Count + 3, both.Count);
        var (bx, by) = loader.First();
        Assert.Equal([32, 64], bx.Shape.ToArray());
        Assert.True(bx.Min().Item() >= -1 && bx.Max().Item() <= 1);
        Assert.Equal([32], by.Shape.ToArray());
    }

    [Fact]
    public void NnGuideLosses()
    {
        var pred = Tensor.FromArray([0.5, 2.0, -1.0], 3);
        var target = Tensor.FromArray([0.0, 2.5, 1.0], 3);
        var l1 = Loss.L1Loss(pred, target);                                 // mean |pred − target| = 1
        var smooth = Loss.SmoothL1Loss(pred, target, beta: 1.0);             // 0.5·d²/β below β, d − β/2 above
        var huber = Loss.HuberLoss(pred, target, delta: 2.0);                // 0.5·d² below δ, δ·(d − δ/2) above

        var logits = Tensor.FromArray(new double[,] { { 1.5, -0.3 }, { -2.0, 0.7 } });
        var labels = Tensor.FromArray(new double[,] { { 1, 0 }, { 0, 1 } });
        var bce = Loss.BinaryCrossEntropyWithLogits(logits, labels, posWeight: Tensor.FromArray([3.0, 1.0], 2));
        var logp = logits.LogSoftmax(1);
        var kl = Loss.KlDiv(logp, labels.Softmax(1), Reduction.BatchMean);   // KL(target ‖ model) per sample
        var nll = Loss.NllLoss(logp, Tensor.FromArray([0.0, 1.0], 2));       // float labels that are whole numbers

        Assert.Equal(1.0, l1.ItemDouble(), 12);
        Assert.Equal((0.125 + 0.125 + 1.5) / 3, smooth.ItemDouble(), 12);
        Assert.Equal((0.125 + 0.125 + 2) / 3, huber.ItemDouble(), 12);
        Assert.True(bce.ItemDouble() > 0 && kl.ItemDouble() > 0);
        Assert.Equal(Loss.CrossEntropy(logits, Tensor.FromArray([0L, 1L], 2)).ItemDouble(), nll.ItemDouble(), 12);
    }

    [Fact]
    public void NnGuideInit()
    {
        var g = new Generator(0);
        var w = new Parameter(Tensor.Zeros(64, 32));
        Init.Orthogonal_(w, gain: Math.Sqrt(2), generator: g);              // wᵀ·w = 2·I (columns orthogonal)
        var gram = w.Transpose(0, 1).MatMul(w);
        Init.Normal_(w, mean: 0, std: 0.02, generator: g);
        Init.Uniform_(w, a: -0.1, b: 0.1, generator: g);
        Init.Constant_(w, 0.5);
        Init.Ones_(w);
        Init.Zeros_(w);

        Assert.Equal(2.0, gram.ToDoubleArray()[0], 4);
        Assert.Equal(0.0, gram.ToDoubleArray()[1], 4);
        Assert.All(w.ToDoubleArray(), v => Assert.Equal(0, v));
    }

    [Fact]
    public void NnGuideSummary()
    {
        var model = new Sequential(new Linear(784, 16), new Sigmoid(), new Linear(16, 10));
        Console.WriteLine(model.Summary(1, 784));
        var summary = model.Summary(1, 784);
        long total = summary.TotalParams, trainable = summary.TrainableParams;

        Assert.Equal(12730, total);
        Assert.Equal(12730, trainable);
        Assert.Equal("""
            Layer    Type        Output shape  Params
            =========================================
            (model)  Sequential  [1, 10]           --
              0      Linear      [1, 16]       12,560
              1      Sigmoid     [1, 16]            0
              2      Linear      [1, 10]          170
            =========================================
            Input shape: [1, 784]
            Output shape: [1, 10]
            Total params: 12,730
            Trainable params: 12,730
            Non-trainable params: 0
            """ + "\n", summary.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void OptimizersGuideSchedules()
    {
        var model = new Sequential(new Linear(4, 2));
        var opt = new Sgd(model.Parameters(), lr: 0.1, momentum: 0.9);
        var plateau = new ReduceLrOnPlateau(opt, mode: PlateauMode.Min, factor: 0.5, patience: 2);
        foreach (var validLoss in new[] { 1.0, 0.8, 0.8, 0.8, 0.8 }) plateau.Step(validLoss);
        // three epochs without improvement: lr 0.1 → 0.05

        var steps = new MultiStepLr(new Sgd(model.Parameters(), lr: 0.1), milestones: [30, 80], gamma: 0.1);
        var oneCycle = new OneCycleLr(new Sgd(model.Parameters(), lr: 0.1), maxLr: 0.5, totalSteps: 1000);
        var warm = new LambdaLr(new Sgd(model.Parameters(), lr: 0.1), epoch => Math.Min(1.0, (epoch + 1) / 10.0));

        Assert.Equal(0.05, opt.ParamGroups[0].Lr, 12);
        Assert.Equal(0.1, steps.LastLr, 12);
        Assert.Equal(0.02, oneCycle.LastLr, 12);
        Assert.Equal(0.01, warm.LastLr, 12);
    }

    // ------------------------------------------------------------------ the docs match this file

    private static readonly string[] Documents = ["README.md", "docs/saving.md", "docs/data.md", "docs/nn.md", "docs/optimizers.md"];

    [GeneratedRegex(@"<!-- snippet: tested by DocSnippetTests\.(\w+) -->\s*```csharp\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex MarkedSnippet();

    /// <summary>A line without its comment and with its spacing collapsed ("" for a blank or comment-only line).</summary>
    private static string Normalize(string line)
    {
        int comment = line.IndexOf("//", StringComparison.Ordinal);
        if (comment >= 0) line = line[..comment];
        return string.Join(' ', line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void EveryMarkedSnippetIsRunHereLineForLine()
    {
        string source = File.ReadAllText(ThisFile());
        var testedLines = source.Split('\n').Select(Normalize).ToHashSet(StringComparer.Ordinal);
        var tests = typeof(DocSnippetTests).GetMethods().Where(m => m.GetCustomAttributes(typeof(FactAttribute), false).Length > 0).Select(m => m.Name).ToHashSet();
        int snippets = 0;
        foreach (var doc in Documents)
        {
            string text = File.ReadAllText(Path.Combine(DataTestFiles.RepoRoot, doc)).ReplaceLineEndings("\n");
            foreach (Match m in MarkedSnippet().Matches(text))
            {
                snippets++;
                Assert.True(tests.Contains(m.Groups[1].Value), $"{doc}: the snippet names DocSnippetTests.{m.Groups[1].Value}, which does not exist");
                foreach (var line in m.Groups[2].Value.Split('\n').Select(Normalize).Where(l => l.Length > 0))
                    Assert.True(testedLines.Contains(line), $"{doc}, snippet {m.Groups[1].Value}: the line `{line}` is not in DocSnippetTests.cs; update the test with the docs");
            }
        }
        Assert.Equal(8, snippets);
    }

    private static string ThisFile([CallerFilePath] string path = "") =>
        File.Exists(path) ? path : Path.Combine(DataTestFiles.RepoRoot, "tests", "Backprop.Tests", "DocSnippetTests.cs");
}
