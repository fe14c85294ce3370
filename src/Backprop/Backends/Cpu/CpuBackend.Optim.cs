using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Backprop.Backends.Cpu;

internal sealed partial class CpuBackend
{
    // One runner per kernel type, dtype and thread, created once: a warm optimizer step allocates nothing,
    // and optimizers stepping on different threads never share one.
    [ThreadStatic] private static FusedRunner<float, SgdKernel<float>>? _sgd32;
    [ThreadStatic] private static FusedRunner<double, SgdKernel<double>>? _sgd64;
    [ThreadStatic] private static FusedRunner<float, AdamKernel<float>>? _adam32;
    [ThreadStatic] private static FusedRunner<double, AdamKernel<double>>? _adam64;
    [ThreadStatic] private static FusedRunner<float, RmsPropKernel<float>>? _rmsProp32;
    [ThreadStatic] private static FusedRunner<double, RmsPropKernel<double>>? _rmsProp64;
    [ThreadStatic] private static FusedRunner<float, AdaGradKernel<float>>? _adaGrad32;
    [ThreadStatic] private static FusedRunner<double, AdaGradKernel<double>>? _adaGrad64;

    private static void Run<T, K>(ref FusedRunner<T, K>? slot, in K kernel, int length)
        where T : unmanaged, IFloatingPointIeee754<T>
        where K : struct, IFusedKernel<T>
    {
        var runner = slot ??= new();
        runner.Kernel = kernel;
        runner.Execute(length);
        runner.Kernel = default; // do not keep the last parameter's buffers alive
    }

    public void SgdStep(in View param, in View grad, in View momentumBuffer, in SgdHyper h)
    {
        if (param.DType == DType.Float32) Run(ref _sgd32, new SgdKernel<float>(param, grad, momentumBuffer, h), param._numel);
        else Run(ref _sgd64, new SgdKernel<double>(param, grad, momentumBuffer, h), param._numel);
    }

    public void AdamStep(in View param, in View grad, in View expAvg, in View expAvgSq, in View maxExpAvgSq, in AdamHyper h)
    {
        var s = AdamScalars.From(h);
        if (param.DType == DType.Float32) Run(ref _adam32, new AdamKernel<float>(param, grad, expAvg, expAvgSq, maxExpAvgSq, h.AmsGrad, s), param._numel);
        else Run(ref _adam64, new AdamKernel<double>(param, grad, expAvg, expAvgSq, maxExpAvgSq, h.AmsGrad, s), param._numel);
    }

    public void RmsPropStep(in View param, in View grad, in View squareAvg, in View momentumBuffer, in View gradAvg, in RmsPropHyper h)
    {
        if (param.DType == DType.Float32) Run(ref _rmsProp32, new RmsPropKernel<float>(param, grad, squareAvg, momentumBuffer, gradAvg, h), param._numel);
        else Run(ref _rmsProp64, new RmsPropKernel<double>(param, grad, squareAvg, momentumBuffer, gradAvg, h), param._numel);
    }

    public void AdaGradStep(in View param, in View grad, in View sum, in AdaGradHyper h)
    {
        if (param.DType == DType.Float32) Run(ref _adaGrad32, new AdaGradKernel<float>(param, grad, sum, h), param._numel);
        else Run(ref _adaGrad64, new AdaGradKernel<double>(param, grad, sum, h), param._numel);
    }

    public double NormPower(in View x, double p)
    {
        bool f32 = x.DType == DType.Float32;
        if (double.IsPositiveInfinity(p)) return f32 ? MaxAbs(x.Span<float>()) : MaxAbs(x.Span<double>());
        if (p == 2) return f32 ? SumSquares(x.Span<float>()) : TensorPrimitives.SumOfSquares<double>(x.Span<double>());
        if (p == 1) return f32 ? SumAbs(x.Span<float>()) : TensorPrimitives.SumOfMagnitudes<double>(x.Span<double>());
        double s = 0;
        if (f32) foreach (var v in x.Span<float>()) s += Math.Pow(Math.Abs(v), p);
        else foreach (var v in x.Span<double>()) s += Math.Pow(Math.Abs(v), p);
        return s;
    }

    private static double MaxAbs(ReadOnlySpan<float> x) => x.Length == 0 ? 0 : Math.Abs(TensorPrimitives.MaxMagnitude(x));

    private static double MaxAbs(ReadOnlySpan<double> x) => x.Length == 0 ? 0 : Math.Abs(TensorPrimitives.MaxMagnitude(x));

    /// <summary>Σx² of float32 values accumulated in double, so large gradients neither overflow nor lose digits.</summary>
    private static double SumSquares(ReadOnlySpan<float> x)
    {
        var acc0 = Vector<double>.Zero;
        var acc1 = Vector<double>.Zero;
        int i = 0;
        ref float r = ref MemoryMarshal.GetReference(x);
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            Vector.Widen(Vector.LoadUnsafe(ref r, (nuint)i), out var lo, out var hi);
            acc0 += lo * lo;
            acc1 += hi * hi;
        }
        double s = Vector.Sum(acc0 + acc1);
        for (; i < x.Length; i++) s += (double)x[i] * x[i];
        return s;
    }

    /// <summary>Σ|x| of float32 values accumulated in double.</summary>
    private static double SumAbs(ReadOnlySpan<float> x)
    {
        var acc = Vector<double>.Zero;
        int i = 0;
        ref float r = ref MemoryMarshal.GetReference(x);
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            Vector.Widen(Vector.Abs(Vector.LoadUnsafe(ref r, (nuint)i)), out var lo, out var hi);
            acc += lo + hi;
        }
        double s = Vector.Sum(acc);
        for (; i < x.Length; i++) s += Math.Abs(x[i]);
        return s;
    }
}
