namespace Backprop.Backends.Reference;

// Convolutions written as their definitions: one output (or one weight) at a time, a sum in double
// over the kernel taps that land inside the input.
internal sealed partial class ReferenceBackend
{
    /// <summary>The input position tap (kh, kw) of output (i, j) reads, or false when it falls in the padding.</summary>
    private static bool Tap(in ConvGeometry g, int i, int j, int kh, int kw, out int ih, out int iw)
    {
        ih = i * g.SH - g.PH + kh * g.DH;
        iw = j * g.SW - g.PW + kw * g.DW;
        return ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
    }

    private static int XAt(in View x, in ConvGeometry g, int n, int c, int h, int w) => x._offset + ((n * g.C + c) * g.H + h) * g.W + w;
    private static int YAt(in View y, in ConvGeometry g, int n, int o, int i, int j) => y._offset + ((n * g.O + o) * g.OH + i) * g.OW + j;
    private static int WAt(in View w, in ConvGeometry g, int o, int c, int kh, int kw) => w._offset + ((o * g.Cg + c) * g.KH + kh) * g.KW + kw;

    public void ConvForward(in View x, in View w, in View bias, bool hasBias, in View y, in ConvGeometry g)
    {
        var sx = S(x);
        var sw = S(w);
        var sy = S(y);
        for (int n = 0; n < g.N; n++)
            for (int o = 0; o < g.O; o++)
            {
                int grp = o / g.Og;
                for (int i = 0; i < g.OH; i++)
                    for (int j = 0; j < g.OW; j++)
                    {
                        double acc = hasBias ? S(bias).Get(bias._offset + o) : 0;
                        for (int c = 0; c < g.Cg; c++)
                            for (int kh = 0; kh < g.KH; kh++)
                                for (int kw = 0; kw < g.KW; kw++)
                                    if (Tap(g, i, j, kh, kw, out int ih, out int iw))
                                        acc += sx.Get(XAt(x, g, n, grp * g.Cg + c, ih, iw)) * sw.Get(WAt(w, g, o, c, kh, kw));
                        sy.Set(YAt(y, g, n, o, i, j), acc);
                    }
            }
    }

    public void ConvBackwardInput(in View dy, in View w, in View dx, in ConvGeometry g)
    {
        var sdy = S(dy);
        var sw = S(w);
        var sdx = S(dx);
        // gathered per input element (no scatter): every (output, tap) pair that reads x[n, ch, h, v]
        for (int n = 0; n < g.N; n++)
            for (int ch = 0; ch < g.C; ch++)
            {
                int grp = ch / g.Cg, c = ch % g.Cg;
                for (int h = 0; h < g.H; h++)
                    for (int v = 0; v < g.W; v++)
                    {
                        double acc = 0;
                        for (int oo = 0; oo < g.Og; oo++)
                        {
                            int o = grp * g.Og + oo;
                            for (int kh = 0; kh < g.KH; kh++)
                                for (int kw = 0; kw < g.KW; kw++)
                                {
                                    // the output (i, j) whose tap (kh, kw) lands on (h, v), if any
                                    int ni = h + g.PH - kh * g.DH, nj = v + g.PW - kw * g.DW;
                                    if (ni < 0 || nj < 0 || ni % g.SH != 0 || nj % g.SW != 0) continue;
                                    int i = ni / g.SH, j = nj / g.SW;
                                    if (i >= g.OH || j >= g.OW) continue;
                                    acc += sdy.Get(YAt(dy, g, n, o, i, j)) * sw.Get(WAt(w, g, o, c, kh, kw));
                                }
                        }
                        sdx.Set(XAt(dx, g, n, ch, h, v), acc);
                    }
            }
    }

    public void ConvBackwardWeight(in View x, in View dy, in View dw, in ConvGeometry g, bool accumulate)
    {
        var sx = S(x);
        var sdy = S(dy);
        var sdw = S(dw);
        for (int o = 0; o < g.O; o++)
        {
            int grp = o / g.Og;
            for (int c = 0; c < g.Cg; c++)
                for (int kh = 0; kh < g.KH; kh++)
                    for (int kw = 0; kw < g.KW; kw++)
                    {
                        int p = WAt(dw, g, o, c, kh, kw);
                        double acc = accumulate ? sdw.Get(p) : 0;
                        for (int n = 0; n < g.N; n++)
                            for (int i = 0; i < g.OH; i++)
                                for (int j = 0; j < g.OW; j++)
                                    if (Tap(g, i, j, kh, kw, out int ih, out int iw))
                                        acc += sdy.Get(YAt(dy, g, n, o, i, j)) * sx.Get(XAt(x, g, n, grp * g.Cg + c, ih, iw));
                        sdw.Set(p, acc);
                    }
        }
    }
}
