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

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        var x = input;
        var layers = RegisteredModules;
        for (int i = 0; i < layers.Count; i++) x = layers[i].Module.Forward(x);
        return x;
    }
}

/// <summary>A list of submodules named "0", "1", ... (holds modules; has no Forward of its own).</summary>
public sealed class ModuleList : Module
{
    /// <summary>Creates the list.</summary>
    public ModuleList(IEnumerable<Module> modules)
    {
        foreach (var m in modules) Add(m);
    }

    /// <summary>Appends a module.</summary>
    public void Add(Module module) =>
        RegisterModule(Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);

    /// <summary>Module <paramref name="index"/>.</summary>
    public Module this[int index] => RegisteredModules[index].Module;

    /// <summary>Number of modules.</summary>
    public int Count => RegisteredModules.Count;

    /// <summary>The modules.</summary>
    public IEnumerable<Module> Items => RegisteredModules.Select(m => m.Module);
}
