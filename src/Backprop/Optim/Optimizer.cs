using System.Text.Json.Nodes;

namespace Backprop.Optim;

/// <summary>
/// Base of the optimizers: holds the parameter groups, zeroes gradients, runs one in-place update
/// per parameter that has a gradient, and saves or restores per-parameter state.
/// </summary>
/// <remarks>
/// Parameters are numbered in order across groups (0, 1, ...), as in PyTorch's state_dict; state
/// tensors are saved as <c>state.{index}.{name}</c> (e.g. <c>state.3.exp_avg</c>). State buffers
/// are allocated at a parameter's first update; afterwards <see cref="Step"/> allocates nothing.
/// </remarks>
public abstract class Optimizer
{
    private readonly ParamGroup[] _groups;
    private readonly Tensor[] _params;
    private readonly int[] _groupOf;
    private readonly long[] _steps;
    private readonly Tensor?[][] _state;
    private readonly string[] _stateNames;

    /// <summary>Registers the groups, filling unset settings with <paramref name="lr"/> and <paramref name="weightDecay"/>.</summary>
    /// <param name="groups">The parameter groups.</param>
    /// <param name="lr">Default learning rate.</param>
    /// <param name="weightDecay">Default weight decay.</param>
    /// <param name="stateNames">The per-parameter state buffers this optimizer may keep (PyTorch's names).</param>
    protected Optimizer(IEnumerable<ParamGroup> groups, double lr, double weightDecay, string[] stateNames)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ParamGroup.CheckLr(lr, Name);
        ParamGroup.CheckWeightDecay(weightDecay, Name);
        _groups = groups.ToArray();
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var all = new List<Tensor>();
        var groupOf = new List<int>();
        for (int gi = 0; gi < _groups.Length; gi++)
        {
            var g = _groups[gi] ?? throw new ArgumentException($"{Name}: parameter group {gi} is null.", nameof(groups));
            g.Attach(this, lr, weightDecay);
            foreach (var p in g.ParameterArray)
            {
                int i = all.Count;
                if (!seen.Add(p))
                    throw new ArgumentException($"{Name}: a parameter (shape {p.Shape}) appears more than once; each parameter may be in only one group, once.", nameof(groups));
                if (!p.DType.IsFloatingPoint())
                    throw new ArgumentException($"{Name}: parameter {i} (shape {p.Shape}) is {p.DType.Name()}; only float32 and float64 tensors can be optimized.", nameof(groups));
                if (!p.IsLeaf)
                    throw new ArgumentException($"{Name}: parameter {i} (shape {p.Shape}) is not a leaf: it was produced by {p.GradFn!.Name}. " +
                        "Optimize the leaf it was computed from, or Detach() it and set RequiresGrad.", nameof(groups));
                if (!p.IsContiguous)
                    throw new ArgumentException($"{Name}: parameter {i} (shape {p.Shape}) is a non-contiguous view; optimizers update contiguous tensors in place. " +
                        "Pass a contiguous tensor (e.g. x.Contiguous().Detach().RequiresGrad_()).", nameof(groups));
                all.Add(p);
                groupOf.Add(gi);
            }
        }
        if (all.Count == 0) throw new ArgumentException($"{Name}: got an empty parameter list.", nameof(groups));
        _params = [.. all];
        _groupOf = [.. groupOf];
        _steps = new long[_params.Length];
        _stateNames = stateNames;
        _state = new Tensor?[_params.Length][];
        for (int i = 0; i < _state.Length; i++) _state[i] = new Tensor?[stateNames.Length];
    }

    /// <summary>One group holding <paramref name="parameters"/> (for the constructors that take plain parameters).</summary>
    protected static ParamGroup[] OneGroup(IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return [new ParamGroup(parameters)];
    }

    /// <summary>The optimizer's name in messages and state dicts.</summary>
    internal string Name => GetType().Name;

    /// <summary>The parameter groups.</summary>
    public IReadOnlyList<ParamGroup> ParamGroups => _groups;

    /// <summary>All parameters, in order across groups (their index is their number in the state dict).</summary>
    public IReadOnlyList<Tensor> Parameters => _params;

    /// <summary>The learning rate of the first group; setting it sets every group's (schedulers set groups one by one).</summary>
    public double Lr
    {
        get => _groups[0].Lr;
        set
        {
            ParamGroup.CheckLr(value, $"{Name}.Lr");
            foreach (var g in _groups) g.Lr = value;
        }
    }

    /// <summary>How many updates parameter <paramref name="index"/> has received.</summary>
    public long StepCount(int index) => _steps[index];

    /// <summary>
    /// Resets the gradients: zeroed in place by default, so each gradient buffer is allocated once
    /// and reused by every later backward pass; <paramref name="setToNone"/> drops them instead.
    /// </summary>
    public void ZeroGrad(bool setToNone = false)
    {
        foreach (var p in _params)
        {
            var g = p.Grad;
            if (g == null) continue;
            if (setToNone)
            {
                p.Grad = null;
                continue;
            }
            // Not Zero_(): a gradient computed with a graph may itself require grad, and clearing
            // it must not be refused for that.
            g.ClearStorage();
            g.BumpVersion();
        }
    }

    /// <summary>Updates every parameter that has a gradient, in place; parameters whose Grad is null are skipped.</summary>
    public virtual void Step()
    {
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            var g = p.Grad;
            if (g == null) continue;
            if (g.DType != p.DType || !g._shape.AsSpan().SequenceEqual(p._shape))
                throw new InvalidOperationException(
                    $"{Name}.Step: parameter {i} has shape {p.Shape} ({p.DType.Name()}) but its gradient has shape {g.Shape} ({g.DType.Name()}); " +
                    "a gradient must have its parameter's shape and dtype.");
            if (!ReferenceEquals(g.Backend, p.Backend))
                throw new InvalidOperationException(
                    $"{Name}.Step: parameter {i} is on {p.Device} but its gradient is on {g.Device}; a gradient must be on its parameter's device.");
            Update(i, p, g.ContiguousData(), _groups[_groupOf[i]], ++_steps[i]);
            p.BumpVersion();
        }
    }

    /// <summary>Updates parameter <paramref name="index"/> in place from its gradient; <paramref name="step"/> counts this parameter's updates from 1.</summary>
    /// <remarks>
    /// <paramref name="grad"/> is contiguous with the parameter's shape and dtype (checked by
    /// <see cref="Step"/>, which also bumps the parameter's version afterwards). Keep per-parameter
    /// buffers in <see cref="State(int, int, double)"/> so state dicts save and restore them.
    /// </remarks>
    protected abstract void Update(int index, Tensor param, Tensor grad, ParamGroup group, long step);

    /// <summary>State buffer <paramref name="slot"/> of parameter <paramref name="index"/>, or null before it exists.</summary>
    protected internal Tensor? State(int index, int slot) => _state[index][slot];

    /// <summary>State buffer <paramref name="slot"/> of parameter <paramref name="index"/>, created filled with <paramref name="fill"/> on first use.</summary>
    protected internal Tensor State(int index, int slot, double fill)
    {
        var s = _state[index][slot];
        if (s != null) return s;
        var p = _params[index];
        s = Tensor.FullOn(p._shape, fill, p.DType, p.Backend); // on the parameter's device
        _state[index][slot] = s;
        return s;
    }

    /// <summary>Writes the optimizer-wide hyperparameters (those not per group) into a state dict's Meta.</summary>
    protected virtual void SaveHyperparameters(JsonObject h) { }

    /// <summary>Validates and then restores the optimizer-wide hyperparameters; must throw before changing anything if one is invalid.</summary>
    protected virtual void LoadHyperparameters(JsonObject h) { }

    // ------------------------------------------------------------------ state dict

    /// <summary>
    /// A snapshot of the optimizer: copies of the state tensors (<c>state.{index}.{name}</c>) and,
    /// in Meta, the type, hyperparameters, parameter groups and per-parameter step counts.
    /// </summary>
    public StateDict StateDict()
    {
        var sd = new StateDict();
        sd.Meta["type"] = Name;
        var h = new JsonObject();
        SaveHyperparameters(h);
        sd.Meta["hyperparameters"] = h;
        var groups = new JsonArray();
        int next = 0;
        foreach (var g in _groups)
        {
            var ids = new JsonArray();
            for (int k = 0; k < g.ParameterArray.Length; k++) ids.Add(next++);
            var o = new JsonObject { ["lr"] = g.Lr, ["weight_decay"] = g.WeightDecay, ["params"] = ids };
            if (g.InitialLr is double il) o["initial_lr"] = il;
            groups.Add(o);
        }
        sd.Meta["param_groups"] = groups;
        var state = new JsonObject();
        for (int i = 0; i < _params.Length; i++)
        {
            bool any = _steps[i] > 0;
            for (int k = 0; k < _stateNames.Length; k++)
                if (_state[i][k] is Tensor t)
                {
                    sd.Add($"state.{i}.{_stateNames[k]}", Dispatch.ToContiguous(t));
                    any = true;
                }
            if (any) state[i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject { ["step"] = _steps[i] };
        }
        sd.Meta["state"] = state;
        return sd;
    }

    /// <summary>
    /// Restores a state saved by <see cref="StateDict"/> of the same optimizer type over parameters
    /// of the same shapes and grouping. Everything is validated before anything changes.
    /// </summary>
    public void LoadStateDict(StateDict dict)
    {
        ArgumentNullException.ThrowIfNull(dict);
        string who = $"{Name}.LoadStateDict";
        string? type = MetaValues.Text(dict.Meta["type"], "type");
        if (type != Name)
            throw new ArgumentException($"{who}: the dict holds the state of {(type ?? "an unknown optimizer (no 'type' in Meta)")}, not {Name}.", nameof(dict));

        // Group structure must match: parameter numbers are positions across groups.
        if (dict.Meta["param_groups"] is not JsonArray groups)
            throw new ArgumentException($"{who}: the dict has no 'param_groups' in Meta.", nameof(dict));
        var theirs = groups.Select(g => (g as JsonObject)?["params"] is JsonArray a ? a.Count : -1).ToArray();
        var ours = _groups.Select(g => g.ParameterArray.Length).ToArray();
        if (!theirs.SequenceEqual(ours))
            throw new ArgumentException(
                $"{who}: the dict has {theirs.Length} parameter group(s) of sizes [{string.Join(", ", theirs)}], " +
                $"this optimizer has {ours.Length} of sizes [{string.Join(", ", ours)}].", nameof(dict));

        // Tensors: known names, existing parameters, matching shapes.
        var loaded = new List<(int index, int slot, Tensor t)>();
        foreach (var (key, t) in dict.Tensors)
        {
            var parts = key.Split('.');
            if (parts.Length != 3 || parts[0] != "state" || !int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i))
                throw new ArgumentException($"{who}: unexpected tensor '{key}'; expected names like 'state.0.{_stateNames[0]}'.", nameof(dict));
            if (i >= _params.Length)
                throw new ArgumentException($"{who}: '{key}' refers to parameter {i}, but this optimizer has {_params.Length} parameters.", nameof(dict));
            int slot = Array.IndexOf(_stateNames, parts[2]);
            if (slot < 0)
                throw new ArgumentException($"{who}: unknown state '{parts[2]}' in '{key}'; {Name} keeps {string.Join(", ", _stateNames)}.", nameof(dict));
            var p = _params[i];
            if (!t._shape.AsSpan().SequenceEqual(p._shape))
                throw new ArgumentException($"{who}: '{key}' has shape {t.Shape} but parameter {i} has shape {p.Shape} (expected {p.Shape}, found {t.Shape}).", nameof(dict));
            if (!t.DType.IsFloatingPoint())
                throw new ArgumentException($"{who}: '{key}' is {t.DType.Name()}; state tensors are floating point.", nameof(dict));
            loaded.Add((i, slot, t));
        }
        var steps = new long[_params.Length];
        if (dict.Meta["state"] is JsonObject st)
            foreach (var (k, v) in st)
            {
                if (!int.TryParse(k, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i) || i >= _params.Length)
                    throw new ArgumentException($"{who}: Meta state '{k}' does not name one of the {_params.Length} parameters.", nameof(dict));
                long s = MetaValues.Integer(v?["step"], $"state.{k}.step") ?? 0;
                if (s < 0) throw new ArgumentException($"{who}: parameter {i} has a negative step count {s}.", nameof(dict));
                steps[i] = s;
            }
        var groupSettings = new (double lr, double wd, double? initial)[_groups.Length];
        for (int gi = 0; gi < _groups.Length; gi++)
        {
            var g = groups[gi] as JsonObject ?? throw new ArgumentException($"{who}: param_groups[{gi}] must be an object.", nameof(dict));
            double lr = MetaValues.Number(g["lr"], $"param_groups[{gi}].lr") ?? _groups[gi].Lr;
            double wd = MetaValues.Number(g["weight_decay"], $"param_groups[{gi}].weight_decay") ?? _groups[gi].WeightDecay;
            ParamGroup.CheckLr(lr, $"{who}: group {gi}");
            ParamGroup.CheckWeightDecay(wd, $"{who}: group {gi}");
            double? initial = MetaValues.Number(g["initial_lr"], $"param_groups[{gi}].initial_lr");
            if (initial is double il) ParamGroup.CheckLr(il, $"{who}: group {gi} (initial_lr)");
            groupSettings[gi] = (lr, wd, initial);
        }
        if (dict.Meta["hyperparameters"] is JsonObject h) LoadHyperparameters(h);

        // Commit.
        for (int gi = 0; gi < _groups.Length; gi++)
        {
            _groups[gi].Lr = groupSettings[gi].lr;
            _groups[gi].WeightDecay = groupSettings[gi].wd;
            _groups[gi].InitialLr = groupSettings[gi].initial;
        }
        for (int i = 0; i < _params.Length; i++)
        {
            _steps[i] = steps[i];
            Array.Clear(_state[i]);
        }
        using (Tensor.NoGrad())
            foreach (var (i, slot, t) in loaded)
            {
                // Copies, so the optimizer never aliases the dict (which may be reused or saved later).
                var p = _params[i];
                var src = t.To(p.DType).To(p.Device);
                var dst = Tensor.FullOn(p._shape, 0, p.DType, p.Backend);
                Dispatch.CopyInto(src, dst);
                _state[i][slot] = dst;
            }
    }

    // ------------------------------------------------------------------ shared argument checks

    /// <summary>Throws a message naming this optimizer unless <paramref name="value"/> is finite and >= 0.</summary>
    protected void CheckNonNegative(double value, string param, string what)
    {
        if (!(value >= 0) || double.IsInfinity(value))
            throw new ArgumentOutOfRangeException(param, value, $"{Name}: invalid {what} {value}; it must be a finite number >= 0.");
    }


    /// <summary>A number from saved hyperparameters, or <paramref name="current"/> when absent.</summary>
    protected static double Get(JsonObject h, string key, double current) => MetaValues.Number(h[key], $"hyperparameters.{key}") ?? current;

    /// <summary>A flag from saved hyperparameters, or <paramref name="current"/> when absent.</summary>
    protected static bool Get(JsonObject h, string key, bool current) => MetaValues.Flag(h[key], $"hyperparameters.{key}") ?? current;
}
