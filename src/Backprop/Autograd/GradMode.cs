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
