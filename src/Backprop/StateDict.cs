using System.Text.Json.Nodes;

namespace Backprop;

/// <summary>
/// Named tensors plus JSON metadata: what a module, optimizer, schedule or data loader needs to
/// save and restore its state. Checkpoints store the tensors in safetensors and the metadata as JSON.
/// </summary>
public sealed class StateDict
{
    /// <summary>Tensors by stable dotted name, in insertion order (e.g. "layers.0.weight").</summary>
    public OrderedDictionary<string, Tensor> Tensors { get; } = new();

    /// <summary>Non-tensor state: step counts, hyperparameters, RNG words, positions.</summary>
    public JsonObject Meta { get; } = new();

    /// <summary>The tensor stored under <paramref name="name"/>.</summary>
    public Tensor this[string name] => Tensors.TryGetValue(name, out var t)
        ? t
        : throw new KeyNotFoundException($"StateDict: no tensor named '{name}' (have: {string.Join(", ", Tensors.Keys.Take(20))}{(Tensors.Count > 20 ? ", ..." : "")}).");

    /// <summary>Adds or replaces a tensor.</summary>
    public void Add(string name, Tensor tensor) => Tensors[name] = tensor;

    /// <summary>Number of tensors.</summary>
    public int Count => Tensors.Count;

    /// <summary>Tensor names.</summary>
    public IEnumerable<string> Keys => Tensors.Keys;

    /// <summary>Copies the tensors under a prefix ("prefix.name") and the metadata under Meta[prefix] into <paramref name="target"/>.</summary>
    public void CopyInto(StateDict target, string prefix)
    {
        foreach (var (k, v) in Tensors) target.Tensors[$"{prefix}.{k}"] = v;
        if (Meta.Count > 0) target.Meta[prefix] = Meta.DeepClone();
    }

    /// <summary>The part of this dict stored under <paramref name="prefix"/> by <see cref="CopyInto"/>.</summary>
    public StateDict Extract(string prefix)
    {
        var r = new StateDict();
        string p = prefix + ".";
        foreach (var (k, v) in Tensors)
            if (k.StartsWith(p, StringComparison.Ordinal)) r.Tensors[k[p.Length..]] = v;
        if (Meta[prefix] is JsonObject m)
            foreach (var (k, v) in m) r.Meta[k] = v?.DeepClone();
        return r;
    }
}
