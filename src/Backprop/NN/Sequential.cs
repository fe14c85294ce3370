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
    /// the same numbers, one pass fewer over the activations.
    /// </summary>
    public override Tensor Forward(Tensor input)
    {
        var x = input;
        var layers = RegisteredModules;
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i].Module;
            if (layer is Linear lin && i + 1 < layers.Count && FusableActivation(layers[i + 1].Module) is var act && act != FusedActivation.None)
            {
                x = lin.Forward(x, act);
                i++;
                continue;
            }
            x = layer.Forward(x);
        }
        return x;
    }

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
