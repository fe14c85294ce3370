using Backprop.Autograd;

namespace Backprop.NN;

// Batch normalization with the ReLU after it as one op (the CNN preset's bn-relu; Sequential fuses a
// BatchNorm module followed by a Relu module into it): one pass fewer over the activations forward (the
// batch-norm output is neither written nor read back) and backward (nor is the ReLU's gradient), with
// the same numbers as Relu(BatchNorm(x)) to the bit.
public static partial class Functional
{
    /// <summary>
    /// ReLU of <see cref="BatchNorm"/> (the same arguments and running-statistics update) in one fused
    /// op: bit-identical to <c>BatchNorm(...).Relu()</c>, forward and backward. Backward: batch norm's
    /// backward of dy where the output is positive (0 elsewhere), as ordinary recorded ops under
    /// createGraph.
    /// </summary>
    public static Tensor BatchNormRelu(Tensor x, Tensor? runningMean, Tensor? runningVar, Tensor? weight = null, Tensor? bias = null,
        bool training = false, double momentum = 0.1, double eps = 1e-5)
    {
        ArgumentNullException.ThrowIfNull(x);
        // the fused kernels exist for the float types batch norm's kernels take; others run the two ops
        if (x.DType is not (DType.Float32 or DType.Float64))
            return BatchNorm(x, runningMean, runningVar, weight, bias, training, momentum, eps).Relu();
        return BatchNormCore(x, runningMean, runningVar, weight, bias, training, momentum, eps, relu: true);
    }

    /// <summary>g = (y &gt; 0 ? dy : 0), then <see cref="BatchNormBackward"/> of g; one backend call outside createGraph.</summary>
    private readonly struct BatchNormReluBackward(Tensor x, Tensor? weight, Tensor? bias, Tensor mean, Tensor invstd, Tensor y, bool training, double eps) : IBackward
    {
        public void Backward(Tensor dy)
        {
            int n = x.Size(0), c = x.Size(1), l = x.NumElements / Math.Max(1, n * c);
            var norm = new BatchNormBackward(x, weight, bias, mean, invstd, training, eps);
            if (Engine.CreateGraph)
            {
                // the mask y > 0 is a constant of the backward graph, as in ReLU's own backward
                norm.Recorded(dy * y.NoGraph().Gt(0).To(y.DType), n, c, l);
                return;
            }
            bool inputGrad = x.RequiresGrad, paramGrads = weight is not null && (weight.RequiresGrad || bias!.RequiresGrad);
            var dy3 = dy.ContiguousData().NoGraph().Reshape(n, c, l);
            var y3 = y.NoGraph().Reshape(n, c, l); // the op's own contiguous output
            var x3 = x.ContiguousData().NoGraph().Reshape(n, c, l);
            var dx = inputGrad ? Tensor.Empty(x._shape, x.DType, x.Backend) : null;
            var dw = paramGrads ? Tensor.Empty([c], x.DType, x.Backend) : null;
            var db = paramGrads ? Tensor.Empty([c], x.DType, x.Backend) : null;
            var wc = weight?.ContiguousData();
            var bc = bias?.ContiguousData();
            x.Backend.BatchNormReluBackward(dy3.V, y3.V, x3.V, mean.V, invstd.V, wc?.V ?? default, bc?.V ?? default, weight is not null, training,
                inputGrad, dx is null ? default : dx.Reshape(n, c, l).V, paramGrads, dw?.V ?? default, db?.V ?? default);
            if (dx is not null) x.AccumulateGrad(dx);
            if (dw is not null)
            {
                weight!.AccumulateGrad(dw);
                bias!.AccumulateGrad(db!);
            }
        }
    }
}
