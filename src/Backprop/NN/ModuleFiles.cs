using Backprop.IO;

namespace Backprop.NN;

/// <summary>
/// <c>model.Save(path)</c> and <c>model.Load(path)</c>: a model's weights (parameters and buffers) as
/// a safetensors file, under the state-dict names PyTorch gives the same model (<c>0.weight</c>,
/// <c>fc1.bias</c>), so weights move between Backprop and PyTorch (<c>safetensors.torch.save_file(
/// model.state_dict(), path)</c> and <c>load_file</c>) in both directions.
/// </summary>
public static class ModuleFiles
{
    /// <summary>
    /// Writes the model's parameters and buffers (<see cref="Module.StateDict"/>) to a safetensors file,
    /// atomically: a crash leaves the previous file intact. Weights only: for an optimizer, a schedule
    /// or a loader's position as well, use <see cref="Checkpoint.Save(string, Module, Optim.Optimizer?, Optim.LrScheduler?, Data.DataLoader?, IEnumerable{KeyValuePair{string, Generator}}?, int?, long, bool)"/>.
    /// </summary>
    public static void Save(this Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        // "format": "pt" is what PyTorch's safetensors writer records; Hugging Face loaders look for it.
        SafeTensors.Save(path, model.StateDict().Tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// Copies weights from a safetensors file into the model: one written by <see cref="Save"/>, by
    /// PyTorch's safetensors writer for the same architecture, or a Backprop checkpoint (its model
    /// part). Shapes and dtypes must match; with <paramref name="strict"/> (the default) every
    /// parameter and buffer must be in the file and the file must hold nothing else. Every problem
    /// is listed in one exception and nothing is changed unless all of it fits.
    /// </summary>
    /// <returns>The model, so that <c>var m = new Sequential(...).Load(path);</c> reads naturally.</returns>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    /// <exception cref="CheckpointFormatException">The file is not a well-formed safetensors file (or holds a dtype other than F32, F64, I64).</exception>
    /// <exception cref="CheckpointMismatchException">The weights do not fit the model; nothing was changed.</exception>
    public static T Load<T>(this T model, string path, bool strict = true) where T : Module
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        var file = SafeTensors.Load(path);
        var weights = new StateDict();
        bool checkpoint = file.Metadata.TryGetValue("format", out var format) && format == Checkpoint.Format;
        string prefix = CheckpointContent.ModelKey + ".";
        foreach (var (name, t) in file.Tensors)
            if (!checkpoint) weights.Add(name, t);
            else if (name.StartsWith(prefix, StringComparison.Ordinal)) weights.Add(name[prefix.Length..], t);

        var problems = new List<string>();
        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, target) in model.StateDict().Tensors)
        {
            known.Add(name);
            if (!weights.Tensors.TryGetValue(name, out var src))
            {
                if (strict) problems.Add($"missing '{name}' (the model has {Describe(target)})");
            }
            else if (!src.Shape.Equals(target.Shape) || src.DType != target.DType)
                problems.Add($"'{name}': the model has {Describe(target)}, the file {Describe(src)}");
        }
        if (strict)
            foreach (var (name, t) in weights.Tensors)
                if (!known.Contains(name)) problems.Add($"unexpected '{name}' ({Describe(t)}), which the model does not have");
        if (problems.Count > 0)
        {
            if (known.Count > 0 && weights.Count > 0 && !weights.Keys.Any(known.Contains))
                problems.Add($"no name matches: the model's are {Sample(known)}, the file's {Sample(weights.Keys)}");
            throw new CheckpointMismatchException(path, problems);
        }
        model.LoadStateDict(weights, strict);
        return model;
    }

    private static string Describe(Tensor t) => $"{t.Shape} {t.DType.Name()}";

    private static string Sample(IEnumerable<string> names)
    {
        var list = names.Take(4).ToList();
        return string.Join(", ", list) + (names.Skip(4).Any() ? ", ..." : "");
    }
}
