namespace Backprop.Backends.Reference;

// Attention as its definition: each row of scores in full, an ordinary softmax, in double.
internal sealed partial class ReferenceBackend
{
    private static int At4(in View x, int b, int h, int t, int e) =>
        x._offset + b * x._strides[0] + h * x._strides[1] + t * x._strides[2] + e * x._strides[3];

    public void AttentionForward(in View q, in View k, in View v, in View o, in View lse, bool causal, double scale)
    {
        int bs = q._shape[0], hs = q._shape[1], tq = q._shape[2], d = q._shape[3], tk = k._shape[2], dv = v._shape[3];
        var p = new double[tk];
        for (int b = 0; b < bs; b++)
            for (int h = 0; h < hs; h++)
                for (int i = 0; i < tq; i++)
                {
                    int kend = causal ? i + tk - tq + 1 : tk;
                    double max = double.NegativeInfinity, sum = 0;
                    for (int j = 0; j < kend; j++)
                    {
                        double s = 0;
                        for (int e = 0; e < d; e++) s += S(q).Get(At4(q, b, h, i, e)) * S(k).Get(At4(k, b, h, j, e));
                        p[j] = s * scale;
                        max = Math.Max(max, p[j]);
                    }
                    for (int j = 0; j < kend; j++) { p[j] = Math.Exp(p[j] - max); sum += p[j]; }
                    for (int e = 0; e < dv; e++)
                    {
                        double acc = 0;
                        for (int j = 0; j < kend; j++) acc += p[j] / sum * S(v).Get(At4(v, b, h, j, e));
                        S(o).Set(At4(o, b, h, i, e), acc);
                    }
                    S(lse).Set(lse._offset + (b * hs + h) * tq + i, max + Math.Log(sum));
                }
    }

    public void AttentionBackward(in View q, in View k, in View v, in View o, in View dO, in View lse,
        in View dq, in View dk, in View dv, bool causal, double scale)
    {
        int bs = q._shape[0], hs = q._shape[1], tq = q._shape[2], d = q._shape[3], tk = k._shape[2], dvn = v._shape[3];
        for (int b = 0; b < bs; b++)
            for (int h = 0; h < hs; h++)
            {
                var gq = new double[tq, d];
                var gk = new double[tk, d];
                var gv = new double[tk, dvn];
                for (int i = 0; i < tq; i++)
                {
                    int kend = causal ? i + tk - tq + 1 : tk;
                    double l = S(lse).Get(lse._offset + (b * hs + h) * tq + i);
                    double di = 0;
                    for (int e = 0; e < dvn; e++) di += S(dO).Get(At4(dO, b, h, i, e)) * S(o).Get(At4(o, b, h, i, e));
                    for (int j = 0; j < kend; j++)
                    {
                        double s = 0, dp = 0;
                        for (int e = 0; e < d; e++) s += S(q).Get(At4(q, b, h, i, e)) * S(k).Get(At4(k, b, h, j, e));
                        double p = Math.Exp(s * scale - l);
                        for (int e = 0; e < dvn; e++)
                        {
                            double g = S(dO).Get(At4(dO, b, h, i, e));
                            gv[j, e] += p * g;
                            dp += g * S(v).Get(At4(v, b, h, j, e));
                        }
                        double ds = p * (dp - di) * scale;
                        for (int e = 0; e < d; e++)
                        {
                            gq[i, e] += ds * S(k).Get(At4(k, b, h, j, e));
                            gk[j, e] += ds * S(q).Get(At4(q, b, h, i, e));
                        }
                    }
                }
                for (int i = 0; i < tq; i++) for (int e = 0; e < d; e++) S(dq).Set(At4(dq, b, h, i, e), gq[i, e]);
                for (int j = 0; j < tk; j++)
                {
                    for (int e = 0; e < d; e++) S(dk).Set(At4(dk, b, h, j, e), gk[j, e]);
                    for (int e = 0; e < dvn; e++) S(dv).Set(At4(dv, b, h, j, e), gv[j, e]);
                }
            }
    }
}
