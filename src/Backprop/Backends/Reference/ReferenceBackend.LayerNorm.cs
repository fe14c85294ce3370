namespace Backprop.Backends.Reference;

// Layer normalization as its definition, in double.
internal sealed partial class ReferenceBackend
{
    public void LayerNormForward(in View x, in View weight, in View bias, bool hasWeight, bool hasBias, double eps, in View y, in View mean, in View rstd)
    {
        var sx = S(x); var sy = S(y);
        int n = x._shape[^1], rows = n == 0 ? 0 : x._numel / n;
        for (int r = 0; r < rows; r++)
        {
            double mu = 0, var = 0;
            for (int i = 0; i < n; i++) mu += sx.Get(x._offset + r * n + i);
            mu /= n;
            for (int i = 0; i < n; i++) { double d = sx.Get(x._offset + r * n + i) - mu; var += d * d; }
            var /= n;
            double rs = 1 / Math.Sqrt(var + eps);
            S(mean).Set(mean._offset + r, mu);
            S(rstd).Set(rstd._offset + r, rs);
            for (int i = 0; i < n; i++)
            {
                double v = (sx.Get(x._offset + r * n + i) - mu) * rs;
                if (hasWeight) v *= S(weight).Get(weight._offset + i);
                if (hasBias) v += S(bias).Get(bias._offset + i);
                sy.Set(y._offset + r * n + i, v);
            }
        }
    }

    public void LayerNormBackward(in View dy, in View x, in View weight, bool hasWeight, in View mean, in View rstd,
        in View dx, bool computeDx, in View dWeight, bool computeDWeight, in View dBias, bool computeDBias)
    {
        var sx = S(x); var sdy = S(dy);
        int n = x._shape[^1], rows = n == 0 ? 0 : x._numel / n;
        var xhat = new double[n];
        var g = new double[n];
        var sw = new double[n];
        var sb = new double[n];
        for (int r = 0; r < rows; r++)
        {
            double mu = S(mean).Get(mean._offset + r), rs = S(rstd).Get(rstd._offset + r);
            double mg = 0, mgx = 0;
            for (int i = 0; i < n; i++)
            {
                double d = sdy.Get(dy._offset + r * n + i);
                xhat[i] = (sx.Get(x._offset + r * n + i) - mu) * rs;
                g[i] = hasWeight ? d * S(weight).Get(weight._offset + i) : d;
                sw[i] += d * xhat[i];
                sb[i] += d;
                mg += g[i];
                mgx += g[i] * xhat[i];
            }
            mg /= n;
            mgx /= n;
            if (computeDx)
                for (int i = 0; i < n; i++) S(dx).Set(dx._offset + r * n + i, rs * (g[i] - mg - xhat[i] * mgx));
        }
        for (int i = 0; i < n; i++)
        {
            if (computeDWeight) S(dWeight).Set(dWeight._offset + i, S(dWeight).Get(dWeight._offset + i) + sw[i]);
            if (computeDBias) S(dBias).Set(dBias._offset + i, S(dBias).Get(dBias._offset + i) + sb[i]);
        }
    }
}
