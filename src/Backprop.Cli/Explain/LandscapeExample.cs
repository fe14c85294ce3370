using System.Globalization;
using Backprop.NN;
using Backprop.Plot;

namespace Backprop.Cli.Explain;

/// <summary>
/// The loss as a function of one parameter around its current value: the cities example's loss for the
/// Paris point against m2 (Paris's slope), with the tangent whose slope backprop computed. Printed as a
/// table and, with <see cref="OutPath"/>, drawn as a PNG (and SVG).
/// </summary>
public sealed class LandscapeExample : WorkedExample
{
    /// <inheritdoc/>
    public override string Name => "landscape";

    /// <inheritdoc/>
    public override string Summary => "the cities example's loss against m2 around its value, and the tangent backprop computed (--out FILE.png draws it)";

    /// <summary>Where to draw the curve (PNG, with an SVG beside it), or null for the numbers only.</summary>
    public string? OutPath { get; set; }

    /// <summary>The curve: parameter values, losses, and the tangent at <see cref="Center"/>.</summary>
    public sealed record Curve(double Center, double LossAtCenter, double BackpropSlope, double[] Values, double[] Losses);

    /// <summary>The Paris point's loss for m = (1, m2, −1), b = 0, by the library (forward only).</summary>
    public static double Loss(double m2)
    {
        using var _ = Tensor.NoGrad();
        var m = Tensor.FromArray(new[] { 1.0, m2, -1 });
        var logits = (CitiesExample.ParisX * m).Unsqueeze(0);
        return NN.Loss.CrossEntropy(logits, Tensor.FromArray(new long[] { 1 })).ItemDouble();
    }

    /// <summary>Loss and backprop's dL/dm2 at m2 = <paramref name="center"/>; the loss at center ± k·step for k = 0..<paramref name="half"/>.</summary>
    public static Curve Compute(double center = 0, double step = 0.1, int half = 20)
    {
        var m = Tensor.FromArray(new[] { 1.0, center, -1 }).RequiresGrad_();
        var b = Tensor.Zeros([3], DType.Float64).RequiresGrad_();
        var loss = NN.Loss.CrossEntropy((CitiesExample.ParisX * m + b).Unsqueeze(0), Tensor.FromArray(new long[] { 1 }));
        loss.Backward();
        var values = Enumerable.Range(-half, 2 * half + 1).Select(k => center + k * step).ToArray();
        return new Curve(center, loss.ItemDouble(), m.Grad!.GetDouble(1), values, values.Select(Loss).ToArray());
    }

    /// <inheritdoc/>
    public override void Run(TextWriter o)
    {
        var c = Compute();
        o.WriteLine("The loss landscape along one parameter: the cities example (a Paris point, x = 2.3514; m = (1, m2, -1), b = 0),");
        o.WriteLine("loss = -log softmax(m * x)[Paris] as m2 moves around its value 0, and the tangent with backprop's slope.");
        o.WriteLine();
        o.WriteLine($"  backprop: dL/dm2 at m2 = {F(c.Center, 1)} is {G(c.BackpropSlope)} (loss {G(c.LossAtCenter)})");
        o.WriteLine();
        o.WriteLine("        m2          loss       tangent");
        for (int i = 0; i < c.Values.Length; i++)
            o.WriteLine($"  {c.Values[i],8:F2}  {G(c.Losses[i]),12}  {G(c.LossAtCenter + c.BackpropSlope * (c.Values[i] - c.Center)),12}");
        int mid = c.Values.Length / 2;
        double h = c.Values[mid + 1] - c.Values[mid];
        double central = (c.Losses[mid + 1] - c.Losses[mid - 1]) / (2 * h);
        double fourPoint = (-c.Losses[mid + 2] + 8 * c.Losses[mid + 1] - 8 * c.Losses[mid - 1] + c.Losses[mid - 2]) / (12 * h);
        o.WriteLine();
        o.WriteLine($"  from the table: (L({F(c.Center + h, 1)}) - L({F(c.Center - h, 1)})) / {F(2 * h, 1)} = {G(central)}; the 4-point difference gives {G(fourPoint)}");
        o.WriteLine($"  backprop's slope {G(c.BackpropSlope)}: the curve falls to the right, so gradient descent raises m2.");
        if (OutPath == null)
        {
            o.WriteLine("  (add --out FILE.png to draw the curve and the tangent)");
            return;
        }
        var files = Draw(c, OutPath);
        o.WriteLine($"  drawn: {string.Join(", ", files)}");
    }

    /// <summary>The curve, the tangent over the middle half of the range, and the point of tangency.</summary>
    public static string[] Draw(Curve c, string path)
    {
        var plot = new ScottPlot.Plot();
        var curve = plot.Add.ScatterLine(c.Values, c.Losses, Palette.Hsl(210, 0.8, 0.4).ToScott());
        curve.LegendText = "loss(m2)";
        curve.LineWidth = 2;
        double span = (c.Values[^1] - c.Values[0]) / 4;
        var tx = new[] { c.Center - span, c.Center + span };
        var tangent = plot.Add.ScatterLine(tx, tx.Select(v => c.LossAtCenter + c.BackpropSlope * (v - c.Center)).ToArray(), Palette.Hsl(0, 0.8, 0.45).ToScott());
        tangent.LegendText = $"tangent, slope dL/dm2 = {G(c.BackpropSlope)} (backprop)";
        tangent.LineWidth = 2;
        plot.Add.Marker(c.Center, c.LossAtCenter, ScottPlot.MarkerShape.FilledCircle, 9, ScottPlot.Colors.Black);
        plot.Title("cities: loss of a Paris point against m2");
        plot.XLabel("m2 (Paris's slope)");
        plot.YLabel("cross-entropy loss");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        return Charts.Save(plot, path, svg: true);
    }

    private static string G(double v) => v.ToString("F8", CultureInfo.InvariantCulture);
}
