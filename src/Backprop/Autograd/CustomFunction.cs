namespace Backprop.Autograd;

/// <summary>
/// An op defined by its user: a forward computed from tensors without recording, and a backward
/// that maps the output's gradient to the inputs' gradients (like PyTorch's torch.autograd.Function).
/// Subclass it and call <see cref="Apply(Tensor[])"/>, or use the static <see cref="Apply(string, Tensor[], Func{Tensor[], Tensor}, Func{Tensor[], Tensor, Tensor?[]})"/>
/// with two lambdas. Write the backward with tensor ops: it then also works when the backward pass
/// builds a graph (createGraph), so the op has second derivatives. Check both with
/// <see cref="GradCheck"/> and <see cref="GradGradCheck"/>.
/// </summary>
/// <example>
/// <code>
/// sealed class Cube : CustomFunction
/// {
///     protected override Tensor Forward(Tensor[] x) => x[0] * x[0] * x[0];
///     protected override Tensor?[] Backward(Tensor[] x, Tensor dy) => [dy * 3 * x[0] * x[0]];
/// }
/// var y = new Cube().Apply(x);
/// </code>
/// </example>
public abstract class CustomFunction
{
    /// <summary>The op's name in the graph and in error messages (the class name by default).</summary>
    public virtual string Name => GetType().Name;

    /// <summary>Computes the output from the inputs; nothing done here is recorded.</summary>
    protected abstract Tensor Forward(Tensor[] inputs);

    /// <summary>
    /// Given the gradient <paramref name="dy"/> of the output, returns one gradient per input (each of
    /// that input's shape, or null for none). <paramref name="inputs"/> are the tensors the op was applied to.
    /// </summary>
    protected abstract Tensor?[] Backward(Tensor[] inputs, Tensor dy);

    /// <summary>Runs the op on <paramref name="inputs"/> and records it when any of them requires grad.</summary>
    public Tensor Apply(params Tensor[] inputs) => Apply(Name, inputs, Forward, Backward);

    /// <summary>Runs an op given as two functions and records it when any input requires grad.</summary>
    public static Tensor Apply(string name, Tensor[] inputs, Func<Tensor[], Tensor> forward, Func<Tensor[], Tensor, Tensor?[]> backward)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(forward);
        ArgumentNullException.ThrowIfNull(backward);
        if (inputs.Length == 0) throw new ArgumentException($"{name}: a custom op needs at least one input.", nameof(inputs));
        Tensor y;
        using (Tensor.NoGrad()) y = forward(inputs);
        if (y == null) throw new InvalidOperationException($"{name}: the forward function returned null.");
        if (y.RequiresGrad || y._gradFn != null || inputs.Any(t => ReferenceEquals(t, y))) y = y.NoGraph().Clone().NoGraph(); // a fresh output the node can own
        var edges = (Tensor[])inputs.Clone();
        Engine.RecordMany(y, name, new FunctionBackward(name, edges, backward), edges);
        return y;
    }

    private readonly struct FunctionBackward(string name, Tensor[] inputs, Func<Tensor[], Tensor, Tensor?[]> backward) : IBackward
    {
        public void Backward(Tensor dy)
        {
            var grads = backward(inputs, dy)
                ?? throw new InvalidOperationException($"{name}: the backward function returned null; return one gradient (or null) per input.");
            if (grads.Length != inputs.Length)
                throw new InvalidOperationException($"{name}: the backward function returned {grads.Length} gradients for {inputs.Length} inputs.");
            for (int i = 0; i < inputs.Length; i++)
            {
                var g = grads[i];
                if (g == null || !inputs[i].RequiresGrad) continue;
                if (!g.Shape.Equals(inputs[i].Shape) || g.DType != inputs[i].DType)
                    throw new InvalidOperationException(
                        $"{name}: the backward function returned a gradient of shape {g.Shape} ({g.DType.Name()}) for input {i} of shape {inputs[i].Shape} ({inputs[i].DType.Name()}).");
                inputs[i].AccumulateGrad(g);
            }
        }
    }
}
