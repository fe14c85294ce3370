using System.Runtime.InteropServices;

namespace Backprop.Backends.Cpu;

/// <summary>
/// A contiguous view's array and offset, taken once when a kernel is made: a kernel holds one per buffer
/// instead of the whole <see cref="View"/>, so that setting up an update for a small parameter copies a
/// few words rather than five views (a measurable share of a small model's optimizer step).
/// </summary>
internal readonly struct KernelBuffer<T> where T : unmanaged
{
    private readonly T[]? _array;
    private readonly int _offset;

    /// <summary>The buffer of a contiguous view; nothing for <c>default</c> (an unused state buffer) or an empty view.</summary>
    public KernelBuffer(in View v)
    {
        Debug.Assert(v._storage == null || v._contiguous);
        if (v._storage == null || v._numel == 0) return;
        _array = v.Data<T>();
        _offset = v._offset;
    }

    /// <summary>The first element (a null reference for no buffer).</summary>
    public ref T Start
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref _array == null ? ref Unsafe.NullRef<T>() : ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_array), _offset);
    }
}

/// <summary>The fused SGD update; the flags are loop-invariant, so their branches predict perfectly.</summary>
internal readonly struct SgdKernel<T> : IFusedKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly KernelBuffer<T> _p, _g, _b;
    private readonly T _negLr, _wd, _momentum, _oneMinusDampening;
    private readonly bool _init, _nesterov, _maximize, _hasWd, _hasMomentum;

    public SgdKernel(in View p, in View g, in View buffer, in SgdHyper h)
    {
        _p = new(p); _g = new(g); _b = new(buffer); _init = h.Init;
        _hasMomentum = h.Momentum != 0;
        Debug.Assert(!_hasMomentum || buffer._storage != null);
        _negLr = T.CreateTruncating(-h.Lr);
        _wd = T.CreateTruncating(h.WeightDecay);
        _hasWd = h.WeightDecay != 0;
        _momentum = T.CreateTruncating(h.Momentum);
        _oneMinusDampening = T.CreateTruncating(1 - h.Dampening);
        _nesterov = h.Nesterov;
        _maximize = h.Maximize;
    }

    public int Loop<V>(int i, int end) where V : struct, ILanes<V, T>
    {
        ref T p = ref _p.Start;
        ref T g = ref _g.Start;
        ref T b = ref _b.Start;
        bool momentum = _hasMomentum;
        V negLr = V.Splat(_negLr), wd = V.Splat(_wd), mu = V.Splat(_momentum), omd = V.Splat(_oneMinusDampening);
        for (; i <= end - V.Count; i += V.Count)
        {
            V pv = V.Load(ref p, i);
            V d = V.Load(ref g, i);
            if (_maximize) d = -d;
            if (_hasWd) d = d + wd * pv;
            if (momentum)
            {
                V buf = _init ? d : V.Load(ref b, i) * mu + omd * d;
                V.Store(buf, ref b, i);
                d = _nesterov ? d + mu * buf : buf;
            }
            V.Store(pv + negLr * d, ref p, i);
        }
        return i;
    }
}

/// <summary>The per-step scalars of an Adam update, in double until the kernel narrows them.</summary>
internal struct AdamScalars
{
    public double Beta1, Beta2, NegStepSize, InvBc2Sqrt, Eps, L2, Decay;
    public bool Maximize;

    /// <summary>
    /// The bias corrections are computed in double even for float32 parameters, as PyTorch does
    /// (Python floats); only the per-element arithmetic runs at the parameter's precision.
    /// </summary>
    public static AdamScalars From(in AdamHyper h)
    {
        double bc1 = 1 - Math.Pow(h.Beta1, h.Step);
        double bc2 = 1 - Math.Pow(h.Beta2, h.Step);
        return new AdamScalars
        {
            Beta1 = h.Beta1,
            Beta2 = h.Beta2,
            NegStepSize = -(h.Lr / bc1),
            InvBc2Sqrt = 1 / Math.Sqrt(bc2),
            Eps = h.Eps,
            L2 = h.Decoupled ? 0 : h.WeightDecay,
            Decay = h.Decoupled ? 1 - h.Lr * h.WeightDecay : 1,
            Maximize = h.Maximize,
        };
    }
}

/// <summary>The fused Adam/AdamW update: p, g, m, v (and v̂) each read once and written once.</summary>
internal readonly struct AdamKernel<T> : IFusedKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly KernelBuffer<T> _p, _g, _m, _v, _vmax;
    private readonly T _beta1, _oneMinusBeta1, _beta2, _oneMinusBeta2, _negStepSize, _invBc2Sqrt, _eps, _l2, _decay;
    private readonly bool _hasL2, _hasDecay, _maximize, _ams;

    public AdamKernel(in View p, in View g, in View m, in View v, in View vmax, bool amsgrad, in AdamScalars s)
    {
        _p = new(p); _g = new(g); _m = new(m); _v = new(v); _vmax = new(vmax); _ams = amsgrad;
        Debug.Assert(!amsgrad || vmax._storage != null);
        _beta1 = T.CreateTruncating(s.Beta1);
        _oneMinusBeta1 = T.CreateTruncating(1 - s.Beta1);
        _beta2 = T.CreateTruncating(s.Beta2);
        _oneMinusBeta2 = T.CreateTruncating(1 - s.Beta2);
        _negStepSize = T.CreateTruncating(s.NegStepSize);
        _invBc2Sqrt = T.CreateTruncating(s.InvBc2Sqrt);
        _eps = T.CreateTruncating(s.Eps);
        _l2 = T.CreateTruncating(s.L2);
        _decay = T.CreateTruncating(s.Decay);
        _hasL2 = s.L2 != 0;
        _hasDecay = s.Decay != 1;
        _maximize = s.Maximize;
    }

    public int Loop<V>(int i, int end) where V : struct, ILanes<V, T>
    {
        ref T p = ref _p.Start;
        ref T g = ref _g.Start;
        ref T m = ref _m.Start;
        ref T v = ref _v.Start;
        ref T vmax = ref _vmax.Start;
        bool ams = _ams;
        V b1 = V.Splat(_beta1), omb1 = V.Splat(_oneMinusBeta1), b2 = V.Splat(_beta2), omb2 = V.Splat(_oneMinusBeta2);
        V negStep = V.Splat(_negStepSize), invBc2Sqrt = V.Splat(_invBc2Sqrt), eps = V.Splat(_eps);
        V l2 = V.Splat(_l2), decay = V.Splat(_decay);
        for (; i <= end - V.Count; i += V.Count)
        {
            V pv = V.Load(ref p, i);
            V gv = V.Load(ref g, i);
            if (_maximize) gv = -gv;
            if (_hasDecay) pv = pv * decay;
            if (_hasL2) gv = gv + l2 * pv;
            V mv = V.Load(ref m, i) * b1 + omb1 * gv;
            V vv = V.Load(ref v, i) * b2 + omb2 * gv * gv;
            V.Store(mv, ref m, i);
            V.Store(vv, ref v, i);
            if (ams)
            {
                vv = V.Max(V.Load(ref vmax, i), vv);
                V.Store(vv, ref vmax, i);
            }
            V denom = V.Sqrt(vv) * invBc2Sqrt + eps;
            V.Store(pv + negStep * (mv / denom), ref p, i);
        }
        return i;
    }
}

/// <summary>The fused RMSprop update.</summary>
internal readonly struct RmsPropKernel<T> : IFusedKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly KernelBuffer<T> _p, _g, _sq, _buf, _gavg;
    private readonly T _negLr, _wd, _alpha, _oneMinusAlpha, _eps, _momentum;
    private readonly bool _hasWd, _maximize, _hasMomentum, _centered;

    public RmsPropKernel(in View p, in View g, in View sq, in View buf, in View gavg, in RmsPropHyper h)
    {
        _p = new(p); _g = new(g); _sq = new(sq); _buf = new(buf); _gavg = new(gavg);
        _hasMomentum = h.Momentum > 0;
        _centered = h.Centered;
        Debug.Assert((!_hasMomentum || buf._storage != null) && (!_centered || gavg._storage != null));
        _negLr = T.CreateTruncating(-h.Lr);
        _wd = T.CreateTruncating(h.WeightDecay);
        _alpha = T.CreateTruncating(h.Alpha);
        _oneMinusAlpha = T.CreateTruncating(1 - h.Alpha);
        _eps = T.CreateTruncating(h.Eps);
        _momentum = T.CreateTruncating(h.Momentum);
        _hasWd = h.WeightDecay != 0;
        _maximize = h.Maximize;
    }

    public int Loop<V>(int i, int end) where V : struct, ILanes<V, T>
    {
        ref T p = ref _p.Start;
        ref T g = ref _g.Start;
        ref T sq = ref _sq.Start;
        ref T b = ref _buf.Start;
        ref T ga = ref _gavg.Start;
        bool momentum = _hasMomentum, centered = _centered;
        V negLr = V.Splat(_negLr), wd = V.Splat(_wd), alpha = V.Splat(_alpha), oma = V.Splat(_oneMinusAlpha);
        V eps = V.Splat(_eps), mu = V.Splat(_momentum);
        for (; i <= end - V.Count; i += V.Count)
        {
            V pv = V.Load(ref p, i);
            V gv = V.Load(ref g, i);
            if (_maximize) gv = -gv;
            if (_hasWd) gv = gv + wd * pv;
            V sv = V.Load(ref sq, i) * alpha + oma * gv * gv;
            V.Store(sv, ref sq, i);
            V avg;
            if (centered)
            {
                V gav = V.Load(ref ga, i) * alpha + oma * gv;
                V.Store(gav, ref ga, i);
                avg = V.Sqrt(sv - gav * gav) + eps;
            }
            else avg = V.Sqrt(sv) + eps;
            if (momentum)
            {
                V bv = V.Load(ref b, i) * mu + gv / avg;
                V.Store(bv, ref b, i);
                V.Store(pv + negLr * bv, ref p, i);
            }
            else V.Store(pv + negLr * (gv / avg), ref p, i);
        }
        return i;
    }
}

/// <summary>The fused AdaGrad update.</summary>
internal readonly struct AdaGradKernel<T> : IFusedKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly KernelBuffer<T> _p, _g, _sum;
    private readonly T _negClr, _wd, _eps;
    private readonly bool _hasWd, _maximize;

    public AdaGradKernel(in View p, in View g, in View sum, in AdaGradHyper h)
    {
        _p = new(p); _g = new(g); _sum = new(sum);
        double clr = h.Lr / (1 + (h.Step - 1) * h.LrDecay);
        _negClr = T.CreateTruncating(-clr);
        _wd = T.CreateTruncating(h.WeightDecay);
        _eps = T.CreateTruncating(h.Eps);
        _hasWd = h.WeightDecay != 0;
        _maximize = h.Maximize;
    }

    public int Loop<V>(int i, int end) where V : struct, ILanes<V, T>
    {
        ref T p = ref _p.Start;
        ref T g = ref _g.Start;
        ref T s = ref _sum.Start;
        V negClr = V.Splat(_negClr), wd = V.Splat(_wd), eps = V.Splat(_eps);
        for (; i <= end - V.Count; i += V.Count)
        {
            V pv = V.Load(ref p, i);
            V gv = V.Load(ref g, i);
            if (_maximize) gv = -gv;
            if (_hasWd) gv = gv + wd * pv;
            V sv = V.Load(ref s, i) + gv * gv;
            V.Store(sv, ref s, i);
            V.Store(pv + negClr * (gv / (V.Sqrt(sv) + eps)), ref p, i);
        }
        return i;
    }
}
