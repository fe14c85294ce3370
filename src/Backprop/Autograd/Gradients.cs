using Backprop.Autograd;

namespace Backprop;

/// <summary>
/// Gradients returned rather than accumulated, like PyTorch's <c>torch.autograd.grad</c>: the
/// functional form of backward, for gradient penalties, Hessian-vector products and meta-learning.
/// </summary>
public static class Gradients
{
    /// <summary>
    /// The gradient of Σᵢ ⟨gradOutputs[i], outputs[i]⟩ with respect to each of <paramref name="inputs"/>
    /// (which may be leaves or intermediate tensors), returned in the order of the inputs. No tensor's
    /// <see cref="Tensor.Grad"/> is changed and no post-accumulate hook runs.
    /// </summary>
    /// <param name="outputs">Tensors to differentiate; a scalar needs no output gradient.</param>
    /// <param name="inputs">Tensors to differentiate with respect to; each must require grad.</param>
    /// <param name="gradOutputs">dL/doutputs[i] (null entries, or null altogether, mean 1 for scalar outputs).</param>
    /// <param name="retainGraph">Keep the graph for another pass; defaults to <paramref name="createGraph"/>.</param>
    /// <param name="createGraph">Record the backward pass, so that the returned gradients can be differentiated again.</param>
    /// <param name="allowUnused">Return null for an input the outputs do not depend on, instead of throwing.</param>
    public static Tensor?[] Compute(Tensor[] outputs, Tensor[] inputs, Tensor?[]? gradOutputs = null, bool? retainGraph = null,
        bool createGraph = false, bool allowUnused = false)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        ArgumentNullException.ThrowIfNull(inputs);
        return Engine.Grad(outputs, inputs, gradOutputs, retainGraph ?? createGraph, createGraph, allowUnused);
    }

    /// <summary>The gradient of one scalar <paramref name="output"/> with respect to each of <paramref name="inputs"/>.</summary>
    public static Tensor[] Compute(Tensor output, params Tensor[] inputs) =>
        Compute([output], inputs)!;

    /// <summary>
    /// The gradient of one <paramref name="output"/> with respect to each of <paramref name="inputs"/>,
    /// recorded when <paramref name="createGraph"/> is set (for a second derivative).
    /// </summary>
    public static Tensor[] Compute(Tensor output, Tensor[] inputs, bool createGraph, Tensor? gradOutput = null) =>
        Compute([output], inputs, gradOutput == null ? null : [gradOutput], createGraph: createGraph)!;
}
