using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using Backprop.Cli.Training;
using Backprop.NN;

namespace Backprop.Cli.Viz;

/// <summary>
/// What the page draws, computed from a <see cref="VizSession.Snapshot"/> (never under the training
/// lock): the heat map, the shown neurons' outputs over the plane, the shown edges' weights,
/// gradients and updates, the loss curves, the first hidden layer's view of the points and, for
/// images, the first-layer weights and a PCA of the last hidden layer.
/// <para>
/// Made to be cheap, since it shares the machine with training: the replica model, the grid's and
/// the samples' input tensors are built once per session generation and reused (the weights are
/// copied into the replica, no model is built per frame); each input set goes through the network
/// in one batched forward whose intermediate outputs serve several views (the evaluation sample's
/// first and last hidden layers are the hidden view and the PCA); only the neurons and edges the
/// diagram draws are computed; and the frame is compact JSON whose number arrays are base64 of
/// little-endian float32, int8 or uint8, written by a reused <see cref="Utf8JsonWriter"/>.
/// </para>
/// </summary>
public sealed class VizViews
{
    /// <summary>Cells per side of the heat map.</summary>
    public const int Grid = 48;

    /// <summary>Cells per side of a neuron's thumbnail (every third heat-map cell).</summary>
    public const int Thumb = 16;

    /// <summary>Neurons of a layer the diagram draws (and the frame carries).</summary>
    public const int MaxNodes = 16;

    /// <summary>First-layer neurons whose weights are sent as images.</summary>
    public const int MaxImages = 32;

    /// <summary>Points of each split evaluated for the loss and accuracy curves.</summary>
    public const int EvalPoints = 1000;

    private const int Curve = 200;
    private const int MaxHistory = 400;
    private const int SamplePoints = 300;

    private readonly List<(long Step, float TrainLoss, float TrainAcc, float TestLoss, float TestAcc)> _history = [];
    private long _historyVersion = -1;
    private double[][]? _hiddenAxes, _lastAxes;
    private volatile bool _clear;

    // Per generation: the replica and the input tensors.
    private long _generation = -1;
    private Sequential _replica = null!;
    private Linear[] _linears = [];
    private Tensor? _gridX, _curveX, _trainX, _trainY, _testX, _testY;
    private float[] _curveRaw = [];
    private long[] _trainLabels = [], _testLabels = [];

    private readonly ArrayBufferWriter<byte> _buffer = new(1 << 16);
    private readonly Utf8JsonWriter _json;
    private float[] _scratch = new float[4096];
    private float[] _scratch2 = new float[4096];
    private byte[] _bytes = new byte[4096];

    /// <summary>A builder with its own reusable buffers (one per publisher).</summary>
    public VizViews()
    {
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });
    }

    /// <summary>Forgets the loss curves and the PCA axes (after a reset; a new session generation does too).</summary>
    public void Clear() => _clear = true;

    /// <summary>The page's state for <paramref name="s"/> as one line of UTF-8 JSON.</summary>
    public byte[] Build(VizSession session, VizSession.Snapshot s)
    {
        if (_clear || _generation != s.Generation)
        {
            _clear = false;
            _history.Clear();
            _hiddenAxes = _lastAxes = null;
            _historyVersion = -1;
        }
        if (_generation != s.Generation) Prepare(s);
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        var w = _json;
        var data = s.Data;
        w.WriteStartObject();
        w.WriteString("type", "state");
        w.WriteNumber("step", s.Step);
        w.WriteNumber("epoch", s.Epoch);
        w.WriteNumber("version", s.Version);
        w.WriteBoolean("playing", session.Playing);
        w.WriteNumber("stepsPerSecond", Math.Round(session.StepsPerSecond, 1));
        if (double.IsFinite(s.LastLoss)) w.WriteNumber("lastLoss", s.LastLoss); else w.WriteNull("lastLoss");
        if (session.Error is string error) w.WriteString("error", error); else w.WriteNull("error");
        w.WriteStartArray("sizes");
        foreach (var n in s.Sizes) w.WriteNumberValue(n);
        w.WriteEndArray();
        w.WriteString("kind", data.Kind.ToString().ToLowerInvariant());
        w.WriteString("activation", s.Config.Activation);
        Edges(w, s);
        using (Tensor.NoGrad())
        {
            for (int l = 0; l < _linears.Length; l++)
            {
                _linears[l].Weight.CopyFromHost<float>(s.Weights[l]);
                _linears[l].Bias!.CopyFromHost<float>(s.Biases[l]);
            }
            // One forward of each evaluation sample; its hidden layers feed the hidden view and the PCA.
            var trainOuts = _trainX == null ? null : VizViews.Layers(_replica, _trainX);
            var testOuts = _testX == null ? null : VizViews.Layers(_replica, _testX);
            if (_historyVersion != s.Version)
            {
                _historyVersion = s.Version;
                var (trL, trA) = Evaluate(trainOuts, _trainY, _trainLabels, s);
                var (teL, teA) = Evaluate(testOuts, _testY, _testLabels, s);
                if (_history.Count > 0 && _history[^1].Step == s.Step) _history.RemoveAt(_history.Count - 1);
                _history.Add((s.Step, trL, trA, teL, teA));
                if (_history.Count > MaxHistory)
                    for (int i = _history.Count - 2; i > 0; i -= 2) _history.RemoveAt(i); // keep the first and the last, halve the rest
            }
            History(w);
            if (data.Kind == VizKind.Plane) Plane(w, s);
            else if (data.Kind == VizKind.Line) Line(w, s);
            else Images(w, s, testOuts);
            HiddenView(w, s, trainOuts);
        }
        w.WriteEndObject();
        w.Flush();
        return _buffer.WrittenSpan.ToArray();
    }

    /// <summary>The replica model and the input tensors of a new session generation.</summary>
    private void Prepare(VizSession.Snapshot s)
    {
        var data = s.Data;
        int d = s.Sizes[0];
        _replica = new ModelSpec("mlp", s.Sizes).Build(s.Config.Activation, new Generator(0));
        _linears = [.. _replica.Layers.OfType<Linear>()];
        _gridX = _curveX = null;
        if (data.Kind == VizKind.Plane)
        {
            var raw = new float[Grid * Grid * 2];
            for (int r = 0; r < Grid; r++)
                for (int c = 0; c < Grid; c++)
                {
                    // row 0 is the top of the picture (largest y)
                    raw[2 * (r * Grid + c)] = (float)(data.Box[0] + (c + 0.5) / Grid * (data.Box[1] - data.Box[0]));
                    raw[2 * (r * Grid + c) + 1] = (float)(data.Box[3] - (r + 0.5) / Grid * (data.Box[3] - data.Box[2]));
                }
            _gridX = Tensor.FromArray(data.Features(raw, Grid * Grid, s.Config.Features), Grid * Grid, d);
        }
        else if (data.Kind == VizKind.Line)
        {
            _curveRaw = new float[Curve];
            for (int i = 0; i < Curve; i++) _curveRaw[i] = (float)(data.Box[0] + (i + 0.5) / Curve * (data.Box[1] - data.Box[0]));
            _curveX = Tensor.FromArray(data.Features(_curveRaw, Curve, s.Config.Features), Curve, d);
        }
        (Tensor? X, Tensor? Y, long[] Labels) Sample(float[] inputs, long[] labels)
        {
            int n = Math.Min(labels.Length, EvalPoints);
            if (n == 0) return (null, null, []);
            var l = labels.AsSpan(0, n).ToArray();
            return (Tensor.FromArray(inputs.AsSpan(0, n * d).ToArray(), n, d), Tensor.FromArray(l, n), l);
        }
        (_trainX, _trainY, _trainLabels) = Sample(s.TrainInputs, data.TrainY);
        (_testX, _testY, _testLabels) = Sample(s.TestInputs, data.TestY);
        _generation = s.Generation;
    }

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

    private static (float Loss, float Accuracy) Evaluate(List<Tensor>? outs, Tensor? y, long[] labels, VizSession.Snapshot s)
    {
        if (outs == null || y == null) return (float.NaN, float.NaN);
        var output = outs[^1];
        double loss = VizSession.LossOf(s.Config.Loss, output, y, s.Sizes[^1]).ItemDouble();
        var pred = output.Argmax(1).ToLongArray();
        int correct = 0;
        for (int i = 0; i < labels.Length; i++) if (pred[i] == labels[i]) correct++;
        return ((float)loss, (float)correct / labels.Length);
    }

    /// <summary>The tensor's elements in a reused buffer (valid until the next call with the same buffer).</summary>
    private static Span<float> Host(Tensor t, ref float[] buffer)
    {
        int n = t.NumElements;
        if (buffer.Length < n) buffer = new float[Math.Max(n, buffer.Length * 2)];
        var span = buffer.AsSpan(0, n);
        t.CopyToHost<float>(span);
        return span;
    }

    private Span<byte> Bytes(int n)
    {
        if (_bytes.Length < n) _bytes = new byte[Math.Max(n, _bytes.Length * 2)];
        return _bytes.AsSpan(0, n);
    }

    private static void F32(Utf8JsonWriter w, string name, ReadOnlySpan<float> v) => w.WriteBase64String(name, MemoryMarshal.AsBytes(v));

    /// <summary>The diagram's edges (the first <see cref="MaxNodes"/> × <see cref="MaxNodes"/> of each layer) by weight, gradient and last update, with each layer's largest magnitude.</summary>
    private void Edges(Utf8JsonWriter w, VizSession.Snapshot s)
    {
        w.WriteStartArray("edges");
        for (int l = 0; l < s.Weights.Length; l++)
        {
            int inputs = s.Sizes[l], rows = Math.Min(s.Sizes[l + 1], MaxNodes), cols = Math.Min(inputs, MaxNodes);
            w.WriteStartObject();
            w.WriteNumber("rows", rows);
            w.WriteNumber("cols", cols);
            foreach (var (name, src) in new[] { ("weight", s.Weights[l]), ("grad", s.WeightGrads[l]), ("update", s.WeightUpdates[l]) })
            {
                if (_scratch.Length < rows * cols) _scratch = new float[rows * cols];
                var block = _scratch.AsSpan(0, rows * cols);
                for (int r = 0; r < rows; r++) src.AsSpan(r * inputs, cols).CopyTo(block.Slice(r * cols, cols));
                float max = 0;
                foreach (var v in src) if (Math.Abs(v) > max) max = Math.Abs(v);
                w.WriteNumber(name + "Max", float.IsFinite(max) ? max : 0);
                F32(w, name, block);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private void History(Utf8JsonWriter w)
    {
        int n = _history.Count;
        w.WriteStartObject("history");
        w.WriteStartArray("step");
        foreach (var h in _history) w.WriteNumberValue(h.Step);
        w.WriteEndArray();
        if (_scratch.Length < n) _scratch = new float[n];
        var v = _scratch.AsSpan(0, n);
        for (int k = 0; k < 4; k++)
        {
            for (int i = 0; i < n; i++)
            {
                var h = _history[i];
                float x = k switch { 0 => h.TrainLoss, 1 => h.TrainAcc, 2 => h.TestLoss, _ => h.TestAcc };
                v[i] = float.IsFinite(x) ? x : -1;
            }
            F32(w, k switch { 0 => "trainLoss", 1 => "trainAcc", 2 => "testLoss", _ => "testAcc" }, v);
        }
        w.WriteEndObject();
    }

    /// <summary>The heat map (class and its probability in percent per cell, bytes) and the shown neurons' thumbnails.</summary>
    private void Plane(Utf8JsonWriter w, VizSession.Snapshot s)
    {
        var outs = VizViews.Layers(_replica, _gridX!);
        var probs = Host(outs[^1].Softmax(1), ref _scratch2);
        int k = s.Sizes[^1], cells = Grid * Grid;
        var bytes = Bytes(2 * cells);
        for (int i = 0; i < cells; i++)
        {
            int best = 0;
            for (int j = 1; j < k; j++) if (probs[i * k + j] > probs[i * k + best]) best = j;
            bytes[i] = (byte)best;
            bytes[cells + i] = (byte)Math.Round(100 * probs[i * k + best]);
        }
        w.WriteStartObject("heat");
        w.WriteNumber("grid", Grid);
        w.WriteBase64String("cls", bytes[..cells]);
        w.WriteBase64String("p", bytes[cells..]);
        w.WriteEndObject();
        Thumbnails(w, outs, static (i) => (1 + 3 * (i / Thumb)) * Grid + 1 + 3 * (i % Thumb), Thumb * Thumb);
    }

    /// <summary>
    /// The shown neurons' outputs (inputs, each activation, the logits) at <paramref name="cells"/>
    /// sampled rows, scaled to −100..100 by each neuron's largest magnitude: per layer, one int8 array
    /// [neuron, cell] and the scales.
    /// </summary>
    private void Thumbnails(Utf8JsonWriter w, List<Tensor> outs, Func<int, int> row, int cells)
    {
        // outs: inputs, then (linear, activation) pairs, the last linear alone: take inputs, each activation, the logits.
        w.WriteStartArray("neurons");
        WriteThumbLayer(w, outs[0], row, cells);
        for (int i = 2; i < outs.Count; i += 2) WriteThumbLayer(w, outs[i], row, cells);
        WriteThumbLayer(w, outs[^1], row, cells);
        w.WriteEndArray();
    }

    private void WriteThumbLayer(Utf8JsonWriter w, Tensor t, Func<int, int> row, int cells)
    {
        int width = t.Size(1), shown = Math.Min(width, MaxNodes);
        var v = Host(t, ref _scratch2);
        var bytes = Bytes(shown * cells);
        if (_scratch.Length < shown) _scratch = new float[shown];
        var maxes = _scratch.AsSpan(0, shown);
        for (int j = 0; j < shown; j++)
        {
            float max = 1e-6f;
            for (int c = 0; c < cells; c++) max = Math.Max(max, Math.Abs(v[row(c) * width + j]));
            if (!float.IsFinite(max)) max = 1e-6f;
            maxes[j] = max;
            for (int c = 0; c < cells; c++)
            {
                float x = v[row(c) * width + j] / max;
                bytes[j * cells + c] = (byte)(sbyte)(float.IsFinite(x) ? Math.Round(100 * x) : 0);
            }
        }
        w.WriteStartObject();
        w.WriteNumber("cells", cells);
        F32(w, "max", maxes);
        w.WriteBase64String("v", bytes);
        w.WriteEndObject();
    }

    /// <summary>For one-input models: each output neuron's line over the input and the softmax curves ([class, point] float32).</summary>
    private void Line(Utf8JsonWriter w, VizSession.Snapshot s)
    {
        var outs = VizViews.Layers(_replica, _curveX!);
        int k = s.Sizes[^1];
        w.WriteStartObject("line");
        F32(w, "xs", _curveRaw);
        w.WriteNumber("classes", k);
        foreach (var (name, t) in new[] { ("logits", outs[^1]), ("probs", outs[^1].Softmax(1)) })
        {
            var v = Host(t, ref _scratch2);
            if (_scratch.Length < k * Curve) _scratch = new float[k * Curve];
            var byClass = _scratch.AsSpan(0, k * Curve);
            for (int j = 0; j < k; j++)
                for (int i = 0; i < Curve; i++) byClass[j * Curve + i] = float.IsFinite(v[i * k + j]) ? v[i * k + j] : 0;
            F32(w, name, byClass);
        }
        w.WriteEndObject();
        Thumbnails(w, outs, static i => 2 + 6 * i, (Curve - 2 + 5) / 6);
    }

    /// <summary>First-layer weights as images and a PCA of the last hidden layer on a sample of test images.</summary>
    private void Images(Utf8JsonWriter w, VizSession.Snapshot s, List<Tensor>? testOuts)
    {
        var data = s.Data;
        int d = s.Sizes[0], shown = Math.Min(s.Sizes[1], MaxImages);
        w.WriteStartObject("images");
        w.WriteNumber("side", data.ImageSide);
        F32(w, "weights", s.Weights[0].AsSpan(0, shown * d));
        w.WriteEndObject();
        if (s.Sizes.Length < 3 || testOuts == null) return;
        var last = testOuts[^2]; // the last hidden activation
        int n = Math.Min(SamplePoints, last.Size(0)), h = last.Size(1);
        var all = Host(last, ref _scratch2);
        w.WriteStartObject("pca");
        F32(w, "pts", Pca.Project(all[..(n * h)].ToArray(), n, h, 2, ref _lastAxes));
        Labels(w, _testLabels, n);
        w.WriteEndObject();
    }

    private void Labels(Utf8JsonWriter w, long[] labels, int n)
    {
        var b = Bytes(n);
        for (int i = 0; i < n; i++) b[i] = (byte)labels[i];
        w.WriteBase64String("labels", b);
    }

    /// <summary>The training points as the first hidden layer sees them: its activations (2 or 3 neurons) or their PCA.</summary>
    private void HiddenView(Utf8JsonWriter w, VizSession.Snapshot s, List<Tensor>? trainOuts)
    {
        if (s.Sizes.Length < 3 || trainOuts == null) { w.WriteNull("hidden"); return; }
        var act = trainOuts[2];
        int n = Math.Min(SamplePoints, act.Size(0)), h = s.Sizes[1];
        var a = Host(act, ref _scratch2)[..(n * h)];
        w.WriteStartObject("hidden");
        if (h <= 3)
        {
            w.WriteNumber("dims", h == 1 ? 2 : h);
            w.WriteString("method", "activations");
            if (h == 1)
            {
                var pts = new float[2 * n];
                for (int i = 0; i < n; i++) pts[2 * i] = a[i];
                F32(w, "pts", pts);
            }
            else F32(w, "pts", a);
        }
        else
        {
            w.WriteNumber("dims", 2);
            w.WriteString("method", "pca");
            F32(w, "pts", Pca.Project(a.ToArray(), n, h, 2, ref _hiddenAxes));
        }
        Labels(w, _trainLabels, n);
        w.WriteEndObject();
    }
}

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
