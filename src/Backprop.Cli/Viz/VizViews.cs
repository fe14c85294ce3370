using System.Text.Json.Nodes;
using Backprop.NN;

namespace Backprop.Cli.Viz;

/// <summary>
/// What the page draws, computed from a copy of the model (never under the training lock): the
/// heat map, every neuron's output over the plane, the layers' weights, gradients and updates, the
/// loss curves, the first hidden layer's view of the points and, for images, the first-layer
/// weights and a PCA of the last hidden layer.
/// </summary>
public sealed class VizViews
{
    /// <summary>Cells per side of the heat map.</summary>
    public const int Grid = 48;

    /// <summary>Cells per side of a neuron's thumbnail (every third heat-map cell).</summary>
    public const int Thumb = 16;

    private const int Curve = 200;
    private const int MaxHistory = 400;
    private const int SamplePoints = 300;
    private readonly List<JsonObject> _history = [];
    private long _historyVersion = -1;
    private double[][]? _hiddenAxes, _lastAxes;

    /// <summary>Forgets the loss curves and the PCA axes (after a reset).</summary>
    public void Clear()
    {
        _history.Clear();
        _hiddenAxes = _lastAxes = null;
        _historyVersion = -1;
    }

    /// <summary>The page's state for <paramref name="copy"/> as one JSON object.</summary>
    public JsonObject Build(VizSession session, VizSession.ModelCopy copy)
    {
        var data = copy.Data;
        var model = VizSession.Replica(copy);
        var o = new JsonObject
        {
            ["type"] = "state",
            ["step"] = copy.Step,
            ["epoch"] = copy.Epoch,
            ["version"] = copy.Version,
            ["playing"] = session.Playing,
            ["stepsPerSecond"] = Math.Round(session.StepsPerSecond, 1),
            ["lastLoss"] = double.IsFinite(copy.LastLoss) ? copy.LastLoss : null,
            ["error"] = session.Error,
            ["sizes"] = Arr(copy.Sizes),
            ["kind"] = data.Kind.ToString().ToLowerInvariant(),
            ["activation"] = copy.Config.Activation,
            ["weights"] = Arrays(copy.Weights),
            ["biases"] = Arrays(copy.Biases),
            ["weightGrads"] = Arrays(copy.WeightGrads),
            ["biasGrads"] = Arrays(copy.BiasGrads),
            ["weightUpdates"] = Arrays(copy.WeightUpdates),
            ["biasUpdates"] = Arrays(copy.BiasUpdates),
        };
        using (Tensor.NoGrad())
        {
            if (_historyVersion != copy.Version)
            {
                _historyVersion = copy.Version;
                var (trL, trA) = Evaluate(model, copy.TrainInputs, data.TrainY, copy);
                var (teL, teA) = Evaluate(model, copy.TestInputs, data.TestY, copy);
                if (_history.Count > 0 && (long)_history[^1]["step"]! == copy.Step) _history.RemoveAt(_history.Count - 1);
                _history.Add(new JsonObject { ["step"] = copy.Step, ["trainLoss"] = R(trL), ["trainAcc"] = R(trA), ["testLoss"] = R(teL), ["testAcc"] = R(teA) });
                if (_history.Count > MaxHistory)
                    for (int i = _history.Count - 2; i > 0; i -= 2) _history.RemoveAt(i); // keep the first and the last, halve the rest
            }
            o["history"] = new JsonArray([.. _history.Select(h => h.DeepClone())]);
            if (data.Kind == VizKind.Plane) Plane(o, model, copy);
            else if (data.Kind == VizKind.Line) Line(o, model, copy);
            else Images(o, model, copy);
            o["hidden"] = HiddenView(model, copy);
        }
        return o;
    }

    private static double R(double v) => double.IsFinite(v) ? Math.Round(v, 5) : -1;

    // Arrays are wrapped whole (one node each, written by the serializer) rather than a node per number: a frame holds tens of thousands.
    private static JsonNode Arr(IEnumerable<int> v) => JsonValue.Create(v.ToArray(), VizJson.Default.Int32Array)!;

    private static JsonNode Arr(IEnumerable<float> v) => JsonValue.Create(v.Select(x => float.IsFinite(x) ? x : 0).ToArray(), VizJson.Default.SingleArray)!;

    private static JsonArray Arrays(float[][] v) => new([.. v.Select(a => Arr(a))]);

    /// <summary>Each layer's output on <paramref name="x"/>: [inputs, z1, a1, z2, a2, ..., logits].</summary>
    public static List<Tensor> Layers(Sequential model, Tensor x)
    {
        var outs = new List<Tensor> { x };
        foreach (var m in model.Layers)
        {
            x = m.Forward(x);
            outs.Add(x);
        }
        return outs;
    }

    private static (double Loss, double Accuracy) Evaluate(Sequential model, float[] inputs, long[] labels, VizSession.ModelCopy copy)
    {
        int d = copy.Sizes[0], n = Math.Min(labels.Length, 2000);
        if (n == 0) return (double.NaN, double.NaN);
        var x = Tensor.FromArray(inputs.AsSpan(0, n * d).ToArray(), n, d);
        var y = Tensor.FromArray(labels.AsSpan(0, n).ToArray(), n);
        var output = model.Forward(x);
        double loss = VizSession.LossOf(copy.Config.Loss, output, y, copy.Sizes[^1]).ItemDouble();
        var pred = output.Argmax(1).ToLongArray();
        int correct = 0;
        for (int i = 0; i < n; i++) if (pred[i] == labels[i]) correct++;
        return (loss, (double)correct / n);
    }

    /// <summary>The heat map and every neuron's thumbnail over the plane.</summary>
    private static void Plane(JsonObject o, Sequential model, VizSession.ModelCopy copy)
    {
        var data = copy.Data;
        var raw = new float[Grid * Grid * 2];
        for (int r = 0; r < Grid; r++)
            for (int c = 0; c < Grid; c++)
            {
                // row 0 is the top of the picture (largest y)
                raw[2 * (r * Grid + c)] = (float)(data.Box[0] + (c + 0.5) / Grid * (data.Box[1] - data.Box[0]));
                raw[2 * (r * Grid + c) + 1] = (float)(data.Box[3] - (r + 0.5) / Grid * (data.Box[3] - data.Box[2]));
            }
        var x = Tensor.FromArray(data.Features(raw, Grid * Grid, copy.Config.Features), Grid * Grid, copy.Sizes[0]);
        var outs = Layers(model, x);
        var probs = outs[^1].Softmax(1).ToArray();
        int k = copy.Sizes[^1];
        var cls = new int[Grid * Grid];
        var p = new int[Grid * Grid];
        for (int i = 0; i < Grid * Grid; i++)
        {
            int best = 0;
            for (int j = 1; j < k; j++) if (probs[i * k + j] > probs[i * k + best]) best = j;
            cls[i] = best;
            p[i] = (int)Math.Round(100 * probs[i * k + best]);
        }
        o["heat"] = new JsonObject { ["grid"] = Grid, ["cls"] = Arr(cls), ["p"] = Arr(p) };
        o["neurons"] = Thumbnails(outs, Grid * Grid, (i, emit) =>
        {
            for (int r = 1; r < Grid; r += 3)
                for (int c = 1; c < Grid; c += 3) emit(r * Grid + c);
        });
    }

    /// <summary>Outputs of the neurons (inputs, then each activation, then the logits) scaled to -100..100 by their largest magnitude.</summary>
    private static JsonArray Thumbnails(List<Tensor> outs, int n, Action<int, Action<int>> cells)
    {
        var layers = new JsonArray();
        // outs: inputs, then (linear, activation) pairs, the last linear alone: take inputs, each activation, the logits.
        var picked = new List<Tensor> { outs[0] };
        for (int i = 2; i < outs.Count; i += 2) picked.Add(outs[i]);
        picked.Add(outs[^1]);
        foreach (var t in picked)
        {
            int width = t.Size(1);
            var v = t.ToArray();
            var layer = new JsonArray();
            for (int j = 0; j < width; j++)
            {
                var vals = new List<float>();
                cells(0, idx => vals.Add(v[idx * width + j]));
                float max = Math.Max(1e-6f, vals.Max(Math.Abs));
                layer.Add(new JsonObject { ["max"] = max, ["v"] = Arr(vals.Select(a => (int)Math.Round(100 * a / max))) });
            }
            layers.Add(layer);
        }
        return layers;
    }

    /// <summary>For one-input models: each output neuron's line over the input and the softmax curves.</summary>
    private static void Line(JsonObject o, Sequential model, VizSession.ModelCopy copy)
    {
        var data = copy.Data;
        var raw = new float[Curve];
        for (int i = 0; i < Curve; i++) raw[i] = (float)(data.Box[0] + (i + 0.5) / Curve * (data.Box[1] - data.Box[0]));
        var x = Tensor.FromArray(data.Features(raw, Curve, copy.Config.Features), Curve, copy.Sizes[0]);
        var outs = Layers(model, x);
        int k = copy.Sizes[^1];
        var logits = outs[^1].ToArray();
        var probs = outs[^1].Softmax(1).ToArray();
        o["line"] = new JsonObject
        {
            ["xs"] = Arr(raw),
            ["logits"] = new JsonArray([.. Enumerable.Range(0, k).Select(j => (JsonNode)Arr(Enumerable.Range(0, Curve).Select(i => logits[i * k + j])))]),
            ["probs"] = new JsonArray([.. Enumerable.Range(0, k).Select(j => (JsonNode)Arr(Enumerable.Range(0, Curve).Select(i => probs[i * k + j])))]),
        };
        o["neurons"] = Thumbnails(outs, Curve, (i, emit) =>
        {
            for (int c = 2; c < Curve; c += 6) emit(c);
        });
    }

    /// <summary>First-layer weights as images and a PCA of the last hidden layer on a sample of test images.</summary>
    private void Images(JsonObject o, Sequential model, VizSession.ModelCopy copy)
    {
        var data = copy.Data;
        int n = Math.Min(SamplePoints, data.TestCount), d = copy.Sizes[0];
        o["images"] = new JsonObject { ["side"] = data.ImageSide, ["weights"] = Arr(copy.Weights[0]) };
        if (copy.Sizes.Length < 3) return;
        var x = Tensor.FromArray(copy.TestInputs.AsSpan(0, n * d).ToArray(), n, d);
        var outs = Layers(model, x);
        var last = outs[^2]; // the last hidden activation
        o["pca"] = new JsonObject
        {
            ["pts"] = Arr(Pca.Project(last.ToArray(), n, last.Size(1), 2, ref _lastAxes)),
            ["labels"] = Arr(data.TestY.Take(n).Select(v => (int)v)),
        };
    }

    /// <summary>The training points as the first hidden layer sees them: its activations (2 or 3 neurons) or their PCA.</summary>
    private JsonObject? HiddenView(Sequential model, VizSession.ModelCopy copy)
    {
        if (copy.Sizes.Length < 3) return null;
        var data = copy.Data;
        int n = Math.Min(SamplePoints, data.TrainCount), d = copy.Sizes[0], h = copy.Sizes[1];
        var x = Tensor.FromArray(copy.TrainInputs.AsSpan(0, n * d).ToArray(), n, d);
        var a = model.Layers.ElementAt(1).Forward(model.Layers.ElementAt(0).Forward(x)).ToArray();
        float[] pts;
        string method;
        int dims;
        if (h <= 3)
        {
            dims = h == 1 ? 2 : h;
            pts = h == 1 ? [.. Enumerable.Range(0, n).SelectMany(i => new[] { a[i], 0f })] : a;
            method = "activations";
        }
        else
        {
            dims = 2;
            pts = Pca.Project(a, n, h, 2, ref _hiddenAxes);
            method = "pca";
        }
        return new JsonObject
        {
            ["dims"] = dims,
            ["method"] = method,
            ["pts"] = Arr(pts),
            ["labels"] = Arr(data.TrainY.Take(n).Select(v => (int)v)),
        };
    }
}

/// <summary>Serializer metadata for the frame's number arrays.</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(int[]))]
[System.Text.Json.Serialization.JsonSerializable(typeof(float[]))]
internal sealed partial class VizJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>Principal components by power iteration, with the signs kept from one frame to the next.</summary>
public static class Pca
{
    /// <summary>Projects n rows of width d onto their top <paramref name="k"/> principal axes (row-major [n, k]).</summary>
    public static float[] Project(float[] rows, int n, int d, int k, ref double[][]? previousAxes)
    {
        var mean = new double[d];
        for (int i = 0; i < n; i++) for (int j = 0; j < d; j++) mean[j] += rows[i * d + j] / (double)n;
        var cov = new double[d, d];
        for (int i = 0; i < n; i++)
            for (int a = 0; a < d; a++)
            {
                double va = rows[i * d + a] - mean[a];
                if (va == 0) continue;
                for (int b = a; b < d; b++) cov[a, b] += va * (rows[i * d + b] - mean[b]);
            }
        for (int a = 0; a < d; a++) for (int b = 0; b < a; b++) cov[a, b] = cov[b, a];
        var axes = new double[k][];
        for (int c = 0; c < k; c++)
        {
            var v = previousAxes != null && previousAxes.Length == k && previousAxes[c].Length == d
                ? (double[])previousAxes[c].Clone()
                : [.. Enumerable.Range(0, d).Select(j => j == c % d ? 1.0 : 0.1 / (j + 1))];
            for (int it = 0; it < 60; it++)
            {
                var w = new double[d];
                for (int a = 0; a < d; a++) { double s = 0; for (int b = 0; b < d; b++) s += cov[a, b] * v[b]; w[a] = s; }
                for (int p = 0; p < c; p++) { double dot = Dot(w, axes[p]); for (int a = 0; a < d; a++) w[a] -= dot * axes[p][a]; }
                double norm = Math.Sqrt(Dot(w, w));
                if (norm < 1e-12) break;
                for (int a = 0; a < d; a++) v[a] = w[a] / norm;
            }
            if (previousAxes != null && previousAxes.Length == k && previousAxes[c].Length == d && Dot(v, previousAxes[c]) < 0)
                for (int a = 0; a < d; a++) v[a] = -v[a];
            axes[c] = v;
        }
        previousAxes = axes;
        var result = new float[n * k];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < k; c++)
            {
                double s = 0;
                for (int a = 0; a < d; a++) s += (rows[i * d + a] - mean[a]) * axes[c][a];
                result[i * k + c] = (float)s;
            }
        return result;
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}
