namespace Backprop.Backends.Reference;

/// <summary>
/// The optimizers as PyTorch writes them (the single-tensor forms of torch.optim), one element at a time
/// in double; values are rounded to the parameter's dtype only where they are stored.
/// </summary>
internal sealed partial class ReferenceBackend
{
    public void SgdStep(in View param, in View grad, in View momentumBuffer, in SgdHyper h)
    {
        var sp = S(param);
        var sg = S(grad);
        bool momentum = h.Momentum != 0;
        var sb = momentum ? S(momentumBuffer) : null;
        for (int i = 0; i < param._numel; i++)
        {
            int ip = Position(param, i);
            double p = sp.Get(ip);
            double g = sg.Get(Position(grad, i));
            if (h.Maximize) g = -g;
            if (h.WeightDecay != 0) g = g + h.WeightDecay * p;
            if (momentum)
            {
                int ib = Position(momentumBuffer, i);
                // PyTorch starts the buffer at the first gradient, not at zero
                double b = h.Init ? g : h.Momentum * sb!.Get(ib) + (1 - h.Dampening) * g;
                sb!.Set(ib, b);
                g = h.Nesterov ? g + h.Momentum * b : b;
            }
            sp.Set(ip, p - h.Lr * g);
        }
    }

    public void AdamStep(in View param, in View grad, in View expAvg, in View expAvgSq, in View maxExpAvgSq, in AdamHyper h)
    {
        var sp = S(param);
        var sg = S(grad);
        var sm = S(expAvg);
        var sv = S(expAvgSq);
        var smax = h.AmsGrad ? S(maxExpAvgSq) : null;
        double biasCorrection1 = 1 - Math.Pow(h.Beta1, h.Step);
        double biasCorrection2 = 1 - Math.Pow(h.Beta2, h.Step);
        double stepSize = h.Lr / biasCorrection1;
        for (int i = 0; i < param._numel; i++)
        {
            int ip = Position(param, i), im = Position(expAvg, i), iv = Position(expAvgSq, i);
            double p = sp.Get(ip);
            double g = sg.Get(Position(grad, i));
            if (h.Maximize) g = -g;
            if (h.Decoupled) p = p * (1 - h.Lr * h.WeightDecay);
            else if (h.WeightDecay != 0) g = g + h.WeightDecay * p;
            double m = h.Beta1 * sm.Get(im) + (1 - h.Beta1) * g;
            double v = h.Beta2 * sv.Get(iv) + (1 - h.Beta2) * g * g;
            sm.Set(im, m);
            sv.Set(iv, v);
            if (h.AmsGrad)
            {
                int ix = Position(maxExpAvgSq, i);
                double old = smax!.Get(ix);
                v = double.IsNaN(old) || double.IsNaN(v) ? double.NaN : Math.Max(old, v);
                smax.Set(ix, v);
            }
            double denom = Math.Sqrt(v) / Math.Sqrt(biasCorrection2) + h.Eps;
            sp.Set(ip, p - stepSize * (m / denom));
        }
    }

    public void RmsPropStep(in View param, in View grad, in View squareAvg, in View momentumBuffer, in View gradAvg, in RmsPropHyper h)
    {
        var sp = S(param);
        var sg = S(grad);
        var ss = S(squareAvg);
        bool momentum = h.Momentum > 0;
        var sb = momentum ? S(momentumBuffer) : null;
        var sa = h.Centered ? S(gradAvg) : null;
        for (int i = 0; i < param._numel; i++)
        {
            int ip = Position(param, i), isq = Position(squareAvg, i);
            double p = sp.Get(ip);
            double g = sg.Get(Position(grad, i));
            if (h.Maximize) g = -g;
            if (h.WeightDecay != 0) g = g + h.WeightDecay * p;
            double s = h.Alpha * ss.Get(isq) + (1 - h.Alpha) * g * g;
            ss.Set(isq, s);
            double avg;
            if (h.Centered)
            {
                int ia = Position(gradAvg, i);
                double ga = h.Alpha * sa!.Get(ia) + (1 - h.Alpha) * g;
                sa.Set(ia, ga);
                avg = Math.Sqrt(s - ga * ga) + h.Eps;
            }
            else avg = Math.Sqrt(s) + h.Eps;
            if (momentum)
            {
                int ib = Position(momentumBuffer, i);
                double b = h.Momentum * sb!.Get(ib) + g / avg;
                sb.Set(ib, b);
                sp.Set(ip, p - h.Lr * b);
            }
            else sp.Set(ip, p - h.Lr * (g / avg));
        }
    }

    public void AdaGradStep(in View param, in View grad, in View sum, in AdaGradHyper h)
    {
        var sp = S(param);
        var sg = S(grad);
        var ss = S(sum);
        double clr = h.Lr / (1 + (h.Step - 1) * h.LrDecay);
        for (int i = 0; i < param._numel; i++)
        {
            int ip = Position(param, i), isum = Position(sum, i);
            double p = sp.Get(ip);
            double g = sg.Get(Position(grad, i));
            if (h.Maximize) g = -g;
            if (h.WeightDecay != 0) g = g + h.WeightDecay * p;
            double s = ss.Get(isum) + g * g;
            ss.Set(isum, s);
            sp.Set(ip, p - clr * (g / (Math.Sqrt(s) + h.Eps)));
        }
    }

    public double NormPower(in View x, double p)
    {
        var sx = S(x);
        double acc = 0;
        for (int i = 0; i < x._numel; i++)
        {
            double a = Math.Abs(sx.Get(Position(x, i)));
            if (double.IsPositiveInfinity(p))
            {
                if (double.IsNaN(a)) return double.NaN;
                acc = Math.Max(acc, a);
            }
            else if (p == 2) acc += a * a;
            else if (p == 1) acc += a;
            else acc += Math.Pow(a, p);
        }
        return acc;
    }
}
