using System.Globalization;
using Backprop.Data;

namespace Backprop.Cli.Viz;

/// <summary>How the page draws a dataset: points on a plane, points on a line, or images.</summary>
public enum VizKind
{
    /// <summary>Two coordinates per point (heat map over the plane).</summary>
    Plane,

    /// <summary>One coordinate per point (lines and softmax curves).</summary>
    Line,

    /// <summary>Images (first-layer weights as images, PCA of the last hidden layer).</summary>
    Image,
}

/// <summary>
/// A dataset as the page uses it: raw points (plane or line coordinates, or image pixels) split into
/// train and test, the class names, and the box the page draws. Plane and line points are mapped to
/// [-1, 1] by the box before the input features are computed, so one learning rate suits them all.
/// </summary>
public sealed class VizData
{
    /// <summary>Dataset names of the page's dataset menu.</summary>
    public static readonly string[] Names = ["cities", "cities-longitude", "tangled-border", "spirals", "circles", "xor", "blobs", "csv", "digits", "mnist"];

    /// <summary>Input features the page offers for plane and line data (line data uses those of x only).</summary>
    public static readonly string[] FeatureNames = ["x", "y", "x2", "y2", "xy", "sinx", "siny"];

    /// <summary>The most classes an uploaded CSV may have.</summary>
    public const int MaxCsvClasses = 10;

    /// <summary>Plane, line or image.</summary>
    public required VizKind Kind { get; init; }

    /// <summary>Raw train points, row-major [TrainCount, Dims].</summary>
    public required float[] TrainX { get; init; }

    /// <summary>Train labels.</summary>
    public required long[] TrainY { get; init; }

    /// <summary>Raw test points.</summary>
    public required float[] TestX { get; init; }

    /// <summary>Test labels.</summary>
    public required long[] TestY { get; init; }

    /// <summary>Numbers per raw point (2 plane, 1 line, pixels for images).</summary>
    public required int Dims { get; init; }

    /// <summary>Class names.</summary>
    public required string[] ClassNames { get; init; }

    /// <summary>The drawn box: x from <see cref="Box"/>[0] to [1], y from [2] to [3] (raw units).</summary>
    public double[] Box { get; init; } = [-1, 1, -1, 1];

    /// <summary>The side of a square image (8 digits, 28 MNIST); 0 otherwise.</summary>
    public int ImageSide { get; init; }

    /// <summary>Whether the page draws the outline of Western Europe under the points.</summary>
    public bool Map { get; init; }

    /// <summary>Train samples.</summary>
    public int TrainCount => TrainY.Length;

    /// <summary>Test samples.</summary>
    public int TestCount => TestY.Length;

    /// <summary>Builds the named dataset; <paramref name="csv"/> is the uploaded text for "csv".</summary>
    public static VizData Build(VizConfig c, string? csv)
    {
        ulong seed = c.Seed;
        switch (c.Dataset)
        {
            case "digits":
                return Images(Digits.Load(Split.Train), Digits.Load(Split.Test), 8, c.Samples);
            case "mnist":
                {
                    string dir = MnistDir();
                    return Images(Mnist.Load(dir, Split.Train, c.Samples ?? 10000), Mnist.Load(dir, Split.Test, 2000), 28, null);
                }
        }
        TensorDataset all;
        VizKind kind = VizKind.Plane;
        double[] box = [-1.2, 1.2, -1.2, 1.2];
        bool map = false;
        int n = c.Samples ?? 600;
        switch (c.Dataset)
        {
            case "cities":
                all = Cities.Generate(samples: n, spread: 0.9, seed: seed);
                box = [-10, 20, 36, 58];
                map = true;
                break;
            case "cities-longitude":
                all = Cities.Generate(samples: n, longitudeOnly: true, spread: 0.9, seed: seed);
                box = [-10, 20, 0, 1];
                kind = VizKind.Line;
                break;
            case "tangled-border": all = TangledBorder.Generate(samples: Math.Max(n, 1000), seed: seed); box = [-1, 1, -1, 1]; break;
            case "spirals": all = Spirals.Generate(samples: n, noise: 0.1, seed: seed); break;
            case "circles": all = Circles.Generate(samples: n, noise: 0.05, seed: seed); break;
            case "xor": all = Xor.Generate(samples: n, spread: 0.3, seed: seed); box = [-2, 2, -2, 2]; break;
            case "blobs": all = Blobs(n, seed); box = [-2, 2, -2, 2]; break;
            case "csv": return Csv(csv ?? throw new VizException("csv: no file uploaded; choose a CSV file of x,y,label lines."), c);
            default: throw new VizException($"unknown dataset '{c.Dataset}'; expected one of: {string.Join(", ", Names)}.");
        }
        var x = all.Inputs.ToArray();
        var y = all.Targets.ToLongArray();
        int dims = kind == VizKind.Line ? 1 : 2;
        Jitter(x, dims, box, c.Noise, seed);
        return SplitPoints(x, y, dims, c.TrainFraction, seed, all.ClassNames?.ToArray() ?? LabelNames(y), kind, box, map);
    }

    private static string[] LabelNames(long[] y) => [.. Enumerable.Range(0, (int)y.Max() + 1).Select(i => $"class {i}")];

    /// <summary>Gaussian noise of <paramref name="noise"/> times the box's half-width added to every coordinate.</summary>
    private static void Jitter(float[] x, int dims, double[] box, double noise, ulong seed)
    {
        if (noise <= 0) return;
        var g = new Generator(seed + 77);
        for (int i = 0; i < x.Length; i++)
        {
            int d = i % dims;
            double half = (box[2 * d + 1] - box[2 * d]) / 2;
            x[i] += (float)(noise * half * g.NextNormal());
        }
    }

    /// <summary>Three Gaussian blobs on a circle of radius 1.2, standard deviation 0.4.</summary>
    private static TensorDataset Blobs(int n, ulong seed)
    {
        var g = new Generator(seed);
        var x = new float[2 * n];
        var y = new long[n];
        for (int i = 0; i < n; i++)
        {
            int c = i % 3;
            double a = 2 * Math.PI * c / 3 + 0.5;
            x[2 * i] = (float)(1.2 * Math.Cos(a) + 0.4 * g.NextNormal());
            x[2 * i + 1] = (float)(1.2 * Math.Sin(a) + 0.4 * g.NextNormal());
            y[i] = c;
        }
        return new TensorDataset(Tensor.FromArray(x, n, 2), Tensor.FromArray(y, n)) { ClassNames = ["blob 0", "blob 1", "blob 2"] };
    }

    /// <summary>Shuffles the points (seeded) and keeps the first <paramref name="trainFraction"/> for training.</summary>
    private static VizData SplitPoints(float[] x, long[] y, int dims, double trainFraction, ulong seed, string[] names, VizKind kind, double[] box, bool map)
    {
        int n = y.Length;
        var order = Enumerable.Range(0, n).ToArray();
        new Random((int)(seed % int.MaxValue)).Shuffle(order);
        int nTrain = Math.Clamp((int)Math.Round(trainFraction * n), 1, Math.Max(1, n - 1));
        float[] Rows(IEnumerable<int> idx) => [.. idx.SelectMany(i => x.AsSpan(i * dims, dims).ToArray())];
        return new VizData
        {
            Kind = kind,
            Dims = dims,
            TrainX = Rows(order.Take(nTrain)),
            TrainY = [.. order.Take(nTrain).Select(i => y[i])],
            TestX = Rows(order.Skip(nTrain)),
            TestY = [.. order.Skip(nTrain).Select(i => y[i])],
            ClassNames = names,
            Box = box,
            Map = map,
        };
    }

    private static VizData Images(TensorDataset train, TensorDataset test, int side, int? limit)
    {
        int nTrain = limit is int l ? Math.Min(l, train.Count) : train.Count;
        int dims = side * side;
        return new VizData
        {
            Kind = VizKind.Image,
            Dims = dims,
            TrainX = train.Inputs.Reshape(train.Count, dims).Narrow(0, 0, nTrain).ToArray(),
            TrainY = train.Targets.Narrow(0, 0, nTrain).ToLongArray(),
            TestX = test.Inputs.Reshape(test.Count, dims).ToArray(),
            TestY = test.Targets.ToLongArray(),
            ClassNames = [.. Mnist.ClassNames],
            ImageSide = side,
        };
    }

    private static string MnistDir()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
                foreach (var candidate in new[] { Path.Combine(d.FullName, "shared", "data", "mnist"), Path.Combine(d.FullName, "data", "mnist") })
                    if (Directory.Exists(candidate)) return candidate;
        throw new VizException("mnist: no data folder found at ../shared/data/mnist or data/mnist.");
    }

    /// <summary>
    /// Parses an uploaded CSV: one point per line as x,y,label (label an integer 0-9 or a name; a
    /// first line that is not numeric is a header). Errors name the line.
    /// </summary>
    public static VizData Csv(string text, VizConfig c)
    {
        var xs = new List<float>();
        var labels = new List<string>();
        int lineNo = 0;
        using (var reader = new StringReader(text))
            for (string? line; (line = reader.ReadLine()) != null;)
            {
                lineNo++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                var f = line.Split(',');
                if (f.Length != 3)
                    throw new VizException($"csv line {lineNo}: expected 3 comma-separated fields x,y,label, got {f.Length}.");
                bool okX = double.TryParse(f[0].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && double.IsFinite(x);
                bool okY = double.TryParse(f[1].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double y) && double.IsFinite(y);
                if (xs.Count == 0 && labels.Count == 0 && !okX && !okY) continue; // header
                if (!okX) throw new VizException($"csv line {lineNo}: x '{Short(f[0])}' is not a finite number.");
                if (!okY) throw new VizException($"csv line {lineNo}: y '{Short(f[1])}' is not a finite number.");
                string label = f[2].Trim();
                if (label.Length == 0) throw new VizException($"csv line {lineNo}: the label is empty.");
                if (!labels.Contains(label) && labels.Distinct().Count() >= MaxCsvClasses)
                    throw new VizException($"csv line {lineNo}: label '{Short(label)}' is an 11th class; at most {MaxCsvClasses} classes are allowed.");
                xs.Add((float)x);
                xs.Add((float)y);
                labels.Add(label);
            }
        if (labels.Count < 2) throw new VizException("csv: at least 2 points are needed.");
        var names = labels.Distinct().ToList();
        if (names.All(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
            names = [.. names.OrderBy(s => int.Parse(s, CultureInfo.InvariantCulture))];
        if (names.Count < 2) throw new VizException("csv: every point has the same label; at least 2 classes are needed.");
        var y2 = labels.Select(s => (long)names.IndexOf(s)).ToArray();
        var arr = xs.ToArray();
        double minX = double.MaxValue, maxX = double.MinValue, minY = double.MaxValue, maxY = double.MinValue;
        for (int i = 0; i < arr.Length; i += 2)
        {
            minX = Math.Min(minX, arr[i]); maxX = Math.Max(maxX, arr[i]);
            minY = Math.Min(minY, arr[i + 1]); maxY = Math.Max(maxY, arr[i + 1]);
        }
        double px = Math.Max(1e-6, (maxX - minX) * 0.1), py = Math.Max(1e-6, (maxY - minY) * 0.1);
        double[] box = [minX - px, maxX + px, minY - py, maxY + py];
        Jitter(arr, 2, box, c.Noise, c.Seed);
        return SplitPoints(arr, y2, 2, c.TrainFraction, c.Seed, [.. names], VizKind.Plane, box, false);
    }

    private static string Short(string s) => s.Length > 24 ? s[..24] + "..." : s;

    /// <summary>Maps raw points to [-1, 1] by the box and computes the chosen features; [n, features].</summary>
    public float[] Features(float[] raw, int n, IReadOnlyList<string> features)
    {
        if (Kind == VizKind.Image) return raw;
        var f = new float[n * features.Count];
        for (int i = 0; i < n; i++)
        {
            double u = 2 * (raw[i * Dims] - Box[0]) / (Box[1] - Box[0]) - 1;
            double v = Dims > 1 ? 2 * (raw[i * Dims + 1] - Box[2]) / (Box[3] - Box[2]) - 1 : 0;
            for (int k = 0; k < features.Count; k++)
                f[i * features.Count + k] = (float)Feature(features[k], u, v);
        }
        return f;
    }

    /// <summary>One feature of the box coordinates (u, v) in [-1, 1].</summary>
    public static double Feature(string name, double u, double v) => name switch
    {
        "x" => u,
        "y" => v,
        "x2" => u * u,
        "y2" => v * v,
        "xy" => u * v,
        "sinx" => Math.Sin(Math.PI * u),
        "siny" => Math.Sin(Math.PI * v),
        _ => throw new VizException($"unknown feature '{name}'; expected one of: {string.Join(", ", FeatureNames)}."),
    };
}

/// <summary>A mistake in what the page sent (one line, shown on the page).</summary>
public sealed class VizException(string message) : Exception(message);
