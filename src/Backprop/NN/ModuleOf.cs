namespace Backprop.NN;

/// <summary>
/// A module with a typed input and output of any shape: several tensors, a tuple with an optional
/// state, a record. An LSTM is <c>Module&lt;(Tensor X, (Tensor H, Tensor C)? State), (Tensor Output, (Tensor H, Tensor C) State)&gt;</c>;
/// attention is <c>Module&lt;(Tensor Q, Tensor K, Tensor V, Tensor? Mask), Tensor&gt;</c>. Parameters, submodules,
/// names and state dicts work exactly as for any <see cref="Module"/>.
/// </summary>
/// <typeparam name="TIn">What the module takes.</typeparam>
/// <typeparam name="TOut">What it returns.</typeparam>
public abstract class Module<TIn, TOut> : Module
{
    private List<Action<Module, TIn, TOut>>? _typedForwardHooks;

    /// <summary>Applies the module.</summary>
    public abstract TOut Forward(TIn input);

    /// <summary>Applies the module and then runs its typed forward hooks (observers of input and output).</summary>
    public TOut Call(TIn input)
    {
        var output = Forward(input);
        if (_typedForwardHooks != null)
            foreach (var h in _typedForwardHooks.ToArray()) h(this, input, output);
        return output;
    }

    /// <summary>Runs <paramref name="hook"/>(module, input, output) after each <see cref="Call(TIn)"/>. Dispose the result to remove it.</summary>
    public IDisposable RegisterForwardHook(Action<Module, TIn, TOut> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        var l = _typedForwardHooks ??= [];
        l.Add(hook);
        return new HookHandle(() => l.Remove(hook));
    }
}
