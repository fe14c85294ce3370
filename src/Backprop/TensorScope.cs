namespace Backprop;

/// <summary>
/// A region of code whose tensors are recycled when it ends: every tensor an operation creates
/// inside the scope (activations, outputs, losses, their gradients' temporaries) goes back to the
/// buffer pool at <see cref="Dispose"/>, so a training step repeated in a scope allocates almost
/// nothing once warm. Parameters, their gradients, optimizer state and tensors made by the
/// creation functions (Zeros, FromArray, Randn, ...) are not affected. To keep a tensor computed
/// in the scope, call <see cref="Tensor.Detach"/> on it before the scope ends; reading a recycled
/// tensor throws <see cref="ObjectDisposedException"/>, it never returns stale numbers.
/// </summary>
/// <example>
/// <code>
/// foreach (var (x, y) in loader)
/// {
///     using var step = Tensor.Scope();
///     var loss = Loss.CrossEntropy(model.Forward(x), y);
///     opt.ZeroGrad();
///     loss.Backward();
///     opt.Step();
///     total += loss.Item();
/// }
/// </code>
/// </example>
public readonly struct TensorScope : IDisposable
{
    private readonly ScopeState _state;
    private readonly int _generation;

    internal TensorScope(ScopeState state)
    {
        _state = state;
        _generation = state.Generation;
    }

    /// <summary>Recycles the scope's tensors and restores the enclosing scope (a second call does nothing).</summary>
    public void Dispose()
    {
        if (_state != null && _state.Generation == _generation) _state.End();
    }

    /// <summary>Records a storage allocated by an operation while a scope is active.</summary>
    internal static void Track(Storage s) => ScopeState.Current?.Storages.Add(s);

    /// <summary>Number of storages the innermost active scope will recycle (for tests).</summary>
    internal static int TrackedCount => ScopeState.Current?.Storages.Count ?? 0;
}

/// <summary>The per-thread state behind <see cref="TensorScope"/>; reused so that starting a scope allocates nothing.</summary>
internal sealed class ScopeState
{
    [ThreadStatic] internal static ScopeState? Current;
    [ThreadStatic] private static Stack<ScopeState>? _spares;

    internal readonly List<Storage> Storages = [];
    internal int Generation;
    private ScopeState? _outer;

    internal static TensorScope Begin()
    {
        var spares = _spares ??= new Stack<ScopeState>();
        var s = spares.Count > 0 ? spares.Pop() : new ScopeState();
        s._outer = Current;
        Current = s;
        return new TensorScope(s);
    }

    internal void End()
    {
        if (Current != this)
            throw new InvalidOperationException("Tensor.Scope: scopes must be disposed in the reverse order of their creation.");
        Generation++;
        Current = _outer;
        _outer = null;
        foreach (var s in Storages) s.Release();
        Storages.Clear();
        _spares!.Push(this);
    }
}
