namespace Backprop.Data;

/// <summary>
/// Interleaved spiral arms, one class per arm (the CS231n "spiral" toy problem): not linearly
/// separable, so a network needs hidden units to bend its decision boundary around the arms.
/// </summary>
public static class Spirals
{
    /// <summary>
    /// Sample i lies on arm a = i mod <paramref name="arms"/> at radius r = (j + 0.5) / n (j its
    /// position on the arm, n the arm's sample count) and angle 2π·a/arms + 2π·turns·r plus Gaussian
    /// noise of <paramref name="noise"/> radians. Inputs float32 [samples, 2] within the unit disk,
    /// targets int64 arm indices.
    /// </summary>
    public static TensorDataset Generate(int samples = 300, int arms = 2, double noise = 0.2, double turns = 0.75, ulong seed = 0)
    {
        if (samples <= 0) throw new ArgumentOutOfRangeException(nameof(samples), samples, "Spirals.Generate: samples must be positive.");
        if (arms < 2) throw new ArgumentOutOfRangeException(nameof(arms), arms, "Spirals.Generate: at least 2 arms are needed.");
        if (!(noise >= 0)) throw new ArgumentOutOfRangeException(nameof(noise), noise, "Spirals.Generate: noise must be non-negative.");
        var g = new Generator(seed);
        var x = Tensor.HostEmpty<float>([samples, 2]);
        var y = Tensor.HostEmpty<long>([samples]);
        var xs = x.Span<float>();
        var ys = y.Span<long>();
        for (int i = 0; i < samples; i++)
        {
            int arm = i % arms, j = i / arms;
            int perArm = (samples - arm + arms - 1) / arms;
            double r = (j + 0.5) / perArm;
            double theta = 2 * Math.PI * arm / arms + 2 * Math.PI * turns * r + noise * g.NextNormal();
            xs[2 * i] = (float)(r * Math.Cos(theta));
            xs[2 * i + 1] = (float)(r * Math.Sin(theta));
            ys[i] = arm;
        }
        return new TensorDataset(x, y) { ClassNames = [.. Enumerable.Range(0, arms).Select(a => $"arm {a}")] };
    }
}
