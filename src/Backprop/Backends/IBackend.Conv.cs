namespace Backprop.Backends;

/// <summary>
/// The sizes of one 2-D convolution, in the forward direction: input x [N, C, H, W], weight
/// w [O, C/Groups, KH, KW], output y [N, O, OH, OW], with
/// y[n, o, i, j] = Σ_{c, kh, kw} x[n, g·C/G + c, i·SH − PH + kh·DH, j·SW − PW + kw·DW] · w[o, c, kh, kw]
/// (g = the group of o; positions outside the input read 0). Padding after the input (bottom, right)
/// is implied by OH and OW, so "same" padding with an even kernel (more after than before) fits.
/// A transposed convolution is the backward-input direction of the same geometry.
/// </summary>
internal readonly struct ConvGeometry(int n, int c, int h, int w, int o, int kh, int kw, int oh, int ow,
    int sh, int sw, int ph, int pw, int dh, int dw, int groups)
{
    public readonly int N = n, C = c, H = h, W = w, O = o, KH = kh, KW = kw, OH = oh, OW = ow;
    public readonly int SH = sh, SW = sw, PH = ph, PW = pw, DH = dh, DW = dw, Groups = groups;

    /// <summary>Input channels per group.</summary>
    public int Cg => C / Groups;
    /// <summary>Output channels per group.</summary>
    public int Og => O / Groups;
    /// <summary>Rows of the unfolded input of one group (C/G · KH · KW): the GEMM's inner dimension.</summary>
    public int Rows => Cg * KH * KW;
    /// <summary>Multiply-adds of the forward pass.</summary>
    public long Macs => (long)N * O * OH * OW * Rows;
    /// <summary>A 1×1 kernel with stride 1 and no padding: the input is its own unfolded matrix.</summary>
    public bool Pointwise => KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0 && OH == H && OW == W;

    public override string ToString() =>
        $"N={N} C={C} H={H} W={W} O={O} k={KH}x{KW} out={OH}x{OW} stride={SH},{SW} pad={PH},{PW} dilation={DH},{DW} groups={Groups}";
}

internal partial interface IBackend
{
    /// <summary>
    /// y = conv(x, w) (+ bias[o] on every output position when <paramref name="hasBias"/>), all views
    /// contiguous, y overwritten; see <see cref="ConvGeometry"/>.
    /// </summary>
    void ConvForward(in View x, in View w, in View bias, bool hasBias, in View y, in ConvGeometry g);

    /// <summary>
    /// dx = the gradient of ⟨dy, conv(x, w)⟩ with respect to x (a transposed convolution of dy with w),
    /// overwriting the contiguous dx [N, C, H, W]; dy [N, O, OH, OW] and w contiguous.
    /// </summary>
    void ConvBackwardInput(in View dy, in View w, in View dx, in ConvGeometry g);

    /// <summary>
    /// dw (+)= the gradient of ⟨dy, conv(x, w)⟩ with respect to w: for each weight, Σ over samples and
    /// output positions of dy times the input it multiplies. Contiguous views; with
    /// <paramref name="accumulate"/> adds into dw, else overwrites it.
    /// </summary>
    void ConvBackwardWeight(in View x, in View dy, in View dw, in ConvGeometry g, bool accumulate);
}
