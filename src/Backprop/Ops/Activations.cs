using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Backprop.Autograd;
using Backprop.Kernels;

namespace Backprop;

// Tanh, Sigmoid, Relu, LeakyRelu, Gelu, Softplus. Backward formulas use the cached output where
// the derivative is a function of it (tanh, sigmoid, relu), so nothing is recomputed.
public partial class Tensor
{
    /// <summary>Elementwise tanh. Backward: dx = dy·(1 − y²), with y cached from the forward pass.</summary>
    public Tensor Tanh()
    {
        var y = Elementwise.Map("Tanh", this, default(TanhOp<float>), default(TanhOp<double>));
        Engine.Record(y, "Tanh", static (n, dy) =>
            n.A!.AccumulateGrad(Elementwise.Zip("TanhBackward", dy, n.S0!, default(TanhGrad<float>), default(TanhGrad<double>))),
            this, s0: y);
        return y;
    }

    /// <summary>Elementwise logistic sigmoid 1/(1 + e^−x). Backward: dx = dy·y·(1 − y).</summary>
    public Tensor Sigmoid()
    {
        var y = Elementwise.Map("Sigmoid", this, default(SigmoidOp<float>), default(SigmoidOp<double>));
        Engine.Record(y, "Sigmoid", static (n, dy) =>
            n.A!.AccumulateGrad(Elementwise.Zip("SigmoidBackward", dy, n.S0!, default(SigmoidGrad<float>), default(SigmoidGrad<double>))),
            this, s0: y);
        return y;
    }

    /// <summary>Elementwise max(x, 0). Backward: dx = dy where y &gt; 0 (0 at x = 0, as in PyTorch).</summary>
    public Tensor Relu()
    {
        var y = Elementwise.Map("Relu", this, default(ReluOp<float>), default(ReluOp<double>));
        Engine.Record(y, "Relu", static (n, dy) =>
            n.A!.AccumulateGrad(Elementwise.Zip("ReluBackward", dy, n.S0!, default(ReluGrad<float>), default(ReluGrad<double>))),
            this, s0: y);
        return y;
    }

    /// <summary>Elementwise x for x &gt; 0, slope·x otherwise.</summary>
    public Tensor LeakyRelu(double negativeSlope = 0.01)
    {
        var y = Elementwise.Map("LeakyRelu", this, new LeakyOp<float>((float)negativeSlope), new LeakyOp<double>(negativeSlope));
        Engine.Record(y, "LeakyRelu", static (n, dy) =>
            n.A!.AccumulateGrad(Elementwise.Zip("LeakyReluBackward", dy, n.A,
                new LeakyGrad<float>((float)n.D0), new LeakyGrad<double>(n.D0))),
            this, d0: negativeSlope);
        return y;
    }

    /// <summary>
    /// Gaussian error linear unit x·Φ(x) (exact, with erf, as PyTorch's default), or the tanh
    /// approximation 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) when <paramref name="approximateTanh"/> is set.
    /// </summary>
    public Tensor Gelu(bool approximateTanh = false)
    {
        var y = approximateTanh
            ? Elementwise.Map("Gelu", this, default(GeluTanhOp<float>), default(GeluTanhOp<double>))
            : Elementwise.Map("Gelu", this, default(GeluOp<float>), default(GeluOp<double>));
        Engine.Record(y, "Gelu", static (n, dy) =>
            n.A!.AccumulateGrad(n.I0 == 1
                ? Elementwise.Zip("GeluBackward", dy, n.A, default(GeluTanhGrad<float>), default(GeluTanhGrad<double>))
                : Elementwise.Zip("GeluBackward", dy, n.A, default(GeluGrad<float>), default(GeluGrad<double>))),
            this, i0: approximateTanh ? 1 : 0);
        return y;
    }

    /// <summary>
    /// Smooth ReLU (1/β)·log(1 + e^(βx)), linear where βx &gt; threshold for stability.
    /// Backward: dx = dy·sigmoid(βx).
    /// </summary>
    public Tensor Softplus(double beta = 1, double threshold = 20)
    {
        var y = Elementwise.Map("Softplus", this, new SoftplusOp<float>((float)beta, (float)threshold), new SoftplusOp<double>(beta, threshold));
        Engine.Record(y, "Softplus", static (n, dy) =>
            n.A!.AccumulateGrad(Elementwise.Zip("SoftplusBackward", dy, n.A,
                new SoftplusGrad<float>((float)n.D0, (float)n.D1), new SoftplusGrad<double>(n.D0, n.D1))),
            this, d0: beta, d1: threshold);
        return y;
    }

    // ---------------------------------------------------------------- kernels

    internal struct TanhOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Tanh(x, y);
    }

    internal struct TanhGrad<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        // dy·(1 − y²) = dy − dy·y·y
        public readonly void Apply(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, Span<T> dx)
        {
            for (int i = 0; i < dx.Length; i++) dx[i] = dy[i] * (T.One - y[i] * y[i]);
        }
    }

    internal struct SigmoidOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        // TensorPrimitives.Sigmoid throws on empty spans (unlike Exp or Tanh)
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            if (!x.IsEmpty) TensorPrimitives.Sigmoid(x, y);
        }
    }

    internal struct SigmoidGrad<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, Span<T> dx)
        {
            for (int i = 0; i < dx.Length; i++) dx[i] = dy[i] * y[i] * (T.One - y[i]);
        }
    }

    internal struct ReluOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Max(x, T.Zero, y);
    }

    internal struct ReluGrad<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, Span<T> dx)
        {
            for (int i = 0; i < dx.Length; i++) dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
        }
    }

    private readonly struct LeakyOp<T>(T slope) : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++) y[i] = x[i] > T.Zero ? x[i] : x[i] * slope;
        }
    }

    private readonly struct LeakyGrad<T>(T slope) : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx)
        {
            for (int i = 0; i < dx.Length; i++) dx[i] = x[i] > T.Zero ? dy[i] : dy[i] * slope;
        }
    }

    // GELU: float32 uses a fast erf (error below 1.5e-7); float64 uses an erf accurate to ~1e-15 for gradient checks.
    private static T Erf<T>(T x) where T : IFloatingPointIeee754<T> => typeof(T) == typeof(float)
        ? T.CreateTruncating(SpecialFunctions.ErfFast(float.CreateTruncating(x)))
        : T.CreateTruncating(SpecialFunctions.Erf(double.CreateTruncating(x)));

    private static readonly double InvSqrt2 = 1 / Math.Sqrt(2), InvSqrt2Pi = 1 / Math.Sqrt(2 * Math.PI), SqrtTwoOverPi = Math.Sqrt(2 / Math.PI);

    internal struct GeluOp<T> : IUnarySpan<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            if (typeof(T) == typeof(float))
            {
                GeluKernels.Forward(MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(y));
                return;
            }
            T half = T.CreateTruncating(0.5), k = T.CreateTruncating(InvSqrt2);
            for (int i = 0; i < x.Length; i++) y[i] = half * x[i] * (T.One + Erf(x[i] * k));
        }
    }

    internal struct GeluGrad<T> : IBinarySpan<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        // d/dx x·Φ(x) = Φ(x) + x·φ(x)
        public readonly void Apply(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx)
        {
            if (typeof(T) == typeof(float))
            {
                GeluKernels.Backward(MemoryMarshal.Cast<T, float>(dy), MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(dx));
                return;
            }
            T half = T.CreateTruncating(0.5), k = T.CreateTruncating(InvSqrt2), c = T.CreateTruncating(InvSqrt2Pi);
            for (int i = 0; i < dx.Length; i++)
            {
                T v = x[i];
                T cdf = half * (T.One + Erf(v * k));
                T pdf = c * T.Exp(-half * v * v);
                dx[i] = dy[i] * (cdf + v * pdf);
            }
        }
    }

    private struct GeluTanhOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            T half = T.CreateTruncating(0.5), s = T.CreateTruncating(SqrtTwoOverPi), a = T.CreateTruncating(0.044715);
            for (int i = 0; i < x.Length; i++)
            {
                T v = x[i];
                y[i] = half * v * (T.One + T.Tanh(s * (v + a * v * v * v)));
            }
        }
    }

    private struct GeluTanhGrad<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx)
        {
            T half = T.CreateTruncating(0.5), s = T.CreateTruncating(SqrtTwoOverPi), a = T.CreateTruncating(0.044715), three = T.CreateTruncating(3);
            for (int i = 0; i < dx.Length; i++)
            {
                T v = x[i];
                T t = T.Tanh(s * (v + a * v * v * v));
                T dInner = s * (T.One + three * a * v * v);
                dx[i] = dy[i] * (half * (T.One + t) + half * v * (T.One - t * t) * dInner);
            }
        }
    }

    private readonly struct SoftplusOp<T>(T beta, T threshold) : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++)
            {
                T bx = beta * x[i];
                // log(1 + e^bx) = max(bx, 0) + log(1 + e^−|bx|): no overflow for large |bx|
                y[i] = bx > threshold ? x[i] : (T.Max(bx, T.Zero) + T.LogP1(T.Exp(-T.Abs(bx)))) / beta;
            }
        }
    }

    private readonly struct SoftplusGrad<T>(T beta, T threshold) : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx)
        {
            for (int i = 0; i < dx.Length; i++)
            {
                T bx = beta * x[i];
                dx[i] = bx > threshold ? dy[i] : dy[i] / (T.One + T.Exp(-bx));
            }
        }
    }
}
