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
        Engine.Record(y, "Tanh", new TanhBackward(this, y), this, saved0: y);
        return y;
    }

    private readonly struct TanhBackward(Tensor x, Tensor y) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph
            ? dy * (1 - y * y)
            : Elementwise.Zip("TanhBackward", dy, y, default(TanhGrad<float>), default(TanhGrad<double>)));
    }

    /// <summary>Elementwise logistic sigmoid 1/(1 + e^−x). Backward: dx = dy·y·(1 − y).</summary>
    public Tensor Sigmoid()
    {
        var y = Elementwise.Map("Sigmoid", this, default(SigmoidOp<float>), default(SigmoidOp<double>));
        Engine.Record(y, "Sigmoid", new SigmoidBackward(this, y), this, saved0: y);
        return y;
    }

    private readonly struct SigmoidBackward(Tensor x, Tensor y) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph
            ? dy * y * (1 - y)
            : Elementwise.Zip("SigmoidBackward", dy, y, default(SigmoidGrad<float>), default(SigmoidGrad<double>)));
    }

    /// <summary>Elementwise max(x, 0). Backward: dx = dy where y &gt; 0 (0 at x = 0, as in PyTorch).</summary>
    public Tensor Relu()
    {
        var y = Elementwise.Map("Relu", this, default(ReluOp<float>), default(ReluOp<double>));
        Engine.Record(y, "Relu", new ReluBackward(this, y), this, saved0: y);
        return y;
    }

    private readonly struct ReluBackward(Tensor x, Tensor y) : IBackward
    {
        // The mask y > 0 is a constant of the backward graph: ReLU's second derivative is 0 almost everywhere.
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph
            ? dy * y.NoGraph().Gt(0).To(y.DType)
            : Elementwise.Zip("ReluBackward", dy, y, default(ReluGrad<float>), default(ReluGrad<double>)));
    }

    /// <summary>Elementwise x for x &gt; 0, slope·x otherwise.</summary>
    public Tensor LeakyRelu(double negativeSlope = 0.01)
    {
        var y = Elementwise.Map("LeakyRelu", this, new LeakyOp<float>((float)negativeSlope), new LeakyOp<double>(negativeSlope));
        Engine.Record(y, "LeakyRelu", new LeakyReluBackward(this, negativeSlope), this);
        return y;
    }

    private readonly struct LeakyReluBackward(Tensor x, double slope) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph
            ? dy * Where(x.NoGraph().Gt(0), x.Const(1), x.Const(slope))
            : Elementwise.Zip("LeakyReluBackward", dy, x, new LeakyGrad<float>((float)slope), new LeakyGrad<double>(slope)));
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
        Engine.Record(y, "Gelu", new GeluBackward(this, approximateTanh), this);
        return y;
    }

    private readonly struct GeluBackward(Tensor x, bool approximateTanh) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(GeluGradient(dy, x, approximateTanh));
    }

    /// <summary>dy·GELU′(x): a fused kernel, or recorded ops when the backward builds a graph.</summary>
    internal static Tensor GeluGradient(Tensor dy, Tensor x, bool approximateTanh)
    {
        if (Engine.CreateGraph)
        {
            if (approximateTanh)
            {
                // d/dx ½x(1 + t), t = tanh(s(x + a x³)): ½(1 + t) + ½x(1 − t²)·s(1 + 3a x²)
                double s = SqrtTwoOverPi, a = 0.044715;
                var t = ((x + x * x * x * a) * s).Tanh();
                return dy * ((1 + t) * 0.5 + x * 0.5 * (1 - t * t) * ((x * x * (3 * a) + 1) * s));
            }
            // Φ(x) + x·φ(x) with Φ(x) = ½(1 + erf(x/√2)) and φ(x) = e^(−x²/2)/√(2π), all recorded
            var pdf = (x * x * -0.5).Exp() * InvSqrt2Pi;
            var cdf = ((x * InvSqrt2).Erf() + 1) * 0.5;
            return dy * (cdf + x * pdf);
        }
        return approximateTanh
            ? Elementwise.Zip("GeluBackward", dy, x, default(GeluTanhGrad<float>), default(GeluTanhGrad<double>))
            : Elementwise.Zip("GeluBackward", dy, x, default(GeluGrad<float>), default(GeluGrad<double>));
    }

    /// <summary>
    /// Smooth ReLU (1/β)·log(1 + e^(βx)), linear where βx &gt; threshold for stability.
    /// Backward: dx = dy·sigmoid(βx).
    /// </summary>
    public Tensor Softplus(double beta = 1, double threshold = 20)
    {
        var y = Elementwise.Map("Softplus", this, new SoftplusOp<float>((float)beta, (float)threshold), new SoftplusOp<double>(beta, threshold));
        Engine.Record(y, "Softplus", new SoftplusBackward(this, beta, threshold), this);
        return y;
    }

    private readonly struct SoftplusBackward(Tensor x, double beta, double threshold) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph
            ? Where((x.NoGraph() * beta).Gt(threshold), dy, dy * (x * beta).Sigmoid())
            : Elementwise.Zip("SoftplusBackward", dy, x,
                new SoftplusGrad<float>((float)beta, (float)threshold), new SoftplusGrad<double>(beta, threshold)));
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
