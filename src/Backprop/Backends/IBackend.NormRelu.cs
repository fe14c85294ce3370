namespace Backprop.Backends;

internal partial interface IBackend
{
    /// <summary>
    /// <see cref="BatchNormForward"/> followed by ReLU in one call: y = max(batch-norm(x), 0) with the
    /// ReLU's own rule (NaN propagates), each element the same bits as the two ops one after the other.
    /// </summary>
    void BatchNormReluForward(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training, double eps, in View y);

    /// <summary>
    /// The backward of <see cref="BatchNormReluForward"/>: <see cref="BatchNormBackward"/> of the ReLU's
    /// input gradient g = (y &gt; 0 ? dy : 0), where y is the contiguous output [N, C, L] of the forward,
    /// each output the same bits as ReLU's backward and then batch norm's. <paramref name="bias"/> (with
    /// <paramref name="affine"/>) is the forward's: a backend may recompute y's sign from x instead of reading y.
    /// </summary>
    void BatchNormReluBackward(in View dy, in View y, in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias);

    /// <summary>
    /// <see cref="BatchNormReluForward"/> in training (x [N, C, L] with L = H·W, <paramref name="mean"/> and
    /// <paramref name="invstd"/> written) followed by <see cref="MaxPool2d"/> of its output with windows that
    /// tile the input (kernel = stride, no padding or dilation): the pooled y [N, C, OH, OW] and the argmax
    /// offsets each the same as the three ops one after the other; the batch-norm output need not exist.
    /// </summary>
    void BatchNormReluMaxPoolForward(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, double eps,
        in View y, in View indices, in Pool2dGeometry pool);

    /// <summary>
    /// The backward of <see cref="BatchNormReluMaxPoolForward"/>: <see cref="BatchNormReluBackward"/> (in
    /// training) of <see cref="MaxPool2dBackward"/>'s gradient of the pooled <paramref name="dy"/>, each output
    /// the same bits as those two; the ReLU's mask is recomputed from x (there is no saved output).
    /// </summary>
    void BatchNormReluMaxPoolBackward(in View dy, in View indices, in View x, in View mean, in View invstd, in View weight, in View bias, bool affine,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias, in Pool2dGeometry pool);
}
