using System.Text.Json.Nodes;
using Backprop.Plot;
using SkiaSharp;

namespace Backprop.Tests;

/// <summary>Backprop.Plot: the GIF writer read back by Skia's decoder, and the files of <c>train --plot</c>.</summary>
[Collection("Threads")]
public class PlotTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "backprop-plot-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    [Fact]
    public void GifFramesDecodeBackToTheSamePixels()
    {
        // Noise over 200 colours that the 5-bit table holds exactly: a 96x96 frame makes LZW fill its
        // 4096 codes and start again (clear codes), and the code width grow through 9 to 12 bits.
        var rng = new Random(7);
        var colours = Enumerable.Range(0, 200).Select(_ =>
        {
            byte C() => (byte)(rng.Next(32) * 255 / 31);
            return new SKColor(C(), C(), C());
        }).Distinct().ToArray();
        const int w = 96, h = 80;
        var frames = new List<SKBitmap>();
        for (int f = 0; f < 3; f++)
        {
            var bmp = new SKBitmap(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    bmp.SetPixel(x, y, f == 2 ? colours[(x / 8 + y / 8) % colours.Length] : colours[rng.Next(colours.Length)]);
            frames.Add(bmp);
        }
        var ms = new MemoryStream();
        using (var gif = new GifWriter(ms, w, h, delayMilliseconds: 100))
            foreach (var f in frames) gif.Add(f);
        ms.Position = 0;
        using var codec = SKCodec.Create(ms);
        Assert.NotNull(codec);
        Assert.Equal(SKEncodedImageFormat.Gif, codec.EncodedFormat);
        Assert.Equal(3, codec.FrameCount);
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul);
        for (int f = 0; f < 3; f++)
        {
            using var decoded = new SKBitmap(info);
            var result = codec.GetPixels(info, decoded.GetPixels(), new SKCodecOptions(f));
            Assert.Equal(SKCodecResult.Success, result);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    Assert.True(frames[f].GetPixel(x, y) == decoded.GetPixel(x, y), $"frame {f} pixel ({x}, {y}): {frames[f].GetPixel(x, y)} became {decoded.GetPixel(x, y)}");
        }
        foreach (var f in frames) f.Dispose();
    }

    [Fact]
    public void LzwOfAnEmptyFrameIsClearThenEnd()
    {
        // 9-bit codes 256 (clear) and 257 (end), least significant bit first: 0x00 0x03 0x02.
        Assert.Equal(new byte[] { 0x00, 0x03, 0x02 }, GifWriter.Lzw([], 8));
    }

    private static void AssertPng(string path)
    {
        Assert.True(File.Exists(path), $"{path} was not written");
        using var codec = SKCodec.Create(path);
        Assert.NotNull(codec);
        Assert.Equal(SKEncodedImageFormat.Png, codec.EncodedFormat);
        using var bmp = SKBitmap.Decode(path);
        Assert.True(bmp.Width >= 100 && bmp.Height >= 100, $"{path} is {bmp.Width}x{bmp.Height}");
        // Not blank: a chart has many colours.
        var seen = new HashSet<SKColor>();
        for (int y = 0; y < bmp.Height; y += 3)
            for (int x = 0; x < bmp.Width; x += 3) seen.Add(bmp.GetPixel(x, y));
        Assert.True(seen.Count > 8, $"{path} has only {seen.Count} colours");
    }

    [Fact]
    public void TrainPlotWritesTheChartsOfA2DRunAndTheAnimation()
    {
        var dir = TempDir();
        try
        {
            var (code, _, err) = Run("train", "xor", "--epochs", "2", "--limit", "300", "--plot", dir, "--animate", "--quiet", "--json");
            Assert.True(code == 0, err);
            foreach (var f in new[] { "loss.png", "accuracy.png", "gradient-flow.png", "confusion.png", "decision-regions.png" })
                AssertPng(Path.Combine(dir, f));
            foreach (var f in new[] { "loss.svg", "accuracy.svg", "gradient-flow.svg", "confusion.svg" })
                Assert.Contains("<svg", File.ReadAllText(Path.Combine(dir, f)));
            using var codec = SKCodec.Create(Path.Combine(dir, "decision-regions.gif"));
            Assert.Equal(2, codec.FrameCount);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void TrainPlotDrawsTheFirstConvLayersFiltersOfACnn()
    {
        var dir = TempDir();
        try
        {
            var (code, _, err) = Run("train", "digits", "--model", "cnn:1x8x8-c6-relu-m2-10", "--epochs", "1", "--limit", "200", "--plot", dir, "--quiet");
            Assert.True(code == 0, err);
            AssertPng(Path.Combine(dir, "first-layer-filters.png"));
            AssertPng(Path.Combine(dir, "misclassified.png"));
            Assert.False(File.Exists(Path.Combine(dir, "first-layer-weights.png")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void TrainPlotWritesWeightTilesAndMisclassifiedImagesForImageData()
    {
        var dir = TempDir();
        try
        {
            var (code, _, err) = Run("train", "digits", "--model", "mlp:64-16-10", "--epochs", "1", "--limit", "200", "--plot", dir, "--quiet");
            Assert.True(code == 0, err);
            AssertPng(Path.Combine(dir, "first-layer-weights.png"));
            AssertPng(Path.Combine(dir, "misclassified.png"));
            Assert.False(File.Exists(Path.Combine(dir, "decision-regions.png")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void AnimateWithoutPlotOrOn784FeaturesIsAOneLineError()
    {
        var (code, _, err) = Run("train", "xor", "--epochs", "1", "--animate");
        Assert.NotEqual(0, code);
        Assert.Contains("--animate needs --plot", err);
        var dir = TempDir();
        try
        {
            (code, _, err) = Run("train", "digits", "--epochs", "1", "--limit", "50", "--plot", dir, "--animate");
            Assert.NotEqual(0, code);
            Assert.Contains("2-D datasets", err);
            Assert.DoesNotContain("   at ", err);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void GradientFlowRecordsTheMeanAbsoluteGradientOfEachParameter()
    {
        var model = new NN.Linear(3, 2, generator: new Generator(1));
        using var flow = new GradientFlow(model);
        var x = Tensor.FromArray(new float[] { 1, -2, 3, 0.5f, 1, -1 }, 2, 3);
        var expected = new List<double[]>();
        for (int s = 0; s < 2; s++)
        {
            model.ZeroGrad();
            (model.Forward(x) * (s + 1)).Sum().Backward();
            expected.Add(model.Parameters().Select(p => p.Grad!.ToDoubleArray().Select(Math.Abs).Average()).ToArray());
        }
        var means = flow.EndEpoch();
        Assert.Equal(["weight", "bias"], flow.Names);
        for (int i = 0; i < 2; i++) Assert.Equal((expected[0][i] + expected[1][i]) / 2, means[i], 6);
        Assert.Single(flow.Epochs);
    }
}

/// <summary>The code example of docs/plots.md ("From code"), line for line after its set-up.</summary>
[Collection("Threads")]
public class PlotDocExampleTests
{
    private static string ThisFile([System.Runtime.CompilerServices.CallerFilePath] string path = "") => path;

    private static string Normalize(string line) => System.Text.RegularExpressions.Regex.Replace(line.Split("//")[0], @"\s+", " ").Trim();

    [Fact]
    public void EveryLineOfTheDocsExampleIsRunHere()
    {
        var doc = File.ReadAllText(Path.Combine(DataTestFiles.RepoRoot, "docs", "plots.md")).ReplaceLineEndings("\n");
        int start = doc.IndexOf("```csharp\n", doc.IndexOf("## From code", StringComparison.Ordinal), StringComparison.Ordinal) + "```csharp\n".Length;
        var block = doc[start..doc.IndexOf("```", start, StringComparison.Ordinal)];
        var tested = File.ReadAllLines(ThisFile()).Select(Normalize).ToHashSet(StringComparer.Ordinal);
        var lines = block.Split('\n').Select(Normalize).Where(l => l.Length > 0).ToList();
        Assert.True(lines.Count >= 10, $"the block has {lines.Count} lines");
        foreach (var line in lines)
            Assert.True(tested.Contains(line), $"docs/plots.md: the line `{line}` is not in PlotTests.cs; update the test with the docs");
    }

    [Fact]
    public void TheFromCodeExampleOfPlotsMdRuns()
    {
        var dir = Path.Combine(Path.GetTempPath(), "backprop-plotdoc-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var cwd = Environment.CurrentDirectory;
        Environment.CurrentDirectory = dir;
        try
        {
            var model = new NN.Sequential(new NN.Linear(2, 4, generator: new Generator(1)), new NN.Tanh(), new NN.Linear(4, 2, generator: new Generator(2)));
            var data = Data.Xor.Generate(samples: 40, seed: 1);
            var opt = new Optim.Sgd(model.Parameters(), lr: 0.1);
            int epochs = 2;
            double loss = 0;
            var xs = new double[epochs];
            var losses = new double[epochs];
            LabelledPoint[] trainPoints = [new(0.5, 0.5, 0), new(-0.5, 0.5, 1)], testPoints = [new(0.2, -0.3, 1)];

            using var flow = new GradientFlow(model);          // hooks every parameter
            using var tb = new Backprop.Plot.TensorBoard.SummaryWriter("runs/mine");
            for (int epoch = 1; epoch <= epochs; epoch++)
            {
                // ... train one epoch ...
                var l = NN.Loss.CrossEntropy(model.Forward(data.Inputs), data.Targets);
                opt.ZeroGrad();
                l.Backward();
                opt.Step();
                loss = l.ItemDouble();
                xs[epoch - 1] = epoch;
                losses[epoch - 1] = loss;
                flow.EndEpoch();
                tb.AddScalar("loss/train", loss, epoch);
                tb.AddHistogram("weights/0", model[0].Parameters().First().ToDoubleArray(), epoch);
            }
            flow.Save("gradient-flow.png");
            Charts.Lines("loss.png", "loss", "epoch", "loss", [new Series("train", xs, losses)]);
            var p = DecisionMap.Probabilities(model, -1, 1, -1, 1);    // [row, column, class]
            Charts.Save(Charts.DecisionRegions(p, -1, 1, -1, 1, trainPoints, testPoints, "my model"), "map.png", svg: false);
            using (var gif = new GifWriter("map.gif", 420, 420))
                gif.Add(Charts.Render(Charts.DecisionRegions(p, -1, 1, -1, 1, trainPoints, testPoints, "epoch 1"), 420, 420));

            Assert.Equal((120, 120, 2), (p.GetLength(0), p.GetLength(1), p.GetLength(2)));
            Assert.Equal(2, flow.Epochs.Count);
            foreach (var f in new[] { "gradient-flow.png", "loss.png", "map.png", "map.gif" }) Assert.True(new FileInfo(f).Length > 500, f);
            Assert.Equal(1 + 2 * epochs, Backprop.Plot.TensorBoard.RecordWriter.ReadAll(Directory.GetFiles("runs/mine").Single()).Count);
        }
        finally
        {
            Environment.CurrentDirectory = cwd;
            Directory.Delete(dir, recursive: true);
        }
    }
}
