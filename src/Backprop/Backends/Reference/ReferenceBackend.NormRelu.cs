namespace Backprop.Backends.Reference;

/// <summary>Batch normalization followed by ReLU: the two reference formulas one after the other, element by element.</summary>
internal sealed partial class ReferenceBackend
{
    public void BatchNormReluForward(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training, double eps, in View y)
    {
        BatchNormForward(x, mean, invstd, weight, bias, affine, training, eps, y);
        var sy = S(y);
        for (int i = 0; i < y._numel; i++)
        {
            double v = sy.Get(y._offset + i);
            sy.Set(y._offset + i, v > 0 || double.IsNaN(v) ? v : 0); // max(v, 0), NaN propagating
        }
    }

    public void BatchNormReluBackward(in View dy, in View y, in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias)
    {
        var sd = S(dy);
        var sy = S(y);
        var sx = S(x);
        int n = x._shape[0], c = x._shape[1], l = x._shape[2];
        double count = (double)n * l;
        int dyOff = dy._offset, yOff = y._offset;
        double G(int at) => sy.Get(yOff + at) > 0 ? sd.Get(dyOff + at) : 0; // ReLU's gradient, then batch norm's
        for (int ch = 0; ch < c; ch++)
        {
            double m = S(mean).Get(mean._offset + ch), s = S(invstd).Get(invstd._offset + ch);
            double wt = affine ? S(weight).Get(weight._offset + ch) : 1;
            double sumDy = 0, sumDyXhat = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < l; j++)
                {
                    int at = (i * c + ch) * l + j;
                    double g = G(at);
                    sumDy += g;
                    sumDyXhat += g * (sx.Get(x._offset + at) - m) * s;
                }
            if (paramGrads)
            {
                S(dweight).Set(dweight._offset + ch, sumDyXhat);
                S(dbias).Set(dbias._offset + ch, sumDy);
            }
            if (!inputGrad) continue;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < l; j++)
                {
                    int at = (i * c + ch) * l + j;
                    double g = G(at);
                    double v = training
                        ? wt * s * (g - sumDy / count - (sx.Get(x._offset + at) - m) * s * sumDyXhat / count)
                        : wt * s * g;
                    S(dx).Set(dx._offset + at, v);
                }
        }
    }
}
