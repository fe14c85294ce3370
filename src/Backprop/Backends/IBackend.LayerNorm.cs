namespace Backprop.Backends;

internal partial interface IBackend
{
    /// <summary>
    /// Layer normalization of each row of the contiguous x [rows, n]: mean and rstd = 1/√(var + eps) (biased
    /// variance) of each row into the contiguous <paramref name="mean"/> and <paramref name="rstd"/> [rows],
    /// and y = (x − mean)·rstd·weight + bias into the contiguous y [rows, n]. Weight and bias are contiguous [n],
    /// read only when <paramref name="hasWeight"/> / <paramref name="hasBias"/> (otherwise pass any view).
    /// </summary>
    void LayerNormForward(in View x, in View weight, in View bias, bool hasWeight, bool hasBias, double eps, in View y, in View mean, in View rstd);

    /// <summary>
    /// The layer-norm backward from the saved <paramref name="mean"/> and <paramref name="rstd"/>: with
    /// x̂ = (x − mean)·rstd and g = dy·weight (dy without a weight), writes dx = rstd·(g − mean(g) − x̂·mean(g·x̂))
    /// into the contiguous dx when <paramref name="computeDx"/>, and adds Σ_rows dy·x̂ into dWeight and Σ_rows dy into
    /// dBias (contiguous [n]) when <paramref name="computeDWeight"/> / <paramref name="computeDBias"/>.
    /// </summary>
    void LayerNormBackward(in View dy, in View x, in View weight, bool hasWeight, in View mean, in View rstd,
        in View dx, bool computeDx, in View dWeight, bool computeDWeight, in View dBias, bool computeDBias);
}
