using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Backprop.IO;

/// <summary>
/// Saves and loads <see cref="CheckpointContent"/>: model, optimizer, schedule, data-loader position,
/// generator states and counters, in one safetensors file.
/// </summary>
/// <remarks>
/// <para>The file is a plain safetensors file, readable by any safetensors reader. Tensors are
/// named by component: <c>model.0.weight</c>, <c>optim.state.0.exp_avg</c>. The header's
/// <c>__metadata__</c> holds <c>format</c> = <c>backprop-checkpoint</c>, <c>format_version</c> = <c>1</c>
/// and <c>checkpoint</c>, a JSON document with the epoch and step, each component's metadata and
/// tensor count, the generator states (as decimal strings) and the caller's extra metadata.</para>
/// <para>One file rather than tensors plus a JSON sidecar, so that replacing a checkpoint is a
/// single atomic rename (<see cref="AtomicFile"/>): a crash or kill at any moment leaves either
/// the previous checkpoint or the new one, never a mix of two saves.</para>
/// </remarks>
public static partial class Checkpoint
{
    /// <summary>The value of the <c>format</c> metadata entry.</summary>
    public const string Format = "backprop-checkpoint";

    /// <summary>The format version written (and the newest one read).</summary>
    public const int FormatVersion = 1;

    /// <summary>
    /// Writes <paramref name="content"/> to <paramref name="path"/> atomically. With
    /// <paramref name="requireFinite"/>, a content whose floating-point tensors hold NaN or infinity is
    /// refused before anything is written, so the last good checkpoint is never replaced by a diverged one.
    /// </summary>
    /// <exception cref="InvalidOperationException"><paramref name="requireFinite"/> and a tensor is not finite (the file is untouched).</exception>
    public static void Save(string path, CheckpointContent content, bool requireFinite = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(content);
        if (requireFinite && FindNonFinite(content) is string bad)
            throw new InvalidOperationException($"Checkpoint.Save: tensor '{bad}' holds NaN or infinity; {path} was left as it was.");
        var (tensors, metadata) = Flatten(content);
        AtomicFile.Write(path, s => SafeTensors.Write(s, tensors, metadata));
    }

    /// <summary>Writes the checkpoint bytes of <paramref name="content"/> to a stream (not atomic: see <see cref="Save(string, CheckpointContent, bool)"/>).</summary>
    public static void Write(Stream stream, CheckpointContent content)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(content);
        var (tensors, metadata) = Flatten(content);
        SafeTensors.Write(stream, tensors, metadata);
    }

    /// <summary>The name ("component.tensor") of the first floating-point tensor holding NaN or infinity, or null.</summary>
    public static string? FindNonFinite(CheckpointContent content)
    {
        ArgumentNullException.ThrowIfNull(content);
        foreach (var (c, sd) in content.Components)
            foreach (var (name, t) in sd.Tensors)
                if (!Dispatch.AllFinite(t)) return $"{c}.{name}";
        return null;
    }

    /// <summary>
    /// Checks, before any training, that <see cref="Save(string, CheckpointContent, bool)"/> will be able to write <paramref name="path"/>:
    /// the name is not too long, the target (after following symbolic links) is a regular file or
    /// absent (never a directory, FIFO or device), and its folder exists or can be created and accepts
    /// new files. Returns the full path of the file a save replaces (the final target of a link).
    /// </summary>
    /// <exception cref="IOException">The path cannot be written; the message names it and says why.</exception>
    public static string ValidatePath(string path) => AtomicFile.ValidatePath(path);

    /// <summary>Reads a checkpoint written by <see cref="Save(string, CheckpointContent, bool)"/>.</summary>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/> (the message mentions temporary files of an interrupted first save).</exception>
    /// <exception cref="CheckpointFormatException">The path is a directory, FIFO or device, or the file is truncated, corrupt, or not a Backprop checkpoint.</exception>
    public static CheckpointContent Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (FileKinds.RefuseToRead(path) is string refused)
            throw new CheckpointFormatException($"checkpoint {Path.GetFullPath(path)} {refused}; give the checkpoint file written by a save.", path);
        if (!File.Exists(path))
        {
            var temps = AtomicFile.StaleTemporaries(path);
            throw new FileNotFoundException(
                $"checkpoint not found: {Path.GetFullPath(path)}" +
                (temps.Count > 0 ? $" (only {Path.GetFileName(temps[0])}, the incomplete temporary file of an interrupted save, is there)" : ""), path);
        }
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(file, path);
    }

    /// <summary>Reads checkpoint bytes from a seekable stream; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="CheckpointFormatException">The bytes are truncated, corrupt, or not a Backprop checkpoint.</exception>
    public static CheckpointContent Read(Stream stream, string source)
    {
        var file = SafeTensors.Read(stream, source);
        var meta = file.Metadata;
        if (!meta.TryGetValue("format", out var format) || format != Format)
            throw new CheckpointFormatException(
                $"{source}: a safetensors file but not a Backprop checkpoint (its metadata has no format = {Format}); read it with SafeTensors.Load.",
                source, "__metadata__.format", 8);
        if (!meta.TryGetValue("format_version", out var v) || !int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int version) || version < 1)
            throw Bad(source, "__metadata__.format_version", $"format_version '{v}' is not a positive integer");
        if (version > FormatVersion)
            throw Bad(source, "__metadata__.format_version", $"written in checkpoint format version {version}; this Backprop reads versions up to {FormatVersion}");
        if (!meta.TryGetValue("checkpoint", out var json))
            throw Bad(source, "__metadata__.checkpoint", "the metadata has no 'checkpoint' entry");
        JsonObject root;
        try
        {
            // Duplicate keys are rejected here, as invalid JSON, rather than surfacing later from JsonObject's indexer.
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
                ?? throw Bad(source, "__metadata__.checkpoint", "the 'checkpoint' entry is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException($"{source}: the 'checkpoint' metadata entry is not valid JSON: {e.Message.ReplaceLineEndings(" ")}", source, "__metadata__.checkpoint", 8, e);
        }

        var c = new CheckpointContent { SourcePath = source };
        c.Epoch = (int)Integer(root, "epoch", Data.DataLoader.MaxEpoch, source);
        c.Step = Integer(root, "step", long.MaxValue, source);
        if (root["components"] is not JsonObject components)
            throw Bad(source, "checkpoint.components", "no 'components' object");
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, node) in components)
        {
            if (!ValidComponentName(name) || node is not JsonObject o || o["meta"] is not JsonObject m)
                throw Bad(source, $"checkpoint.components.{name}", $"component '{name}' must have a name without '.' and an object 'meta'");
            counts[name] = Integer(o, "tensors", int.MaxValue, source, $"checkpoint.components.{name}.");
            var sd = new StateDict();
            foreach (var (k, val) in m) sd.Meta[k] = val?.DeepClone();
            c.Components[name] = sd;
        }
        foreach (var (key, t) in file.Tensors)
        {
            int dot = key.IndexOf('.');
            string comp = dot > 0 ? key[..dot] : "";
            if (!c.Components.TryGetValue(comp, out var sd))
                throw Bad(source, key, $"tensor '{key}' belongs to no component of the checkpoint (components: {string.Join(", ", c.Components.Keys)})");
            sd.Add(key[(dot + 1)..], t);
        }
        foreach (var (name, sd) in c.Components)
            if (sd.Count != counts[name])
                throw Bad(source, $"checkpoint.components.{name}", $"component '{name}' should have {counts[name]} tensors, the file has {sd.Count}");
        if (root["rng"] is JsonObject rng)
            foreach (var (name, node) in rng)
                c.RngStates[name] = RngState(node, source, name);
        else if (root["rng"] != null) throw Bad(source, "checkpoint.rng", "'rng' must be an object");
        if (root["extra"] is JsonObject extra)
            foreach (var (k, val) in extra) c.Extra[k] = val?.DeepClone();
        return c;
    }

    private static bool ValidComponentName(string name) => name.Length > 0 && !name.Contains('.');

    private static (List<KeyValuePair<string, Tensor>>, Dictionary<string, string>) Flatten(CheckpointContent content)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>();
        var components = new JsonObject();
        foreach (var (name, sd) in content.Components)
        {
            if (!ValidComponentName(name))
                throw new ArgumentException($"Checkpoint: component name '{name}' must be non-empty and contain no '.'.", nameof(content));
            foreach (var (k, t) in sd.Tensors) tensors.Add(new($"{name}.{k}", t));
            components[name] = new JsonObject { ["tensors"] = sd.Count, ["meta"] = sd.Meta.DeepClone() };
        }
        var rng = new JsonObject();
        foreach (var (name, s) in content.RngStates)
        {
            if (s is not { Length: 4 } || (s[0] | s[1] | s[2] | s[3]) == 0)
                throw new ArgumentException($"Checkpoint: generator state '{name}' must be four words, not all zero (from Generator.GetState).", nameof(content));
            // Decimal strings: JSON readers outside .NET often hold numbers as doubles, which would round 64-bit words.
            rng[name] = new JsonArray([.. s.Select(w => (JsonNode)w.ToString(CultureInfo.InvariantCulture))]);
        }
        var root = new JsonObject
        {
            ["epoch"] = content.Epoch,
            ["step"] = content.Step,
            ["components"] = components,
            ["rng"] = rng,
            ["extra"] = content.Extra.DeepClone(),
        };
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["format_version"] = FormatVersion.ToString(CultureInfo.InvariantCulture),
            ["checkpoint"] = root.ToJsonString(),
        };
        return (tensors, metadata);
    }

    private static long Integer(JsonObject o, string key, long max, string source, string prefix = "checkpoint.")
    {
        if (o[key] is JsonValue v && v.TryGetValue<long>(out long n) && n >= 0 && n <= max) return n;
        throw Bad(source, prefix + key, $"'{key}' must be an integer in [0, {max}], found {o[key]?.ToJsonString() ?? "nothing"}");
    }

    private static ulong[] RngState(JsonNode? node, string source, string name)
    {
        var words = new ulong[4];
        if (node is JsonArray { Count: 4 } a)
        {
            bool ok = true;
            for (int i = 0; i < 4 && ok; i++)
                ok = a[i] is JsonValue w && w.TryGetValue<string>(out var s) && ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out words[i]);
            if (ok && (words[0] | words[1] | words[2] | words[3]) != 0) return words;
        }
        throw Bad(source, $"checkpoint.rng.{name}", $"generator state '{name}' must be four decimal 64-bit words, not all zero, found {node?.ToJsonString() ?? "null"}");
    }

    private static CheckpointFormatException Bad(string source, string key, string what) =>
        new($"{source}: {what} (in the header's metadata, from byte 8).", source, key, 8);
}
