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
    public override string Summary => "the cities example's loss against m2 (or --checkpoint PATH --param NAME[i,j]) around its value, and the tangent backprop computed (--out FILE.png draws it)";

    /// <summary>Where to draw the curve (PNG, with an SVG beside it), or null for the numbers only.</summary>
    public string? OutPath { get; set; }

    /// <summary>With <see cref="Parameter"/>: the model of this checkpoint instead of the cities example.</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>The parameter entry of the checkpoint's model, as NAME[i,j] (e.g. 0.weight[3,5]) or NAME[i].</summary>
    public string? Parameter { get; set; }

    /// <summary>Training examples the checkpoint model's loss is averaged over.</summary>
    public int Samples { get; set; } = 500;

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

    /// <summary>
    /// The mean loss of <paramref name="model"/> over the first <paramref name="samples"/> examples of
    /// <paramref name="data"/> as entry <paramref name="index"/> of parameter <paramref name="name"/>
    /// moves by k·step (k = −half..half) around its value, and backprop's slope at the value. The
    /// parameter is restored afterwards.
    /// </summary>
    public static Curve ComputeFor(Module model, Backprop.Data.TensorDataset data, Func<Tensor, Tensor, Tensor> loss, string name, int[] index,
        int samples, double step = 0.05, int half = 20)
    {
        var p = model.NamedParameters().FirstOrDefault(n => n.Name == name).Param
            ?? throw new CliException($"--param {name}: the model has no such parameter; it has {string.Join(", ", model.NamedParameters().Select(n => $"{n.Name} [{string.Join("x", n.Param.Shape.ToArray())}]"))}.");
        var shape = p.Shape.ToArray();
        if (index.Length != shape.Length || index.Where((v, d) => v < 0 || v >= shape[d]).Any())
            throw new CliException($"--param {name}[{string.Join(",", index)}]: {name} has shape [{string.Join("x", shape)}]; give {shape.Length} index(es) within it, e.g. {name}[{string.Join(",", shape.Select(_ => 0))}].");
        int flat = 0;
        for (int d = 0; d < shape.Length; d++) flat = flat * shape[d] + index[d];
        int n = Math.Min(samples, data.Count);
        var x = data.Inputs.Reshape(data.Count, -1).Narrow(0, 0, n);
        var y = data.Targets.Narrow(0, 0, n);
        var saved = p.ToDoubleArray();
        double center = saved[flat];
        model.ZeroGrad(setToNone: true);
        var l0 = loss(model.Forward(x), y);
        l0.Backward();
        double slope = p.Grad!.ToDoubleArray()[flat];
        model.ZeroGrad(setToNone: true);
        var values = Enumerable.Range(-half, 2 * half + 1).Select(k => center + k * step).ToArray();
        var losses = new double[values.Length];
        using (Tensor.NoGrad())
        {
            try
            {
                for (int i = 0; i < values.Length; i++)
                {
                    var moved = (double[])saved.Clone();
                    moved[flat] = values[i];
                    p.CopyFrom(Tensor.FromArray(moved, shape).To(p.DType));
                    losses[i] = loss(model.Forward(x), y).ItemDouble();
                }
            }
            finally
            {
                p.CopyFrom(Tensor.FromArray(saved, shape).To(p.DType));
            }
        }
        return new Curve(center, l0.ItemDouble(), slope, values, losses);
    }

    /// <summary>Parses NAME[i,j] (or NAME[i]) into the name and the index.</summary>
    internal static (string Name, int[] Index) ParseParameter(string text)
    {
        int open = text.IndexOf('[');
        if (open <= 0 || !text.EndsWith(']'))
            throw new CliException($"--param '{text}': expected NAME[i,j] or NAME[i], e.g. 0.weight[3,5] or 2.bias[1].");
        var parts = text[(open + 1)..^1].Split(',');
        var index = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out index[i]))
                throw new CliException($"--param '{text}': '{parts[i]}' is not a non-negative integer index.");
        return (text[..open], index);
    }

    /// <inheritdoc/>
    public override void Run(TextWriter o)
    {
        if ((CheckpointPath == null) != (Parameter == null))
            throw new CliException("explain landscape: --checkpoint PATH and --param NAME[i,j] go together (neither: the cities example).");
        if (CheckpointPath != null) RunCheckpoint(o);
        else RunCities(o);
    }

    private void RunCheckpoint(TextWriter o)
    {
        var (name, index) = ParseParameter(Parameter!);
        var trainer = SensitivityExample.LoadTrainer(CheckpointPath!);
        string lossName = trainer.Options.Loss;
        int classes = trainer.Classes;
        Tensor Loss(Tensor output, Tensor target) => lossName == "mse"
            ? NN.Loss.Mse(output, Tensor.OneHot(target, classes, output.DType))
            : NN.Loss.CrossEntropy(output, target);
        var c = ComputeFor(trainer.Model, trainer.Train, Loss, name, index, Samples);
        string label = $"{name}[{string.Join(",", index)}]";
        o.WriteLine($"The loss landscape along one parameter: {label} of {CheckpointPath} ({trainer.Spec} {trainer.Options.Activation} on {trainer.Options.Dataset}),");
        o.WriteLine($"the mean {lossName} loss over the first {Math.Min(Samples, trainer.Train.Count)} training examples as {label} moves around its value, and the tangent with backprop's slope.");
        WriteTable(o, c, label);
        if (OutPath != null)
            o.WriteLine($"  drawn: {string.Join(", ", Draw(c, OutPath, label, $"{trainer.Options.Dataset}: loss against {label}", $"mean {lossName} loss"))}");
        else
            o.WriteLine("  (add --out FILE.png to draw the curve and the tangent)");
    }

    private static void WriteTable(TextWriter o, Curve c, string label)
    {
        o.WriteLine();
        o.WriteLine($"  backprop: dL/d{label} at {G(c.Center)} is {G(c.BackpropSlope)} (loss {G(c.LossAtCenter)})");
        o.WriteLine();
        o.WriteLine($"  {label,14}          loss       tangent");
        for (int i = 0; i < c.Values.Length; i++)
            o.WriteLine($"  {G(c.Values[i]),14}  {G(c.Losses[i]),12}  {G(c.LossAtCenter + c.BackpropSlope * (c.Values[i] - c.Center)),12}");
        int mid = c.Values.Length / 2;
        double h = c.Values[mid + 1] - c.Values[mid];
        double central = (c.Losses[mid + 1] - c.Losses[mid - 1]) / (2 * h);
        double fourPoint = (-c.Losses[mid + 2] + 8 * c.Losses[mid + 1] - 8 * c.Losses[mid - 1] + c.Losses[mid - 2]) / (12 * h);
        o.WriteLine();
        o.WriteLine($"  from the table: the central difference over +-{F(h, 2)} is {G(central)}; the 4-point difference gives {G(fourPoint)}; backprop: {G(c.BackpropSlope)}");
    }

    private void RunCities(TextWriter o)
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
        var files = Draw(c, OutPath, "m2", "cities: loss of a Paris point against m2", "cross-entropy loss");
        o.WriteLine($"  drawn: {string.Join(", ", files)}");
    }

    /// <summary>The curve, the tangent over the middle half of the range, and the point of tangency.</summary>
    public static string[] Draw(Curve c, string path, string parameter, string title, string yLabel)
    {
        var plot = new ScottPlot.Plot();
        var curve = plot.Add.ScatterLine(c.Values, c.Losses, Palette.Hsl(210, 0.8, 0.4).ToScott());
        curve.LegendText = $"loss({parameter})";
        curve.LineWidth = 2;
        double span = (c.Values[^1] - c.Values[0]) / 4;
        var tx = new[] { c.Center - span, c.Center + span };
        var tangent = plot.Add.ScatterLine(tx, tx.Select(v => c.LossAtCenter + c.BackpropSlope * (v - c.Center)).ToArray(), Palette.Hsl(0, 0.8, 0.45).ToScott());
        tangent.LegendText = $"tangent, slope dL/d{parameter} = {G(c.BackpropSlope)} (backprop)";
        tangent.LineWidth = 2;
        plot.Add.Marker(c.Center, c.LossAtCenter, ScottPlot.MarkerShape.FilledCircle, 9, ScottPlot.Colors.Black);
        plot.Title(title);
        plot.XLabel(parameter == "m2" ? "m2 (Paris's slope)" : parameter);
        plot.YLabel(yLabel);
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        return Charts.Save(plot, path, svg: true);
    }

    private static string G(double v) => v.ToString("F8", CultureInfo.InvariantCulture);
}
