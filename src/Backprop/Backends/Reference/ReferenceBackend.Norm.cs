namespace Backprop.Backends.Reference;

/// <summary>Batch normalization as its formulas, in double, one element at a time.</summary>
internal sealed partial class ReferenceBackend
{
    public void BatchNormForward(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training, double eps, in View y)
    {
        var sx = S(x);
        var sy = S(y);
        var sm = S(mean);
        var si = S(invstd);
        int n = x._shape[0], c = x._shape[1], l = x._shape[2];
        for (int ch = 0; ch < c; ch++)
        {
            if (training)
            {
                double sum = 0;
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < l; j++) sum += sx.Get(x._offset + (i * c + ch) * l + j);
                double mu = sum / (n * l), sq = 0;
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < l; j++)
                    {
                        double d = sx.Get(x._offset + (i * c + ch) * l + j) - mu;
                        sq += d * d;
                    }
                sm.Set(mean._offset + ch, mu);
                si.Set(invstd._offset + ch, 1 / Math.Sqrt(sq / (n * l) + eps));
            }
            double m = sm.Get(mean._offset + ch), s = si.Get(invstd._offset + ch);
            double wt = affine ? S(weight).Get(weight._offset + ch) : 1, b = affine ? S(bias).Get(bias._offset + ch) : 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < l; j++)
                {
                    int at = (i * c + ch) * l + j;
                    sy.Set(y._offset + at, (sx.Get(x._offset + at) - m) * s * wt + b);
                }
        }
    }

    public void BatchNormBackward(in View dy, in View x, in View mean, in View invstd, in View weight, bool affine, bool training,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias)
    {
        var sd = S(dy);
        var sx = S(x);
        int n = x._shape[0], c = x._shape[1], l = x._shape[2];
        double count = (double)n * l;
        for (int ch = 0; ch < c; ch++)
        {
            double m = S(mean).Get(mean._offset + ch), s = S(invstd).Get(invstd._offset + ch);
            double wt = affine ? S(weight).Get(weight._offset + ch) : 1;
            double sumDy = 0, sumDyXhat = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < l; j++)
                {
                    int at = (i * c + ch) * l + j;
                    double g = sd.Get(dy._offset + at);
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
                    double g = sd.Get(dy._offset + at);
                    double v = training
                        ? wt * s * (g - sumDy / count - (sx.Get(x._offset + at) - m) * s * sumDyXhat / count)
                        : wt * s * g;
                    S(dx).Set(dx._offset + at, v);
                }
        }
    }
}
