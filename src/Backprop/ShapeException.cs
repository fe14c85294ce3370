namespace Backprop;

/// <summary>An operation received tensors whose shapes do not fit; the message names the op and the shapes.</summary>
public sealed class ShapeException : ArgumentException
{
    /// <summary>Creates the exception with a message that names the op and the shapes.</summary>
    public ShapeException(string message) : base(message) { }
}
