namespace Backprop.Backends;

internal partial interface IBackend
{
    /// <summary>
    /// Batch normalization of a contiguous x read as [N, C, L] into contiguous y of the same shape:
    /// y = (x − mean[c])·invstd[c]·weight[c] + bias[c] (without weight and bias unless
    /// <paramref name="affine"/>; their views are then unused). With <paramref name="training"/> the
    /// kernel first computes each channel's mean and invstd = 1/√(biased variance + eps) over N·L
    /// values and writes them into the contiguous [C] views <paramref name="mean"/> and
    /// <paramref name="invstd"/>; otherwise it reads them.
    /// </summary>
    void BatchNormForward(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training, double eps, in View y);

    /// <summary>
    /// The backward of <see cref="BatchNormForward"/> from contiguous dy and x [N, C, L] and the saved
    /// [C] mean and invstd: dbias[c] = Σ dy, dweight[c] = Σ dy·x̂ with x̂ = (x − mean)·invstd (written
    /// when <paramref name="paramGrads"/>), and when <paramref name="inputGrad"/>
    /// dx = weight·invstd·(dy − Σdy/M − x̂·Σdy·x̂/M) in training (M = N·L), weight·invstd·dy otherwise
    /// (weight 1 unless <paramref name="affine"/>). All outputs are overwritten.
    /// </summary>
    void BatchNormBackward(in View dy, in View x, in View mean, in View invstd, in View weight, bool affine, bool training,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias);
}
