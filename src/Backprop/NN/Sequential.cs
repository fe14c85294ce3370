namespace Backprop.NN;

/// <summary>Runs modules one after another; children are named "0", "1", ...</summary>
public sealed class Sequential : Module
{
    /// <summary>Creates the chain.</summary>
    public Sequential(params Module[] layers)
    {
        foreach (var l in layers) Add(l);
    }

    /// <summary>Appends a module.</summary>
    public Sequential Add(Module layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        RegisterModule(Count.ToString(System.Globalization.CultureInfo.InvariantCulture), layer);
        return this;
    }

    /// <summary>The modules in order.</summary>
    public IEnumerable<Module> Layers => RegisteredModules.Select(m => m.Module);

    /// <summary>Module <paramref name="index"/>.</summary>
    public Module this[int index] => RegisteredModules[index].Module;

    /// <summary>Number of modules.</summary>
    public int Count => RegisteredModules.Count;

    /// <summary>
    /// Runs the layers in order. A <see cref="Linear"/> directly followed by a ReLU, sigmoid, tanh or
    /// (exact) GELU module runs as one fused op (<see cref="Functional.Linear(Tensor, Tensor, Tensor?, FusedActivation)"/>):
    /// the same numbers, one pass fewer over the activations. Likewise a batch-norm module directly
    /// followed by a <see cref="Relu"/> module runs as <see cref="Functional.BatchNormRelu"/> (bit-identical
    /// to the two modules one after the other), and with a <see cref="MaxPool2d"/> module after them whose
    /// windows tile the input (stride = kernel, no padding or dilation) as
    /// <see cref="Functional.BatchNormReluMaxPool2d"/> (the same bits as the three modules).
    /// </summary>
    public override Tensor Forward(Tensor input)
    {
        var x = input;
        var layers = RegisteredModules;
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i].Module;
            if (layer is Linear lin && i + 1 < layers.Count && FusableActivation(layers[i + 1].Module) is var act && act != FusedActivation.None
                && !lin.HasHooks && !layers[i + 1].Module.HasHooks)
            {
                x = lin.Forward(x, act);
                i++;
                continue;
            }
            if (layer is BatchNormBase bn && FuseBatchNormRelu && i + 1 < layers.Count && layers[i + 1].Module is Relu
                && !bn.HasHooks && !layers[i + 1].Module.HasHooks)
            {
                if (i + 2 < layers.Count && layers[i + 2].Module is MaxPool2d pool && pool.Tiles && !pool.HasHooks)
                {
                    x = bn.Forward(x, relu: true, pool: pool.KernelSize);
                    i += 2;
                    continue;
                }
                x = bn.Forward(x, relu: true);
                i++;
                continue;
            }
            x = layer.Call(x);
        }
        return x;
    }

    /// <summary>
    /// Whether <see cref="Forward"/> fuses a batch-norm module and the ReLU module after it (default
    /// true); tests turn it off, on their own thread, to compare the fused op with the two modules.
    /// </summary>
    internal static bool FuseBatchNormRelu { get => !t_unfusedBatchNormRelu; set => t_unfusedBatchNormRelu = !value; }

    [ThreadStatic] private static bool t_unfusedBatchNormRelu;

    private static FusedActivation FusableActivation(Module m) => m switch
    {
        Relu => FusedActivation.Relu,
        Sigmoid => FusedActivation.Sigmoid,
        Tanh => FusedActivation.Tanh,
        Gelu g when !g.ApproximateTanh => FusedActivation.Gelu,
        _ => FusedActivation.None,
    };
}

/// <summary>A list of submodules named "0", "1", ... (holds modules; has no Forward of its own).</summary>
public sealed class ModuleList : Module, IReadOnlyList<Module>
{
    /// <summary>Creates the list.</summary>
    public ModuleList(IEnumerable<Module> modules) => Extend(modules);

    /// <summary>Creates the list.</summary>
    public ModuleList(params Module[] modules) : this((IEnumerable<Module>)modules) { }

    /// <summary>Appends a module.</summary>
    public void Add(Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        RegisterModule(Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
    }

    /// <summary>Appends several modules in order.</summary>
    public void Extend(IEnumerable<Module> modules)
    {
        foreach (var m in modules) Add(m);
    }

    /// <summary>Module <paramref name="index"/> (negative counts from the end).</summary>
    public Module this[int index]
    {
        get
        {
            int i = index < 0 ? index + Count : index;
            if ((uint)i >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(index), index, $"ModuleList: index {index} is out of range for {Count} modules.");
            return RegisteredModules[i].Module;
        }
    }

    /// <summary>Number of modules.</summary>
    public int Count => RegisteredModules.Count;

    /// <summary>The modules.</summary>
    public IEnumerable<Module> Items => RegisteredModules.Select(m => m.Module);

    /// <summary>An enumerator over the modules that allocates nothing (a forward pass walks the list every step).</summary>
    public Enumerator GetEnumerator() => new(this);

    IEnumerator<Module> IEnumerable<Module>.GetEnumerator() => Items.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => Items.GetEnumerator();

    /// <summary>The modules in order, without allocating.</summary>
    public struct Enumerator(ModuleList list)
    {
        private int _index = -1;

        /// <summary>The current module.</summary>
        public readonly Module Current => list[_index];

        /// <summary>Moves to the next module.</summary>
        public bool MoveNext() => ++_index < list.Count;
    }
}

/// <summary>
/// Submodules by name (like PyTorch's ModuleDict): the keys are their names in parameter paths
/// (<c>heads.classify.weight</c>), in insertion order.
/// </summary>
public sealed class ModuleDict : Module, IReadOnlyDictionary<string, Module>
{
    private readonly Dictionary<string, Module> _byName = [];

    /// <summary>An empty dictionary.</summary>
    public ModuleDict() { }

    /// <summary>Creates the dictionary from named modules, in order.</summary>
    public ModuleDict(IEnumerable<KeyValuePair<string, Module>> modules)
    {
        foreach (var (name, m) in modules) Add(name, m);
    }

    /// <summary>Adds a module under <paramref name="name"/> (non-empty, no '.', not already used).</summary>
    public void Add(string name, Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (_byName.ContainsKey(name)) throw new ArgumentException($"ModuleDict: a module named '{name}' is already there.", nameof(name));
        RegisterModule(name, module);
        _byName[name] = module;
    }

    /// <summary>The module named <paramref name="name"/>.</summary>
    public Module this[string name] => _byName.TryGetValue(name, out var m) ? m
        : throw new KeyNotFoundException($"ModuleDict: no module named '{name}' (have: {string.Join(", ", Keys)}).");

    /// <summary>Names in insertion order.</summary>
    public IEnumerable<string> Keys => RegisteredModules.Select(m => m.Name);

    /// <summary>Modules in insertion order.</summary>
    public IEnumerable<Module> Values => RegisteredModules.Select(m => m.Module);

    /// <summary>Number of modules.</summary>
    public int Count => RegisteredModules.Count;

    /// <inheritdoc/>
    public bool ContainsKey(string key) => _byName.ContainsKey(key);

    /// <inheritdoc/>
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out Module value) => _byName.TryGetValue(key, out value);

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, Module>> GetEnumerator() =>
        RegisteredModules.Select(m => new KeyValuePair<string, Module>(m.Name, m.Module)).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
