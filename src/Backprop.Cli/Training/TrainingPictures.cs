using System.Globalization;
using Backprop.Data;
using Backprop.NN;
using Backprop.Plot;
using Backprop.Plot.TensorBoard;

namespace Backprop.Cli.Training;

/// <summary>
/// What <c>backprop train --plot DIR [--animate] --logdir DIR</c> records while a run trains: per-epoch
/// curves, gradient flow (through the parameters' post-accumulate gradient hooks), the decision map of
/// 2-D datasets (a GIF frame per epoch with --animate), and TensorBoard events; at the end the PNG/SVG
/// files. The training loop only calls <see cref="OnEpoch"/> and <see cref="Finish"/>.
/// </summary>
internal sealed class TrainingPictures : IDisposable
{
    private readonly Trainer _t;
    private readonly string? _plotDir;
    private readonly GradientFlow? _flow;
    private readonly GifWriter? _gif;
    private readonly SummaryWriter? _tb;
    private readonly List<(int Epoch, double TrainLoss, double TestLoss, double TrainAccuracy, double TestAccuracy)> _curves = [];
    private readonly (double XMin, double XMax, double YMin, double YMax) _bounds;
    private const int FrameSize = 420;

    /// <summary>Whether the inputs are points of the plane.</summary>
    public bool TwoD => _t.Spec.Sizes[0] == 2;

    /// <summary>The side of square image inputs (8 for digits, 28 for MNIST), or 0.</summary>
    public int ImageSide { get; }

    private TrainingPictures(Trainer t, string? plotDir, bool animate, string? logDir)
    {
        _t = t;
        _plotDir = plotDir;
        int f = t.Spec.Sizes[0], side = (int)Math.Round(Math.Sqrt(f));
        ImageSide = f >= 49 && side * side == f ? side : 0;
        if (plotDir != null) Directory.CreateDirectory(plotDir);
        // About 64 recorded steps per epoch: the hooks' few ops per parameter would otherwise slow small models.
        _flow = new GradientFlow(t.Model) { Every = Math.Max(1, t.Loader.Count / 64) };
        if (TwoD) _bounds = DecisionMap.Bounds(Points(t.Train).Concat(Points(t.Test)));
        if (animate && TwoD && plotDir != null) _gif = new GifWriter(Path.Combine(plotDir, "decision-regions.gif"), FrameSize, FrameSize, delayMilliseconds: 250);
        if (logDir != null)
        {
            _tb = new SummaryWriter(logDir);
            _tb.AddText("config", $"backprop train {t.Options.Dataset} --model {t.Spec} --activation {t.Options.Activation} --loss {t.Options.Loss} " +
                $"--optimizer {t.Options.Optimizer} --lr {F(t.Options.Lr)} --batch-size {t.Options.BatchSize} --epochs {t.Options.Epochs} --seed {t.Options.Seed}", 0);
            _tb.Flush();
        }
    }

    /// <summary>The recorder for these options, or null when none of them asks for pictures.</summary>
    public static TrainingPictures? Create(Trainer t, string? plotDir, bool animate, string? logDir)
    {
        if (animate && plotDir == null) throw new CliException("--animate needs --plot DIR, the folder to write the animation to.");
        if (plotDir == null && logDir == null) return null;
        foreach (var (name, dir) in new[] { ("--plot", plotDir), ("--logdir", logDir) })
            if (dir != null && File.Exists(dir)) throw new CliException($"{name} '{dir}': that is a file; give a folder (it is created if missing).");
        if (animate && t.Spec.Sizes[0] != 2)
            throw new CliException($"--animate draws the decision map of 2-D datasets; {t.Options.Dataset} has {t.Spec.Sizes[0]} input features.");
        try
        {
            return new TrainingPictures(t, plotDir, animate, logDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            string which = string.Join(" or ", new[] { ("--plot", plotDir), ("--logdir", logDir) }.Where(x => x.Item2 != null).Select(x => $"{x.Item1} '{x.Item2}'"));
            throw new CliException($"{which}: cannot write there: {Cli.OneLine(e.Message)}");
        }
    }

    private static IEnumerable<LabelledPoint> Points(TensorDataset d)
    {
        var x = d.Inputs.ToDoubleArray();
        var y = d.Targets.ToLongArray();
        for (int i = 0; i < y.Length; i++) yield return new LabelledPoint(x[2 * i], x[2 * i + 1], (int)y[i]);
    }

    /// <summary>After each epoch's evaluation: records the curves, gradient flow, an animation frame and the TensorBoard events.</summary>
    public void OnEpoch(EpochResult er)
    {
        var flow = _flow!.EndEpoch();
        var (_, trainAccuracy) = _t.Evaluate(_t.Train);
        _curves.Add((er.Epoch, er.TrainLoss, er.TestLoss, trainAccuracy, er.TestAccuracy));
        if (_gif != null)
        {
            using var frame = Charts.Render(RegionPlot($"epoch {er.Epoch}"), FrameSize, FrameSize);
            _gif.Add(frame);
        }
        if (_tb == null) return;
        long step = _t.Step;
        _tb.AddScalar("loss/train", er.TrainLoss, step);
        _tb.AddScalar("loss/test", er.TestLoss, step);
        _tb.AddScalar("accuracy/train", trainAccuracy, step);
        _tb.AddScalar("accuracy/test", er.TestAccuracy, step);
        _tb.AddScalar("epoch", er.Epoch, step);
        foreach (var ((name, p), i) in _t.Model.NamedParameters().Select((p, i) => (p, i)))
        {
            _tb.AddHistogram($"weights/{name}", p.ToDoubleArray(), step);
            if (p.Grad is { } g) _tb.AddHistogram($"gradients/{name}", g.ToDoubleArray(), step);
            if (i < flow.Length && double.IsFinite(flow[i])) _tb.AddScalar($"grad_mean_abs/{name}", flow[i], step);
        }
        if (TwoD)
        {
            using var bmp = Charts.Render(RegionPlot($"epoch {er.Epoch}"), FrameSize, FrameSize);
            _tb.AddImage("decision_regions", Charts.PngBytes(bmp), bmp.Width, bmp.Height, step);
        }
        _tb.Flush();
    }

    private ScottPlot.Plot RegionPlot(string title)
    {
        var (x0, x1, y0, y1) = _bounds;
        var p = DecisionMap.Probabilities(_t.Model, x0, x1, y0, y1, resolution: 100);
        return Charts.DecisionRegions(p, x0, x1, y0, y1, Points(_t.Train), Points(_t.Test),
            $"{_t.Options.Dataset}: {title}", _t.Train.ClassNames);
    }

    /// <summary>Writes the pictures of the run; returns the files written (for the summary line).</summary>
    public List<string> Finish()
    {
        var files = new List<string>();
        if (_plotDir != null && _curves.Count > 0)
        {
            string P(string name) => Path.Combine(_plotDir, name);
            var x = _curves.Select(c => (double)c.Epoch).ToArray();
            files.AddRange(Charts.Lines(P("loss.png"), $"{_t.Options.Dataset}: loss", "epoch", $"{_t.Options.Loss} loss",
                [new("train", x, _curves.Select(c => c.TrainLoss).ToArray()), new("test", x, _curves.Select(c => c.TestLoss).ToArray())]));
            files.AddRange(Charts.Lines(P("accuracy.png"), $"{_t.Options.Dataset}: accuracy", "epoch", "accuracy",
                [new("train", x, _curves.Select(c => c.TrainAccuracy).ToArray()), new("test", x, _curves.Select(c => c.TestAccuracy).ToArray())]));
            files.AddRange(_flow!.Save(P("gradient-flow.png")));
            var (predicted, truth) = Predictions(_t.Test);
            int k = _t.Classes;
            var counts = new int[k, k];
            for (int i = 0; i < truth.Length; i++) counts[truth[i], predicted[i]]++;
            files.AddRange(Charts.ConfusionMatrix(P("confusion.png"), counts, _t.Test.ClassNames));
            if (TwoD)
            {
                var plot = RegionPlot($"after epoch {_curves[^1].Epoch}");
                files.AddRange(Charts.Save(plot, P("decision-regions.png"), svg: false, 560, 520));
            }
            var firstConv = _t.Model.NamedModules().Select(m => m.Module).OfType<Conv2d>().FirstOrDefault();
            if (ImageSide > 0 && _t.Model[0] is not Linear && firstConv != null)
            {
                // A CNN: the first convolution's learned filters (its first input channel), one tile per output channel.
                int n = Math.Min(firstConv.OutChannels, 64), kh = firstConv.KernelSize.H, kw = firstConv.KernelSize.W;
                int per = firstConv.Weight.NumElements / firstConv.OutChannels;
                var w = firstConv.Weight.ToDoubleArray();
                var tiles = Enumerable.Range(0, n).Select(o => w.AsSpan(o * per, kh * kw).ToArray()).ToList();
                files.Add(Charts.Tiles(P("first-layer-filters.png"), tiles, kh, kw, signed: true, scale: Math.Max(4, 48 / Math.Max(kh, kw)),
                    captions: tiles.Select((_, i) => $"#{i}").ToList(), title: $"first conv layer's {kh}x{kw} filters (red +, blue -)"));
            }
            if (ImageSide > 0 && (_t.Model[0] is Linear || firstConv != null))
            {
                if (_t.Model[0] is Linear first)
                {
                    int n = Math.Min(first.OutFeatures, 64);
                    var w = first.Weight.ToDoubleArray();
                    var tiles = Enumerable.Range(0, n).Select(r => w.AsSpan(r * first.InFeatures, first.InFeatures).ToArray()).ToList();
                    files.Add(Charts.Tiles(P("first-layer-weights.png"), tiles, ImageSide, ImageSide, signed: true,
                        scale: Math.Max(2, 112 / ImageSide), captions: tiles.Select((_, i) => $"#{i}").ToList(), title: "first-layer weights (red +, blue -)"));
                }
                var inputs = _t.Test.Inputs.ToDoubleArray();
                var wrong = Enumerable.Range(0, truth.Length).Where(i => predicted[i] != truth[i]).Take(36).ToList();
                if (wrong.Count > 0)
                {
                    int f = ImageSide * ImageSide;
                    string Name(long c) => _t.Test.ClassNames is { } names && c < names.Count ? names[(int)c] : c.ToString(CultureInfo.InvariantCulture);
                    files.Add(Charts.Tiles(P("misclassified.png"), wrong.Select(i => inputs.AsSpan(i * f, f).ToArray()).ToList(), ImageSide, ImageSide,
                        signed: false, columns: 9, scale: Math.Max(2, 84 / ImageSide),
                        captions: wrong.Select(i => $"{Name(truth[i])}>{Name(predicted[i])}").ToList(),
                        title: $"misclassified test images (true>predicted): {wrong.Count} of {Enumerable.Range(0, truth.Length).Count(i => predicted[i] != truth[i])}"));
                }
            }
            if (_gif != null)
            {
                _gif.Dispose();
                files.Add(Path.Combine(_plotDir, "decision-regions.gif"));
            }
        }
        if (_tb != null && ImageSide > 0 && _t.Model[0] is Linear l0 && _plotDir != null && File.Exists(Path.Combine(_plotDir, "first-layer-weights.png")))
        {
            var png = File.ReadAllBytes(Path.Combine(_plotDir, "first-layer-weights.png"));
            using var bmp = SkiaSharp.SKBitmap.Decode(png);
            _tb.AddImage("first_layer_weights", png, bmp.Width, bmp.Height, _t.Step);
        }
        if (_tb != null) files.Add(_tb.FilePath);
        return files;
    }

    private (long[] Predicted, long[] Truth) Predictions(TensorDataset d)
    {
        bool training = _t.Model.Training;
        _t.Model.Eval();
        try
        {
            using (Tensor.NoGrad())
                return (_t.Model.Forward(d.Inputs.Reshape(d.Count, -1)).Argmax(1).ToLongArray(), d.Targets.ToLongArray());
        }
        finally
        {
            _t.Model.Train(training);
        }
    }

    private static string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);

    public void Dispose()
    {
        _flow?.Dispose();
        _gif?.Dispose();
        _tb?.Dispose();
    }
}
