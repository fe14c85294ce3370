namespace Backprop.Data;

/// <summary>Two concentric noisy rings (like scikit-learn's make_circles): a class inside a class.</summary>
public static class Circles
{
    /// <summary>The class names: 0 the outer ring, 1 the inner ring.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = ["outer", "inner"];

    /// <summary>
    /// Sample i is on the outer ring (radius 1, label 0) for even i and on the inner ring (radius
    /// <paramref name="factor"/>, label 1) for odd i, at a uniform random angle, plus Gaussian noise
    /// of standard deviation <paramref name="noise"/> on each coordinate. Inputs float32 [samples, 2],
    /// targets int64.
    /// </summary>
    public static TensorDataset Generate(int samples = 300, double factor = 0.5, double noise = 0.05, ulong seed = 0)
    {
        if (samples <= 0) throw new ArgumentOutOfRangeException(nameof(samples), samples, "Circles.Generate: samples must be positive.");
        if (!(factor > 0 && factor < 1)) throw new ArgumentOutOfRangeException(nameof(factor), factor, "Circles.Generate: factor (inner radius / outer radius) must be between 0 and 1.");
        if (!(noise >= 0)) throw new ArgumentOutOfRangeException(nameof(noise), noise, "Circles.Generate: noise must be non-negative.");
        var g = new Generator(seed);
        var x = Tensor.HostEmpty<float>([samples, 2]);
        var y = Tensor.HostEmpty<long>([samples]);
        var xs = x.Span<float>();
        var ys = y.Span<long>();
        for (int i = 0; i < samples; i++)
        {
            int label = i % 2;
            double r = label == 0 ? 1 : factor;
            double a = 2 * Math.PI * g.NextDouble();
            xs[2 * i] = (float)(r * Math.Cos(a) + noise * g.NextNormal());
            xs[2 * i + 1] = (float)(r * Math.Sin(a) + noise * g.NextNormal());
            ys[i] = label;
        }
        return new TensorDataset(x, y) { ClassNames = ClassNames };
    }
}
