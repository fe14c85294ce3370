using System.Globalization;
using Backprop.Cli.Training;
using Backprop.Data;
using Backprop.NN;

namespace Backprop.Cli.Explain;

/// <summary>
/// Which weights and biases the cost is most sensitive to: the mean over examples of |∂C_x/∂w| for a
/// trained classifier (a small digit network trained on the spot, or <see cref="CheckpointPath"/>),
/// the top 20 with their layers; then, for one example, the "nudges" the last layer asks of the
/// previous layer's activations: ∂C/∂a_k = Σ_j w_jk · ∂C/∂z_j, the sum over the output neurons.
/// </summary>
public sealed class SensitivityExample : WorkedExample
{
    /// <inheritdoc/>
    public override string Name => "sensitivity";

    /// <inheritdoc/>
    public override string Summary => "the 20 weights and biases the cost is most sensitive to, and the nudges the last layer asks of the one before (--checkpoint PATH)";

    /// <summary>A checkpoint written by <c>backprop train</c>, or null to train a small digit network first.</summary>
    public string? CheckpointPath { get; set; }

    /// <summary>Training examples the sensitivities are averaged over.</summary>
    public int Samples { get; set; } = 500;

    /// <summary>The test example whose nudges are shown (null: the first one the model gets wrong, else 0).</summary>
    public int? Example { get; set; }

    /// <summary>One parameter entry: its name and index, its layer, mean |∂C_x/∂w| and the mean ∂C_x/∂w (the cost's own gradient).</summary>
    public sealed record Entry(string Parameter, int[] Index, int Layer, string LayerKind, double MeanAbs, double Mean, double Value);

    /// <summary>The nudges of one example.</summary>
    /// <param name="DCdZ">∂C/∂z of each output neuron (logit).</param>
    /// <param name="Terms">Terms[j, k] = w_jk · ∂C/∂z_j: what output neuron j asks of activation k.</param>
    /// <param name="DCdA">∂C/∂a_k computed by the sum over j.</param>
    /// <param name="Autograd">∂C/∂a_k from the library's backward pass, for comparison.</param>
    public sealed record Nudges(int Label, int Predicted, double[] Output, double[] Activations, double[] DCdZ, double[,] Terms, double[] DCdA, double[] Autograd);

    /// <summary>Mean |∂C_x/∂θ| over the first <paramref name="samples"/> examples of <paramref name="data"/>, each example's cost alone; all entries, largest first.</summary>
    public static List<Entry> Sensitivities(Sequential model, TensorDataset data, string loss, int classes, int samples)
    {
        var named = model.NamedParameters().ToList();
        var sumAbs = named.Select(p => new double[p.Param.NumElements]).ToArray();
        var sum = named.Select(p => new double[p.Param.NumElements]).ToArray();
        int n = Math.Min(samples, data.Count);
        var x = data.Inputs.Reshape(data.Count, -1);
        for (int i = 0; i < n; i++)
        {
            model.ZeroGrad(setToNone: true);
            using var scope = Tensor.Scope();
            Cost(model.Forward(x.Narrow(0, i, 1)), data.Targets.Narrow(0, i, 1), loss, classes).Backward();
            for (int p = 0; p < named.Count; p++)
            {
                var g = named[p].Param.Grad!.ToDoubleArray();
                for (int k = 0; k < g.Length; k++)
                {
                    sumAbs[p][k] += Math.Abs(g[k]);
                    sum[p][k] += g[k];
                }
            }
        }
        model.ZeroGrad(setToNone: true);
        var entries = new List<Entry>();
        for (int p = 0; p < named.Count; p++)
        {
            var (name, param) = named[p];
            var values = param.ToDoubleArray();
            int layer = int.TryParse(name.Split('.')[0], NumberStyles.None, CultureInfo.InvariantCulture, out int l) ? l : -1;
            string kind = layer >= 0 ? model[layer].GetType().Name : "";
            var shape = param.Shape.ToArray();
            for (int k = 0; k < values.Length; k++)
                entries.Add(new Entry(name, Unravel(k, shape), layer, kind, sumAbs[p][k] / n, sum[p][k] / n, values[k]));
        }
        entries.Sort((a, b) => b.MeanAbs.CompareTo(a.MeanAbs));
        return entries;
    }

    private static int[] Unravel(int flat, int[] shape)
    {
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            idx[d] = flat % shape[d];
            flat /= shape[d];
        }
        return idx;
    }

    private static Tensor Cost(Tensor output, Tensor target, string loss, int classes) => loss == "mse"
        ? NN.Loss.Mse(output, Tensor.OneHot(target, classes, output.DType))
        : NN.Loss.CrossEntropy(output, target);

    /// <summary>
    /// The nudges the last (linear) layer asks of its input activations for example <paramref name="index"/>:
    /// ∂C/∂z from the backward pass, each output neuron's term w_jk·∂C/∂z_j, their sum, and autograd's ∂C/∂a.
    /// </summary>
    public static Nudges NudgesOf(Sequential model, TensorDataset data, int index, string loss, int classes)
    {
        if (model[model.Count - 1] is not Linear last)
            throw new CliException($"explain sensitivity: the model's last layer is {model[model.Count - 1].GetType().Name}; the nudges need a linear output layer.");
        var x = data.Inputs.Reshape(data.Count, -1).Narrow(0, index, 1);
        var y = data.Targets.Narrow(0, index, 1);
        Tensor a;
        using (Tensor.NoGrad())
        {
            a = x;
            for (int i = 0; i < model.Count - 1; i++) a = model[i].Forward(a);
        }
        a = a.Detach().RequiresGrad_();
        var z = last.Forward(a).RetainGrad();
        Cost(z, y, loss, classes).Backward();
        var dz = z.Grad!.ToDoubleArray();
        var w = last.Weight.ToDoubleArray();
        int outs = last.OutFeatures, ins = last.InFeatures;
        var terms = new double[outs, ins];
        var sum = new double[ins];
        for (int j = 0; j < outs; j++)
            for (int k = 0; k < ins; k++)
            {
                terms[j, k] = w[j * ins + k] * dz[j];
                sum[k] += terms[j, k];
            }
        var output = z.Detach().ToDoubleArray();
        int predicted = Array.IndexOf(output, output.Max());
        model.ZeroGrad(setToNone: true);
        return new Nudges((int)y.ToLongArray()[0], predicted, output, a.Detach().ToDoubleArray(), dz, terms, sum, a.Grad!.ToDoubleArray());
    }

    /// <inheritdoc/>
    public override void Run(TextWriter o)
    {
        Trainer trainer;
        if (CheckpointPath == null)
        {
            var options = new TrainOptions
            {
                Dataset = "digits", Model = "mlp:64-16-16-10", Activation = "sigmoid", Optimizer = "adam", Lr = 0.01, BatchSize = 32, Epochs = 8, Seed = 1,
            };
            trainer = new Trainer(options);
            for (int e = 0; e < options.Epochs; e++) trainer.TrainEpoch();
            o.WriteLine($"A digit network like the 784-16-16-10 one, on the built-in 8x8 digits: {options.Model} sigmoid, trained for {options.Epochs} epochs (adam, lr 0.01).");
        }
        else
        {
            trainer = LoadTrainer(CheckpointPath);
            var options = trainer.Options;
            o.WriteLine($"The model of {CheckpointPath}: {trainer.Spec} {options.Activation} on {options.Dataset}, after {trainer.EpochsDone} epoch(s).");
        }
        var (_, accuracy) = trainer.Evaluate(trainer.Test);
        o.WriteLine($"Test accuracy {F(100 * accuracy, 2)}%; cost C = {trainer.Options.Loss}; {trainer.Model.NumParameters()} weights and biases.");
        o.WriteLine();
        var model = trainer.Model;
        var all = Sensitivities(model, trainer.Train, trainer.Options.Loss, trainer.Classes, Samples);
        int n = Math.Min(Samples, trainer.Train.Count);
        o.WriteLine($"The 20 the cost is most sensitive to: mean |dC_x/dw| over {n} training examples x (each example's cost alone),");
        o.WriteLine("and the mean of dC_x/dw itself (the gradient of the average cost, what one full-batch step follows):");
        o.WriteLine();
        o.WriteLine("   #  parameter             layer                                    value   mean |dC/dw|      mean dC/dw");
        var linearIndex = new Dictionary<int, int>();
        for (int i = 0, k = 0; i < model.Count; i++) if (model[i] is Linear) linearIndex[i] = ++k;
        foreach (var (e, r) in all.Take(20).Select((e, r) => (e, r + 1)))
        {
            string what = e.Index.Length == 2
                ? $"from {(linearIndex.GetValueOrDefault(e.Layer) == 1 ? "input" : "neuron")} {e.Index[1]} to neuron {e.Index[0]}"
                : $"bias of neuron {e.Index[0]}";
            string layer = $"{e.LayerKind} {linearIndex.GetValueOrDefault(e.Layer)}: {what}";
            string name = $"{e.Parameter}[{string.Join(",", e.Index)}]";
            o.WriteLine($"  {r,2}  {name,-20}  {layer,-38} {F(e.Value, 4),8}   {E(e.MeanAbs),12}   {E(e.Mean),13}");
        }
        var byLayer = all.GroupBy(e => e.Parameter).Select(g => (g.Key, Mean: g.Average(e => e.MeanAbs), Top: all.Take(20).Count(t => t.Parameter == g.Key)));
        o.WriteLine();
        o.WriteLine("  per parameter tensor: mean of mean |dC/dw|, and how many of the top 20 it holds:");
        foreach (var (name, mean, top) in byLayer) o.WriteLine($"    {name,-10} {E(mean),12}   {top,2}");

        int ex = Example is int given
            ? given < trainer.Test.Count ? given : throw new CliException($"--example {given}: the test set of {trainer.Options.Dataset} has {trainer.Test.Count} examples (0 to {trainer.Test.Count - 1}).")
            : FirstWrong(model, trainer.Test);
        var nd = NudgesOf(model, trainer.Test, ex, trainer.Options.Loss, trainer.Classes);
        int outs = nd.DCdZ.Length, ins = nd.DCdA.Length;
        o.WriteLine();
        o.WriteLine($"Nudges for test example {ex} (a {ClassName(trainer, nd.Label)}, predicted {ClassName(trainer, nd.Predicted)}{(Example == null ? "; the first one the model gets wrong, --example N for another" : "")}):");
        o.WriteLine("  each output neuron j wants its value z_j to move by -dC/dz_j (up for the right class, down for the others):");
        o.WriteLine("    " + string.Join("  ", Enumerable.Range(0, outs).Select(j => $"{ClassName(trainer, j)}: {F(-nd.DCdZ[j], 4)}")));
        o.WriteLine("  and so asks each activation a_k of the layer before to move by -w_jk * dC/dz_j; the nudge of a_k is the sum");
        o.WriteLine($"  over the output neurons, -dC/da_k = -sum_j w_jk * dC/dz_j (the {ClassName(trainer, nd.Label)} neuron's wish and the largest other one shown):");
        o.WriteLine();
        o.WriteLine("     k       a_k   from the right class    largest other (from)   -dC/da_k (sum)   autograd");
        double maxDiff = 0;
        for (int k = 0; k < ins; k++)
        {
            int other = Enumerable.Range(0, outs).Where(j => j != nd.Label).MaxBy(j => Math.Abs(nd.Terms[j, k]));
            o.WriteLine($"    {k,2}  {F(nd.Activations[k], 4),8}   {F(-nd.Terms[nd.Label, k], 5),20}   {F(-nd.Terms[other, k], 5),14} ({"neuron " + ClassName(trainer, other),-9})   {F(-nd.DCdA[k], 5),14}   {F(-nd.Autograd[k], 5),8}");
            maxDiff = Math.Max(maxDiff, Math.Abs(nd.DCdA[k] - nd.Autograd[k]));
        }
        o.WriteLine();
        o.WriteLine($"  the sums agree with autograd's dC/da to {E(maxDiff)}.");
        o.WriteLine("  The activation cannot move by itself: these nudges become, one layer further back, the wishes that");
        o.WriteLine("  that layer's weights, biases and activations receive; backprop repeats the step down to the input.");
    }

    /// <summary>The trainer (model, data, options) of a checkpoint written by <c>backprop train</c>, or a one-line error.</summary>
    internal static Trainer LoadTrainer(string path)
    {
        var checkpoint = TrainCommand.LoadCheckpoint(path, "--checkpoint");
        var options = TrainCommand.RecordedOptions(checkpoint, path, "--checkpoint");
        try
        {
            var trainer = new Trainer(options);
            trainer.Restore(checkpoint);
            return trainer;
        }
        catch (Backprop.IO.CheckpointMismatchException e)
        {
            throw new CliException($"--checkpoint {e.Message}");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or DataFormatException or InvalidDataException)
        {
            throw new CliException($"--checkpoint {path}: {options.Dataset}: {Cli.OneLine(e.Message)}");
        }
    }

    /// <summary>The first example the model classifies wrongly, or 0.</summary>
    private static int FirstWrong(Sequential model, TensorDataset data)
    {
        using var _ = Tensor.NoGrad();
        var predicted = model.Forward(data.Inputs.Reshape(data.Count, -1)).Argmax(1).ToLongArray();
        var truth = data.Targets.ToLongArray();
        for (int i = 0; i < truth.Length; i++) if (predicted[i] != truth[i]) return i;
        return 0;
    }

    private static string ClassName(Trainer t, int c) => t.Test.ClassNames is { } names && c < names.Count ? names[c] : c.ToString(CultureInfo.InvariantCulture);

    private static string E(double v) => v.ToString("0.000E+00", CultureInfo.InvariantCulture);
}
