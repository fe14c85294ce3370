using System.Text.Json.Nodes;
using Backprop.Data;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.IO;

/// <summary>
/// Everything a training run needs to continue exactly where it stopped: named components (the
/// model's, optimizer's, schedule's and data loader's state dicts), generator states, the epoch
/// and step counters, and whatever the caller adds in <see cref="Extra"/> (e.g. the run's options).
/// <see cref="Checkpoint.Save(string, CheckpointContent, bool)"/> writes it to one safetensors file; <see cref="Checkpoint.Load(string)"/> reads it back.
/// </summary>
public sealed class CheckpointContent
{
    /// <summary>Component name of the model's parameters and buffers.</summary>
    public const string ModelKey = "model";
    /// <summary>Component name of the optimizer's state.</summary>
    public const string OptimizerKey = "optim";
    /// <summary>Component name of the learning-rate schedule's state.</summary>
    public const string SchedulerKey = "sched";
    /// <summary>Component name of the data loader's position.</summary>
    public const string LoaderKey = "loader";
    /// <summary>Prefix of the generator states of the model's Dropout layers ("model/" + module name).</summary>
    public const string ModelRngPrefix = "model/";

    /// <summary>Epochs completed when the checkpoint was taken.</summary>
    public int Epoch { get; set; }

    /// <summary>Training steps (optimizer updates) completed when the checkpoint was taken.</summary>
    public long Step { get; set; }

    /// <summary>State dicts by component name (no '.' in names); tensors are stored as "component.name".</summary>
    public OrderedDictionary<string, StateDict> Components { get; } = new(StringComparer.Ordinal);

    /// <summary>Generator states (four xoshiro256** words) by name.</summary>
    public OrderedDictionary<string, ulong[]> RngStates { get; } = new(StringComparer.Ordinal);

    /// <summary>The caller's own metadata (JSON), saved and loaded as is.</summary>
    public JsonObject Extra { get; } = new();

    /// <summary>The file this content was loaded from (null when built in memory); named in errors.</summary>
    public string? SourcePath { get; internal set; }

    /// <summary>
    /// A snapshot of the given objects: copies of the model's parameters and buffers (and the states
    /// of its Dropout generators), the optimizer's and schedule's state dicts, the loader's position and
    /// the states of <paramref name="generators"/>. Later training does not change the snapshot.
    /// </summary>
    public static CheckpointContent Capture(Module? model = null, Optimizer? optimizer = null, LrScheduler? scheduler = null,
        DataLoader? loader = null, IEnumerable<KeyValuePair<string, Generator>>? generators = null)
    {
        var c = new CheckpointContent();
        if (model != null)
        {
            var sd = new StateDict();
            foreach (var (name, t) in model.StateDict().Tensors) sd.Add(name, Dispatch.ToContiguous(t));
            c.Components[ModelKey] = sd;
            foreach (var (name, g) in DropoutGenerators(model)) c.RngStates[ModelRngPrefix + name] = g.GetState();
        }
        if (optimizer != null) c.Components[OptimizerKey] = optimizer.StateDict();
        if (scheduler != null) c.Components[SchedulerKey] = scheduler.StateDict();
        if (loader != null) c.Components[LoaderKey] = loader.StateDict();
        if (generators != null)
            foreach (var (name, g) in generators)
            {
                if (c.RngStates.ContainsKey(name))
                    throw new ArgumentException($"CheckpointContent.Capture: generator name '{name}' is used twice (names starting with '{ModelRngPrefix}' are the model's).", nameof(generators));
                c.RngStates[name] = g.GetState();
            }
        return c;
    }

    /// <summary>
    /// Restores the given objects from this content, all or nothing: every problem (missing or
    /// unexpected keys, shape and dtype mismatches, another optimizer or schedule type, a loader with
    /// other settings, missing generator states) is found first and reported together in one
    /// <see cref="CheckpointMismatchException"/>, before anything is modified.
    /// </summary>
    /// <exception cref="CheckpointMismatchException">The content does not fit; nothing was modified.</exception>
    public void Restore(Module? model = null, Optimizer? optimizer = null, LrScheduler? scheduler = null,
        DataLoader? loader = null, IEnumerable<KeyValuePair<string, Generator>>? generators = null)
    {
        var gens = generators?.ToList() ?? [];
        var dropouts = model != null ? DropoutGenerators(model).ToList() : [];
        var problems = new List<string>();
        if (model != null && Component(ModelKey, "the model", problems) is StateDict m) CheckModel(model, m, problems);
        if (optimizer != null && Component(OptimizerKey, "the optimizer", problems) is StateDict o) CheckOptimizer(optimizer, o, problems);
        if (scheduler != null && Component(SchedulerKey, "the learning-rate schedule", problems) is StateDict s)
        {
            string? type = Text(s.Meta["type"]);
            if (type != scheduler.GetType().Name)
                problems.Add($"the checkpoint holds the state of schedule {type ?? "(unknown)"}, not {scheduler.GetType().Name}");
        }
        if (loader != null && Component(LoaderKey, "the data loader", problems) is StateDict l) CheckLoader(loader, l, problems);
        foreach (var (name, _) in dropouts.Select(d => (ModelRngPrefix + d.Name, d.Generator)).Concat(gens.Select(g => (g.Key, g.Value))))
            if (!RngStates.ContainsKey(name)) problems.Add($"no generator state named '{name}' (have: {Names(RngStates.Keys)})");
        if (problems.Count > 0) throw new CheckpointMismatchException(SourcePath, problems);

        // Every check passed. The components' own loaders validate once more; should one still
        // refuse, the ones already loaded are put back from snapshots, so it stays all or nothing.
        var undo = new Stack<Action>();
        try
        {
            if (optimizer != null)
            {
                var before = optimizer.StateDict();
                optimizer.LoadStateDict(Components[OptimizerKey]);
                undo.Push(() => optimizer.LoadStateDict(before));
            }
            if (scheduler != null)
            {
                var before = scheduler.StateDict();
                scheduler.LoadStateDict(Components[SchedulerKey]);
                undo.Push(() => scheduler.LoadStateDict(before));
            }
            if (loader != null)
            {
                var before = loader.StateDict();
                loader.LoadStateDict(Components[LoaderKey]);
                undo.Push(() => loader.LoadStateDict(before));
            }
            foreach (var (name, g) in dropouts.Select(d => (ModelRngPrefix + d.Name, d.Generator)).Concat(gens.Select(g => (g.Key, g.Value))))
            {
                var before = g.GetState();
                g.SetState(RngStates[name]);
                undo.Push(() => g.SetState(before));
            }
            model?.LoadStateDict(Components[ModelKey], strict: true); // last: it validates fully before it copies
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or InvalidOperationException)
        {
            while (undo.Count > 0) undo.Pop()();
            throw new CheckpointMismatchException(SourcePath, [MetaValues.PlainMessage(e)], e);
        }
    }

    /// <summary>The Dropout (and Dropout2d) layers' generators, and those of modules that draw their own (<see cref="IStochasticModule"/>), with their module names.</summary>
    private static IEnumerable<(string Name, Generator Generator)> DropoutGenerators(Module model) =>
        model.NamedModules().Where(m => m.Module is Dropout or Dropout2d or IStochasticModule { TrainingGenerator: not null })
            .Select(m => (m.Name, m.Module switch
            {
                Dropout d => d.Generator,
                Dropout2d d2 => d2.Generator,
                _ => ((IStochasticModule)m.Module).TrainingGenerator!,
            }));

    private StateDict? Component(string key, string what, List<string> problems)
    {
        if (Components.TryGetValue(key, out var sd)) return sd;
        problems.Add($"no '{key}' component for {what} (the checkpoint has: {Names(Components.Keys)})");
        return null;
    }

    private static string Names(IEnumerable<string> names)
    {
        var list = names.ToList();
        return list.Count == 0 ? "none" : string.Join(", ", list);
    }

    /// <summary>A JSON string's value, or null for anything else (metadata from a file may hold any JSON).</summary>
    private static string? Text(JsonNode? n) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static string Describe(Tensor t) => $"{t.Shape} {t.DType.Name()}";

    private static void CheckModel(Module model, StateDict sd, List<string> problems)
    {
        var targets = model.NamedParameters().Select(p => (p.Name, (Tensor)p.Param)).Concat(model.NamedBuffers()).ToList();
        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, target) in targets)
        {
            known.Add(name);
            string key = $"{ModelKey}.{name}";
            if (!sd.Tensors.TryGetValue(name, out var src))
                problems.Add($"missing key '{key}' (expected {Describe(target)})");
            else if (!src.Shape.Equals(target.Shape) || src.DType != target.DType)
                problems.Add($"'{key}': expected {Describe(target)}, found {Describe(src)}");
        }
        foreach (var (name, t) in sd.Tensors)
            if (!known.Contains(name)) problems.Add($"unexpected key '{ModelKey}.{name}' ({Describe(t)})");
    }

    private static void CheckOptimizer(Optimizer optimizer, StateDict sd, List<string> problems)
    {
        string? type = Text(sd.Meta["type"]);
        if (type != optimizer.Name)
        {
            problems.Add($"the checkpoint holds the state of optimizer {type ?? "(unknown)"}, not {optimizer.Name}");
            return;
        }
        var ps = optimizer.Parameters;
        if (sd.Meta["param_groups"] is JsonArray groups)
        {
            var theirs = groups.Select(g => (g as JsonObject)?["params"] is JsonArray a ? a.Count : -1).ToArray();
            var ours = optimizer.ParamGroups.Select(g => g.Parameters.Count).ToArray();
            if (!theirs.SequenceEqual(ours))
                problems.Add($"'{OptimizerKey}': expected parameter groups of sizes [{string.Join(", ", ours)}], found [{string.Join(", ", theirs)}]");
        }
        else problems.Add($"'{OptimizerKey}': no param_groups in its metadata");
        foreach (var (name, t) in sd.Tensors)
        {
            var parts = name.Split('.');
            string key = $"{OptimizerKey}.{name}";
            if (parts.Length != 3 || parts[0] != "state" || !int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i))
                problems.Add($"unexpected key '{key}' ({Describe(t)})");
            else if (i >= ps.Count)
                problems.Add($"unexpected key '{key}': the optimizer has {ps.Count} parameters");
            else if (!t.Shape.Equals(ps[i].Shape) || !t.DType.IsFloatingPoint())
                problems.Add($"'{key}': expected {Describe(ps[i])} (the shape of parameter {i}), found {Describe(t)}");
        }
    }

    private static void CheckLoader(DataLoader loader, StateDict sd, List<string> problems)
    {
        var mine = loader.StateDict().Meta;
        foreach (var k in new[] { "batch_size", "samples", "shuffle", "seed", "drop_last" })
        {
            string saved = sd.Meta[k]?.ToJsonString() ?? "(missing)", have = mine[k]!.ToJsonString();
            if (saved != have) problems.Add($"'{LoaderKey}': saved with {k} = {saved}, this loader has {k} = {have}");
        }
    }
}
