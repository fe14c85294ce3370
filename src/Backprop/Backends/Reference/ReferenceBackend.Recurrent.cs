namespace Backprop.Backends.Reference;

// The recurrent cells written as their definitions: one element at a time, in double.
internal sealed partial class ReferenceBackend
{
    private static double Sig(double v) => 1 / (1 + Math.Exp(-v));

    public void RecurrentForward(RecurrentCell cell, in View xw, in View whh, in View bhh, in View hs, in View cs, in View saved, in View hw)
    {
        var sx = S(xw); var sw = S(whh); var sb = S(bhh); var sh = S(hs); var ss = S(saved);
        var sc = cell == RecurrentCell.Lstm ? S(cs) : null;
        int steps = saved._shape[0], batch = saved._shape[1], h = hs._shape[2], g = cell.Blocks() * h, sw_ = cell.SavedBlocks() * h;
        var pre = new double[g];
        for (int t = 0; t < steps; t++)
            for (int b = 0; b < batch; b++)
            {
                int hp = hs._offset + (t * batch + b) * h, hn = hp + batch * h;
                for (int j = 0; j < g; j++)
                {
                    double acc = sb.Get(bhh._offset + j);
                    for (int k = 0; k < h; k++) acc += sw.Get(whh._offset + j * h + k) * sh.Get(hp + k);
                    pre[j] = acc; // W_hh h + b_hh
                }
                int xo = xw._offset + (t * batch + b) * g, so = saved._offset + (t * batch + b) * sw_;
                for (int j = 0; j < h; j++)
                {
                    switch (cell)
                    {
                        case RecurrentCell.RnnTanh:
                        {
                            double v = Math.Tanh(sx.Get(xo + j) + pre[j]);
                            sh.Set(hn + j, v);
                            ss.Set(so + j, v);
                            break;
                        }
                        case RecurrentCell.Lstm:
                        {
                            double i = Sig(sx.Get(xo + j) + pre[j]), f = Sig(sx.Get(xo + h + j) + pre[h + j]);
                            double gg = Math.Tanh(sx.Get(xo + 2 * h + j) + pre[2 * h + j]), o = Sig(sx.Get(xo + 3 * h + j) + pre[3 * h + j]);
                            int cp = cs._offset + (t * batch + b) * h, cn = cp + batch * h;
                            double c = f * sc!.Get(cp + j) + i * gg, tc = Math.Tanh(c);
                            sc.Set(cn + j, c);
                            sh.Set(hn + j, o * tc);
                            ss.Set(so + j, i); ss.Set(so + h + j, f); ss.Set(so + 2 * h + j, gg); ss.Set(so + 3 * h + j, o); ss.Set(so + 4 * h + j, tc);
                            break;
                        }
                        default:
                        {
                            double r = Sig(sx.Get(xo + j) + pre[j]), z = Sig(sx.Get(xo + h + j) + pre[h + j]);
                            double hnv = pre[2 * h + j], n = Math.Tanh(sx.Get(xo + 2 * h + j) + r * hnv);
                            sh.Set(hn + j, (1 - z) * n + z * sh.Get(hp + j));
                            ss.Set(so + j, r); ss.Set(so + h + j, z); ss.Set(so + 2 * h + j, n); ss.Set(so + 3 * h + j, hnv);
                            break;
                        }
                    }
                }
            }
    }

    public void RecurrentBackward(RecurrentCell cell, in View whh, in View hs, in View cs, in View saved, in View dhs,
        in View dgi, in View dgh, in View dh, in View dc)
    {
        var sw = S(whh); var sh = S(hs); var ss = S(saved); var sd = S(dhs); var si = S(dgi); var sg = S(dgh);
        int steps = saved._shape[0], batch = saved._shape[1], h = hs._shape[2], g = cell.Blocks() * h, sw_ = cell.SavedBlocks() * h;
        var run = new double[batch * h];   // gradient reaching h_{t+1} through the recurrence
        var dcr = new double[batch * h];   // gradient reaching c_{t+1}
        if (cell == RecurrentCell.Lstm)
            for (int p = 0; p < batch * h; p++) dcr[p] = sd.Get(dhs._offset + (steps + 1) * batch * h + p);
        for (int t = steps - 1; t >= 0; t--)
        {
            var next = new double[batch * h];
            for (int b = 0; b < batch; b++)
            {
                int so = saved._offset + (t * batch + b) * sw_, go = (t * batch + b) * g, row = b * h;
                for (int j = 0; j < h; j++)
                {
                    double dht = sd.Get(dhs._offset + ((t + 1) * batch + b) * h + j) + run[row + j];
                    switch (cell)
                    {
                        case RecurrentCell.RnnTanh:
                        {
                            double y = ss.Get(so + j);
                            si.Set(dgi._offset + go + j, dht * (1 - y * y));
                            break;
                        }
                        case RecurrentCell.Lstm:
                        {
                            double i = ss.Get(so + j), f = ss.Get(so + h + j), gg = ss.Get(so + 2 * h + j), o = ss.Get(so + 3 * h + j), tc = ss.Get(so + 4 * h + j);
                            double cprev = S(cs).Get(cs._offset + (t * batch + b) * h + j);
                            double dcv = dcr[row + j] + dht * o * (1 - tc * tc);
                            si.Set(dgi._offset + go + j, dcv * gg * i * (1 - i));
                            si.Set(dgi._offset + go + h + j, dcv * cprev * f * (1 - f));
                            si.Set(dgi._offset + go + 2 * h + j, dcv * i * (1 - gg * gg));
                            si.Set(dgi._offset + go + 3 * h + j, dht * tc * o * (1 - o));
                            dcr[row + j] = dcv * f;
                            break;
                        }
                        default:
                        {
                            double r = ss.Get(so + j), z = ss.Get(so + h + j), n = ss.Get(so + 2 * h + j), hnv = ss.Get(so + 3 * h + j);
                            double hprev = sh.Get(hs._offset + (t * batch + b) * h + j);
                            double dpn = dht * (1 - z) * (1 - n * n);
                            double dpr = dpn * hnv * r * (1 - r), dpz = dht * (hprev - n) * z * (1 - z);
                            si.Set(dgi._offset + go + j, dpr); sg.Set(dgh._offset + go + j, dpr);
                            si.Set(dgi._offset + go + h + j, dpz); sg.Set(dgh._offset + go + h + j, dpz);
                            si.Set(dgi._offset + go + 2 * h + j, dpn); sg.Set(dgh._offset + go + 2 * h + j, dpn * r);
                            next[row + j] = dht * z; // h_t reaches h_{t+1} directly through z
                            break;
                        }
                    }
                }
                var src = cell == RecurrentCell.Gru ? sg : si;
                int srcOff = (cell == RecurrentCell.Gru ? dgh._offset : dgi._offset) + go;
                for (int k = 0; k < h; k++)
                {
                    double acc = 0;
                    for (int j = 0; j < g; j++) acc += src.Get(srcOff + j) * sw.Get(whh._offset + j * h + k);
                    next[row + k] += acc;
                }
            }
            run = next;
        }
        var sdh = S(dh);
        for (int p = 0; p < batch * h; p++) sdh.Set(dh._offset + p, run[p] + sd.Get(dhs._offset + p));
        if (cell == RecurrentCell.Lstm)
        {
            var sdc = S(dc);
            for (int p = 0; p < batch * h; p++) sdc.Set(dc._offset + p, dcr[p]);
        }
    }
}
