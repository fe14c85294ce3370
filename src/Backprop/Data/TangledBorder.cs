namespace Backprop.Data;

/// <summary>
/// A two-country map with a tangled border, after Baarle-Hertog (Belgium) and Baarle-Nassau (the
/// Netherlands): a wiggly border across the square [-1, 1]², Belgian enclaves inside the
/// Netherlands, a Dutch enclave inside one of those (an enclave within an enclave), and a Dutch
/// enclave inside Belgium. A classifier has to learn disconnected regions of one class.
/// </summary>
/// <remarks>
/// The rule, exactly: a point (x, y) starts as Belgium (label 0) if y &lt; <see cref="Border"/>(x) and
/// as the Netherlands (label 1) otherwise; each enclave circle that contains it (distance to the
/// centre &lt; radius) flips the label once. The circles lie wholly on one side of the border and
/// the nested one wholly inside its host, so each is a true enclave.
/// </remarks>
public static class TangledBorder
{
    /// <summary>A circular enclave: every point inside it flips country.</summary>
    /// <param name="X">Centre x.</param>
    /// <param name="Y">Centre y.</param>
    /// <param name="Radius">Radius.</param>
    public readonly record struct Enclave(double X, double Y, double Radius);

    /// <summary>The class names: 0 Belgium (south of the border), 1 the Netherlands (north).</summary>
    public static IReadOnlyList<string> ClassNames { get; } = ["Belgium", "Netherlands"];

    /// <summary>The enclaves, in the order the rule applies them (order does not change the result).</summary>
    public static IReadOnlyList<Enclave> Enclaves { get; } =
    [
        new(-0.55, 0.60, 0.22),  // Belgian enclave in the Netherlands
        new(0.30, 0.58, 0.27),   // Belgian enclave in the Netherlands ...
        new(0.34, 0.55, 0.10),   // ... holding a Dutch enclave: an enclave within an enclave
        new(0.75, 0.80, 0.12),   // a small Belgian enclave in the Netherlands
        new(-0.20, -0.60, 0.15), // Dutch enclave in Belgium
    ];

    /// <summary>The border's height at <paramref name="x"/>: y = 0.2 sin(2.5x + 0.5) + 0.08 sin(9x).</summary>
    public static double Border(double x) => 0.2 * Math.Sin(2.5 * x + 0.5) + 0.08 * Math.Sin(9 * x);

    /// <summary>The country of the point (x, y): 0 Belgium, 1 the Netherlands (see the remarks for the rule).</summary>
    public static int Label(double x, double y)
    {
        int label = y < Border(x) ? 0 : 1;
        foreach (var e in Enclaves)
        {
            double dx = x - e.X, dy = y - e.Y;
            if (dx * dx + dy * dy < e.Radius * e.Radius) label ^= 1;
        }
        return label;
    }

    /// <summary>
    /// Points drawn uniformly from [-1, 1]² and labelled by <see cref="Label"/>. Inputs float32
    /// [samples, 2], targets int64 [samples]. The classes are not exactly balanced (Belgium holds
    /// about 59% of the square).
    /// </summary>
    public static TensorDataset Generate(int samples = 1000, ulong seed = 0)
    {
        if (samples <= 0) throw new ArgumentOutOfRangeException(nameof(samples), samples, "TangledBorder.Generate: samples must be positive.");
        var g = new Generator(seed);
        var x = Tensor.HostEmpty<float>([samples, 2]);
        var y = Tensor.HostEmpty<long>([samples]);
        var xs = x.Span<float>();
        var ys = y.Span<long>();
        for (int i = 0; i < samples; i++)
        {
            // Label the stored float32 point, so that the rule applied to the tensor agrees with the target.
            float px = (float)(2 * g.NextDouble() - 1), py = (float)(2 * g.NextDouble() - 1);
            xs[2 * i] = px;
            xs[2 * i + 1] = py;
            ys[i] = Label(px, py);
        }
        return new TensorDataset(x, y) { ClassNames = ClassNames };
    }
}
