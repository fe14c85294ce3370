namespace Backprop.Data;

/// <summary>Which part of a dataset to load.</summary>
public enum Split
{
    /// <summary>The training set.</summary>
    Train,
    /// <summary>The held-out test set.</summary>
    Test,
}
