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
}
