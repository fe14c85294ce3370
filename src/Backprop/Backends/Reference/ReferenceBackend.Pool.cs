namespace Backprop.Backends.Reference;

/// <summary>Pooling as its definition: every window, every tap, one element at a time.</summary>
internal sealed partial class ReferenceBackend
{
    public void MaxPool2d(in View x, in View y, in View indices, in Pool2dGeometry g)
    {
        var sx = S(x);
        var sy = S(y);
        var si = S(indices);
        int plane = g.H * g.W, oplane = g.OH * g.OW;
        for (int p = 0; p < g.Planes; p++)
            for (int oh = 0; oh < g.OH; oh++)
                for (int ow = 0; ow < g.OW; ow++)
                {
                    double best = double.NegativeInfinity;
                    long arg = -1;
                    for (int kh = 0; kh < g.KH; kh++)
                    {
                        int h = oh * g.SH - g.PH + kh * g.DH;
                        if (h < 0 || h >= g.H) continue;
                        for (int kw = 0; kw < g.KW; kw++)
                        {
                            int w = ow * g.SW - g.PW + kw * g.DW;
                            if (w < 0 || w >= g.W) continue;
                            double v = sx.Get(x._offset + p * plane + h * g.W + w);
                            if (arg < 0 || v > best || double.IsNaN(v))
                            {
                                best = v;
                                arg = h * g.W + w;
                            }
                        }
                    }
                    int o = p * oplane + oh * g.OW + ow;
                    sy.Set(y._offset + o, best);
                    si.SetLong(indices._offset + o, arg);
                }
    }

    public void MaxPool2dBackward(in View dy, in View indices, in View dx, in Pool2dGeometry g)
    {
        var sd = S(dy);
        var si = S(indices);
        var sx = S(dx);
        int plane = g.H * g.W, oplane = g.OH * g.OW;
        for (int i = 0; i < dx._numel; i++) sx.Set(dx._offset + i, 0);
        for (int p = 0; p < g.Planes; p++)
            for (int o = 0; o < oplane; o++)
            {
                int at = dx._offset + p * plane + (int)si.GetLong(indices._offset + p * oplane + o);
                sx.Set(at, sx.Get(at) + sd.Get(dy._offset + p * oplane + o));
            }
    }

    public void AvgPool2d(in View x, in View y, in Pool2dGeometry g)
    {
        var sx = S(x);
        var sy = S(y);
        int plane = g.H * g.W, oplane = g.OH * g.OW;
        for (int p = 0; p < g.Planes; p++)
            for (int oh = 0; oh < g.OH; oh++)
                for (int ow = 0; ow < g.OW; ow++)
                {
                    var r = g.RowWindow(oh);
                    var c = g.ColWindow(ow);
                    double s = 0;
                    for (int h = r.Start; h < r.End; h++)
                        for (int w = c.Start; w < c.End; w++)
                            s += sx.Get(x._offset + p * plane + h * g.W + w);
                    sy.Set(y._offset + p * oplane + oh * g.OW + ow, s / g.Divisor(r, c));
                }
    }

    public void AvgPool2dBackward(in View dy, in View dx, in Pool2dGeometry g)
    {
        var sd = S(dy);
        var sx = S(dx);
        int plane = g.H * g.W, oplane = g.OH * g.OW;
        for (int i = 0; i < dx._numel; i++) sx.Set(dx._offset + i, 0);
        for (int p = 0; p < g.Planes; p++)
            for (int oh = 0; oh < g.OH; oh++)
                for (int ow = 0; ow < g.OW; ow++)
                {
                    var r = g.RowWindow(oh);
                    var c = g.ColWindow(ow);
                    double v = sd.Get(dy._offset + p * oplane + oh * g.OW + ow) / g.Divisor(r, c);
                    for (int h = r.Start; h < r.End; h++)
                        for (int w = c.Start; w < c.End; w++)
                        {
                            int at = dx._offset + p * plane + h * g.W + w;
                            sx.Set(at, sx.Get(at) + v);
                        }
                }
    }
}
