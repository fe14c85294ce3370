namespace Backprop.Data;

/// <summary>
/// A mini-batch: inputs and targets stacked along a new first dimension. Deconstructs, so
/// <c>foreach (var (x, y) in loader)</c> works.
/// </summary>
/// <param name="Input">The inputs, shape [batch, ...sample input shape].</param>
/// <param name="Target">The targets, shape [batch, ...sample target shape].</param>
public readonly record struct Batch(Tensor Input, Tensor Target);
