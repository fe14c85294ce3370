namespace Backprop.Autograd;

/// <summary>Whether operations are recorded for backward on the current thread.</summary>
public static class GradMode
{
    [ThreadStatic] private static int _disabledDepth;
    [ThreadStatic] private static int _anomalyDepth;
    [ThreadStatic] private static ScopeStack? _noGradScopes;
    [ThreadStatic] private static ScopeStack? _anomalyScopes;

    /// <summary>True unless inside a <see cref="Tensor.NoGrad"/> scope.</summary>
    public static bool IsEnabled => _disabledDepth == 0;

    /// <summary>True inside a <see cref="Tensor.DetectAnomaly"/> scope.</summary>
    public static bool AnomalyDetection => _anomalyDepth > 0;

    internal static NoGradScope Push()
    {
        var s = _noGradScopes ??= new ScopeStack(isAnomaly: false);
        return new NoGradScope(s, s.Push());
    }

    /// <summary>
    /// Turns recording on whatever the enclosing NoGrad scopes say (a backward pass that builds its own
    /// graph, <see cref="Tensor.EnableGrad"/>); NoGrad scopes opened inside still turn it off. Returns
    /// what <see cref="Restore"/> needs.
    /// </summary>
    internal static int Suspend()
    {
        int old = _enabledFrom;
        _enabledFrom = _noGradScopes?.Count ?? 0;
        _noGradScopes?.Publish();
        if (_noGradScopes == null) _disabledDepth = 0;
        return old;
    }

    internal static void Restore(int enabledFrom)
    {
        _enabledFrom = enabledFrom;
        if (_noGradScopes != null) _noGradScopes.Publish();
        else _disabledDepth = 0;
    }

    /// <summary>NoGrad scopes below this depth are overridden by an enclosing EnableGrad (0: none is).</summary>
    [ThreadStatic] private static int _enabledFrom;

    internal static AnomalyScope PushAnomaly()
    {
        var s = _anomalyScopes ??= new ScopeStack(isAnomaly: true);
        return new AnomalyScope(s, s.Push());
    }

    /// <summary>
    /// The open scopes of one kind on one thread, each with a token (a number never reused on the
    /// thread). Ending a scope twice, or ending a <c>default</c> scope, finds no token and does
    /// nothing, so the depth can never drop below the number of scopes really open; a scope ended
    /// out of order is marked and the depth falls once the scopes inside it end too.
    /// Allocation-free once the thread's stack has grown to its deepest nesting.
    /// </summary>
    internal sealed class ScopeStack(bool isAnomaly)
    {
        private long[] _tokens = new long[4];
        private int _count;
        private long _lastToken;

        public long Push()
        {
            if (_count == _tokens.Length) Array.Resize(ref _tokens, 2 * _count);
            long token = ++_lastToken;
            _tokens[_count++] = token;
            Publish();
            return token;
        }

        public void Pop(long token)
        {
            if (token == 0) return;
            for (int i = _count - 1; i >= 0; i--)
            {
                if (_tokens[i] != token) continue;
                _tokens[i] = 0;
                while (_count > 0 && _tokens[_count - 1] == 0) _count--;
                Publish();
                return;
            }
        }

        public int Count => _count;

        public void Publish()
        {
            if (isAnomaly) _anomalyDepth = _count;
            else _disabledDepth = Math.Max(0, _count - _enabledFrom);
        }
    }
}

/// <summary>Scope returned by <see cref="Tensor.NoGrad"/>; dispose to re-enable recording (a second dispose does nothing).</summary>
public readonly struct NoGradScope : IDisposable
{
    private readonly GradMode.ScopeStack? _stack;
    private readonly long _token;

    internal NoGradScope(GradMode.ScopeStack stack, long token)
    {
        _stack = stack;
        _token = token;
    }

    /// <summary>Ends the scope; disposing it again, or disposing a <c>default</c> scope, does nothing.</summary>
    public void Dispose() => _stack?.Pop(_token);
}

/// <summary>Scope returned by <see cref="Tensor.DetectAnomaly"/> (a second dispose does nothing).</summary>
public readonly struct AnomalyScope : IDisposable
{
    private readonly GradMode.ScopeStack? _stack;
    private readonly long _token;

    internal AnomalyScope(GradMode.ScopeStack stack, long token)
    {
        _stack = stack;
        _token = token;
    }

    /// <summary>Ends the scope; disposing it again, or disposing a <c>default</c> scope, does nothing.</summary>
    public void Dispose() => _stack?.Pop(_token);
}

/// <summary>Scope returned by <see cref="Tensor.EnableGrad"/>; dispose to go back to the enclosing mode.</summary>
public readonly struct EnableGradScope : IDisposable
{
    private readonly int _depth;

    internal EnableGradScope(int depth) => _depth = depth;

    /// <summary>Ends the scope.</summary>
    public void Dispose() => GradMode.Restore(_depth);
}
