using Backprop.Backends;
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

    /// <summary>
    /// Max pooling (<c>MaxPool2d</c>) of
    /// <see cref="BatchNormRelu"/> in one fused op, for windows that tile the input (stride = kernel, no padding
    /// or dilation) in training (batch statistics): each normalized row is pooled while it is in L1, so the
    /// batch-norm output is neither written nor read back, and backward the pooling's gradient is rebuilt row by
    /// row inside batch norm's passes. Bit-identical to <c>MaxPool2d(BatchNormRelu(...), kernel)</c>, forward and
    /// backward; anything else (evaluation, other windows, other dtypes) runs as those two ops.
    /// <see cref="Sequential"/> uses it for BatchNorm2d, Relu and a tiling MaxPool2d modules in a row.
    /// </summary>
    public static Tensor BatchNormReluMaxPool2d(Tensor x, Tensor? runningMean, Tensor? runningVar, Tensor? weight, Tensor? bias,
        bool training, double momentum, double eps, (int H, int W) kernelSize)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!training || x.Rank != 4 || x.DType is not (DType.Float32 or DType.Float64) || x.Size(2) < kernelSize.H || x.Size(3) < kernelSize.W)
            return MaxPool2d(BatchNormRelu(x, runningMean, runningVar, weight, bias, training, momentum, eps), kernelSize);
        var g = PoolGeometry("MaxPool2d", x, kernelSize, kernelSize, (0, 0), (1, 1), countIncludePad: false);
        return BatchNormCore(x, runningMean, runningVar, weight, bias, training, momentum, eps, relu: true, pool: g);
    }

    /// <summary>
    /// The pooling's gradient (dy at each window's argmax), masked by the ReLU (the sign of the batch-norm
    /// output, recomputed from x and the saved statistics), then <see cref="BatchNormBackward"/>; one backend
    /// call outside createGraph, the pooling's recorded scatter and batch norm's recorded formula under it.
    /// </summary>
    private readonly struct BatchNormReluMaxPoolBackward(Tensor x, Tensor? weight, Tensor? bias, Tensor mean, Tensor invstd, Tensor indices,
        Pool2dGeometry pool, double eps) : IBackward
    {
        public void Backward(Tensor dy)
        {
            int n = x.Size(0), c = x.Size(1), l = x.NumElements / Math.Max(1, n * c);
            var norm = new BatchNormBackward(x, weight, bias, mean, invstd, true, eps);
            var x3 = x.ContiguousData().NoGraph().Reshape(n, c, l);
            var wc = weight?.ContiguousData();
            var bc = bias?.ContiguousData();
            if (Engine.CreateGraph)
            {
                var full = MaxPoolScatter(dy, indices, pool);
                var y = Tensor.Empty(x._shape, x.DType, x.Backend); // batch norm + ReLU's output, a constant of the backward graph
                x.Backend.BatchNormReluForward(x3.V, mean.V, invstd.V, wc?.V ?? default, bc?.V ?? default, weight is not null, false, eps, y.Reshape(n, c, l).V);
                norm.Recorded(full * y.Gt(0).To(y.DType), n, c, l);
                return;
            }
            bool inputGrad = x.RequiresGrad, paramGrads = weight is not null && (weight.RequiresGrad || bias!.RequiresGrad);
            var dyc = dy.ContiguousData().NoGraph();
            var dx = inputGrad ? Tensor.Empty(x._shape, x.DType, x.Backend) : null;
            var dw = paramGrads ? Tensor.Empty([c], x.DType, x.Backend) : null;
            var db = paramGrads ? Tensor.Empty([c], x.DType, x.Backend) : null;
            x.Backend.BatchNormReluMaxPoolBackward(dyc.V, indices.V, x3.V, mean.V, invstd.V, wc?.V ?? default, bc?.V ?? default, weight is not null,
                inputGrad, dx is null ? default : dx.Reshape(n, c, l).V, paramGrads, dw?.V ?? default, db?.V ?? default, pool);
            if (dx is not null) x.AccumulateGrad(dx);
            if (dw is not null)
            {
                weight!.AccumulateGrad(dw);
                bias!.AccumulateGrad(db!);
            }
        }
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
