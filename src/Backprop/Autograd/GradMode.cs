namespace Backprop.Autograd;

/// <summary>Whether operations are recorded for backward on the current thread.</summary>
public static class GradMode
{
    [ThreadStatic] private static int _disabledDepth;
    [ThreadStatic] private static int _anomalyDepth;

    /// <summary>True unless inside a <see cref="Tensor.NoGrad"/> scope.</summary>
    public static bool IsEnabled => _disabledDepth == 0;

    /// <summary>True inside a <see cref="Tensor.DetectAnomaly"/> scope.</summary>
    public static bool AnomalyDetection => _anomalyDepth > 0;

    internal static void Push() => _disabledDepth++;
    internal static void Pop() => _disabledDepth--;
    /// <summary>Turns recording on whatever the enclosing NoGrad scopes say (a backward pass that builds its own graph); returns what <see cref="Restore"/> needs.</summary>
    internal static int Suspend()
    {
        int depth = _disabledDepth;
        _disabledDepth = 0;
        return depth;
    }

    internal static void Restore(int depth) => _disabledDepth = depth;
    internal static void PushAnomaly() => _anomalyDepth++;
    internal static void PopAnomaly() => _anomalyDepth--;
}

/// <summary>Scope returned by <see cref="Tensor.NoGrad"/>; dispose to re-enable recording.</summary>
public readonly struct NoGradScope : IDisposable
{
    /// <summary>Ends the scope.</summary>
    public void Dispose() => GradMode.Pop();
}

/// <summary>Scope returned by <see cref="Tensor.DetectAnomaly"/>.</summary>
public readonly struct AnomalyScope : IDisposable
{
    /// <summary>Ends the scope.</summary>
    public void Dispose() => GradMode.PopAnomaly();
}

/// <summary>Scope returned by <see cref="Tensor.EnableGrad"/>; dispose to go back to the enclosing mode.</summary>
public readonly struct EnableGradScope : IDisposable
{
    private readonly int _depth;

    internal EnableGradScope(int depth) => _depth = depth;

    /// <summary>Ends the scope.</summary>
    public void Dispose() => GradMode.Restore(_depth);
}
