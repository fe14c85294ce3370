using System.Globalization;
using System.Text;

namespace Backprop.NN;

/// <summary>One line of a <see cref="ModuleSummary"/>: a module, its output shape and its own parameters.</summary>
/// <param name="Name">Dotted name in the model ("" for the model itself), as in <see cref="Module.NamedModules"/>.</param>
/// <param name="Type">The module's type name.</param>
/// <param name="Depth">Nesting depth: 0 for the model, 1 for its children, ...</param>
/// <param name="OutputShape">Shape of the module's output in the summary's forward pass; null when the module was not called through <see cref="Module.Call"/>.</param>
/// <param name="Params">Parameter elements held by this module itself (not by its submodules).</param>
/// <param name="Calls">How many times the module ran in the pass (a module reused twice ran twice; the shape is the first call's).</param>
public sealed record ModuleSummaryRow(string Name, string Type, int Depth, Shape? OutputShape, long Params, int Calls);

/// <summary>
/// A torchinfo-like table of a model: every module (depth first, as <see cref="Module.NamedModules"/> lists
/// them) with its output shape for one input and its parameter count, then the totals. Made by
/// <see cref="ModuleSummaryExtensions.Summary(Module, int[])"/>; <see cref="ToString"/> is the table.
/// </summary>
public sealed class ModuleSummary
{
    internal ModuleSummary(Shape inputShape, Shape outputShape, IReadOnlyList<ModuleSummaryRow> rows, long totalParams, long trainableParams)
    {
        InputShape = inputShape;
        OutputShape = outputShape;
        Rows = rows;
        TotalParams = totalParams;
        TrainableParams = trainableParams;
    }

    /// <summary>The shape the model was run on.</summary>
    public Shape InputShape { get; }

    /// <summary>The model's output shape.</summary>
    public Shape OutputShape { get; }

    /// <summary>One row per module, the model first.</summary>
    public IReadOnlyList<ModuleSummaryRow> Rows { get; }

    /// <summary>Parameter elements of the model (each shared parameter once).</summary>
    public long TotalParams { get; }

    /// <summary>Parameter elements that require gradients.</summary>
    public long TrainableParams { get; }

    /// <summary>Parameter elements that do not require gradients (frozen).</summary>
    public long NonTrainableParams => TotalParams - TrainableParams;

    /// <summary>The table: layer (indented by depth), type, output shape, parameters; then the totals.</summary>
    public override string ToString()
    {
        static string Count(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
        var names = Rows.Select(r => new string(' ', 2 * r.Depth) + (r.Depth == 0 ? "(model)" : r.Name)).ToArray();
        var shapes = Rows.Select(r => r.OutputShape?.ToString() ?? "--").ToArray();
        var pars = Rows.Select(r => r.Params == 0 && Rows.Any(o => o.Depth > r.Depth && IsUnder(o.Name, r.Name)) ? "--" : Count(r.Params)).ToArray();
        int w0 = Math.Max(5, names.Max(n => n.Length)), w1 = Math.Max(4, Rows.Max(r => r.Type.Length)),
            w2 = Math.Max(12, shapes.Max(s => s.Length)), w3 = Math.Max(6, pars.Max(p => p.Length));
        int width = w0 + w1 + w2 + w3 + 6;
        var sb = new StringBuilder();
        sb.Append("Layer".PadRight(w0)).Append("  ").Append("Type".PadRight(w1)).Append("  ")
          .Append("Output shape".PadRight(w2)).Append("  ").Append("Params".PadLeft(w3)).Append('\n');
        sb.Append('=', width).Append('\n');
        for (int i = 0; i < Rows.Count; i++)
            sb.Append(names[i].PadRight(w0)).Append("  ").Append(Rows[i].Type.PadRight(w1)).Append("  ")
              .Append(shapes[i].PadRight(w2)).Append("  ").Append(pars[i].PadLeft(w3)).Append('\n');
        sb.Append('=', width).Append('\n');
        sb.Append("Input shape: ").Append(InputShape).Append('\n');
        sb.Append("Output shape: ").Append(OutputShape).Append('\n');
        sb.Append("Total params: ").Append(Count(TotalParams)).Append('\n');
        sb.Append("Trainable params: ").Append(Count(TrainableParams)).Append('\n');
        sb.Append("Non-trainable params: ").Append(Count(NonTrainableParams)).Append('\n');
        return sb.ToString();
    }

    private static bool IsUnder(string name, string parent) => parent.Length == 0 || name.StartsWith(parent + ".", StringComparison.Ordinal);
}

/// <summary><see cref="Module"/>.Summary: the model's layers, output shapes and parameter counts.</summary>
public static class ModuleSummaryExtensions
{
    /// <summary>
    /// Runs one forward pass of <paramref name="model"/> on zeros of <paramref name="inputShape"/> (float32,
    /// or the dtype of the model's parameters), without recording gradients and in evaluation mode (the
    /// modes are restored after), with forward hooks on every module, and returns the table:
    /// <c>Console.WriteLine(model.Summary(1, 784));</c>. Modules that a parent runs with
    /// <c>Forward</c> rather than <see cref="Module.Call"/> are listed without an output shape.
    /// </summary>
    public static ModuleSummary Summary(this Module model, params int[] inputShape)
    {
        ArgumentNullException.ThrowIfNull(model);
        var dtype = model.Parameters().Select(p => (DType?)p.DType).FirstOrDefault() ?? DType.Float32;
        return model.Summary(inputShape, dtype);
    }

    /// <summary>As <see cref="Summary(Module, int[])"/>, with zeros of <paramref name="dtype"/> (int64 for an <see cref="Embedding"/> first layer).</summary>
    public static ModuleSummary Summary(this Module model, int[] inputShape, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputShape);
        var modules = model.NamedModules().ToList();
        var shapes = new Shape?[modules.Count];
        var calls = new int[modules.Count];
        var handles = new List<IDisposable>(modules.Count);
        var modes = modules.Select(m => m.Module.Training).ToArray();
        var index = new Dictionary<Module, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < modules.Count; i++)
        {
            if (!index.TryAdd(modules[i].Module, i)) continue;   // a module reachable twice is listed under its first name
            int row = i;
            handles.Add(modules[i].Module.RegisterForwardHook((m, input, output) =>
            {
                shapes[row] ??= output.Shape;
                calls[row]++;
            }));
        }
        Tensor y;
        try
        {
            model.Eval();
            var x = Tensor.Zeros(inputShape, dtype);
            using (Tensor.NoGrad()) y = model.Call(x);
        }
        finally
        {
            foreach (var h in handles) h.Dispose();
            // pre-order: each call sets a subtree, later ones correct its descendants
            for (int i = 0; i < modules.Count; i++) modules[i].Module.Train(modes[i]);
        }
        var rows = new List<ModuleSummaryRow>(modules.Count);
        var depth = new int[modules.Count];
        for (int i = 0; i < modules.Count; i++)
        {
            var (name, m) = modules[i];
            // depth: one more than the nearest earlier module whose name is a prefix (a list field "layers.0" sits directly under its owner)
            for (int k = i - 1; k >= 0 && i > 0; k--)
                if (modules[k].Name.Length == 0 || name.StartsWith(modules[k].Name + ".", StringComparison.Ordinal))
                {
                    depth[i] = depth[k] + 1;
                    break;
                }
            long own = m.NamedParameters().Where(p => !p.Name.Contains('.', StringComparison.Ordinal)).Sum(p => (long)p.Param.NumElements);
            rows.Add(new ModuleSummaryRow(name, m.GetType().Name, depth[i], shapes[i], own, calls[i]));
        }
        var ps = model.Parameters().ToList();
        return new ModuleSummary(new Shape(inputShape), y.Shape, rows, ps.Sum(p => (long)p.NumElements), ps.Where(p => p.RequiresGrad).Sum(p => (long)p.NumElements));
    }
}
