namespace Backprop.Data;

/// <summary>
/// The XOR problem as four Gaussian blobs centred on (±1, ±1): the label is 1 where x and y have
/// opposite signs. No single line separates the classes, the classic case for a hidden layer.
/// </summary>
public static class Xor
{
    /// <summary>The class names: 0 where x·y &gt; 0 (same signs), 1 where x·y &lt; 0.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = ["same sign", "opposite sign"];

    // Blob b of sample i = i mod 4; its label is the XOR of the centre's signs.
    private static readonly (int X, int Y, int Label)[] Blobs = [(1, 1, 0), (-1, 1, 1), (-1, -1, 0), (1, -1, 1)];

    /// <summary>
    /// Sample i is drawn from blob i mod 4 with standard deviation <paramref name="spread"/> and takes
    /// that blob's label (with a large spread some points cross an axis and keep their blob's label).
    /// Inputs float32 [samples, 2], targets int64.
    /// </summary>
    public static TensorDataset Generate(int samples = 400, double spread = 0.35, ulong seed = 0)
    {
        if (samples <= 0) throw new ArgumentOutOfRangeException(nameof(samples), samples, "Xor.Generate: samples must be positive.");
        if (!(spread >= 0)) throw new ArgumentOutOfRangeException(nameof(spread), spread, "Xor.Generate: spread must be non-negative.");
        var g = new Generator(seed);
        var x = Tensor.HostEmpty<float>([samples, 2]);
        var y = Tensor.HostEmpty<long>([samples]);
        var xs = x.Span<float>();
        var ys = y.Span<long>();
        for (int i = 0; i < samples; i++)
        {
            var b = Blobs[i % 4];
            xs[2 * i] = (float)(b.X + spread * g.NextNormal());
            xs[2 * i + 1] = (float)(b.Y + spread * g.NextNormal());
            ys[i] = b.Label;
        }
        return new TensorDataset(x, y) { ClassNames = ClassNames };
    }
}
