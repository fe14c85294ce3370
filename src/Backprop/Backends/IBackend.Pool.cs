namespace Backprop.Backends;

/// <summary>
/// The geometry of a 2-D pooling over an NCHW tensor: N·C planes of H×W pooled to OH×OW. A window of
/// output (oh, ow) starts at (oh·SH − PH, ow·SW − PW) and takes KH×KW taps DH and DW apart; with
/// <see cref="Adaptive"/>, rows floor(oh·H/OH) to ceil((oh+1)·H/OH) (exclusive) instead (PyTorch's
/// adaptive pooling; kernel, stride, padding and dilation are then unused).
/// </summary>
internal readonly record struct Pool2dGeometry(
    int N, int C, int H, int W, int OH, int OW,
    int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW,
    bool CountIncludePad, bool Adaptive)
{
    /// <summary>Number of H×W planes (N·C).</summary>
    public int Planes => N * C;

    /// <summary>
    /// The input rows [start, end) an average pooling window of output row <paramref name="o"/> covers,
    /// clipped to the input, and the window's size counting padding (PyTorch's divisor with count_include_pad).
    /// </summary>
    public (int Start, int End, int Padded) RowWindow(int o) => Window(o, H, OH, KH, SH, PH);

    /// <summary>The same for columns.</summary>
    public (int Start, int End, int Padded) ColWindow(int o) => Window(o, W, OW, KW, SW, PW);

    private (int, int, int) Window(int o, int size, int outSize, int k, int s, int p)
    {
        if (Adaptive)
        {
            int a = (int)((long)o * size / outSize), b = (int)(((long)(o + 1) * size + outSize - 1) / outSize);
            return (a, b, b - a);
        }
        int start = o * s - p, end = Math.Min(start + k, size + p);
        int padded = end - start;
        return (Math.Max(start, 0), Math.Min(end, size), padded);
    }

    /// <summary>The divisor of an average window: its padded size with <see cref="CountIncludePad"/>, else the taps inside the input.</summary>
    public int Divisor((int Start, int End, int Padded) r, (int Start, int End, int Padded) c) =>
        CountIncludePad && !Adaptive ? r.Padded * c.Padded : (r.End - r.Start) * (c.End - c.Start);
}

internal partial interface IBackend
{
    /// <summary>
    /// Max pooling of a contiguous NCHW <paramref name="x"/> into contiguous <paramref name="y"/>
    /// [N, C, OH, OW] and int64 <paramref name="indices"/> of y's shape: the position h·W + w within
    /// its plane of each window's largest value (the first on ties; NaN wins, as in PyTorch).
    /// </summary>
    void MaxPool2d(in View x, in View y, in View indices, in Pool2dGeometry g);

    /// <summary>dx (contiguous NCHW, overwritten) = zeros with each dy element added at the position its <paramref name="indices"/> entry names in its plane.</summary>
    void MaxPool2dBackward(in View dy, in View indices, in View dx, in Pool2dGeometry g);

    /// <summary>Average pooling (or adaptive average pooling) of a contiguous NCHW x into contiguous y [N, C, OH, OW].</summary>
    void AvgPool2d(in View x, in View y, in Pool2dGeometry g);

    /// <summary>The adjoint of <see cref="AvgPool2d"/>: dx (contiguous NCHW, overwritten) = each dy element divided by its window's divisor, added over the window.</summary>
    void AvgPool2dBackward(in View dy, in View dx, in Pool2dGeometry g);
}
