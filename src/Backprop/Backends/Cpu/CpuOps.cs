using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Backprop.Backends.Cpu;

// The span kernels behind UnaryOp and BinaryOp: one small struct per op, applied by Elementwise's
// contiguous, parallel and strided walks. Float32 and float64 share each body through generics.
internal static class CpuOps
{

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
        // SIMD selects: on a ReLU's output "y > 0" is a coin toss, which a branch per element mispredicts
        // half the time (this loop took several times a memory-bound pass before).
        public readonly void Apply(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, Span<T> dx)
        {
            int i = 0;
            if (Vector.IsHardwareAccelerated)
                for (; i <= dx.Length - Vector<T>.Count; i += Vector<T>.Count)
                {
                    var yv = new Vector<T>(y.Slice(i));
                    Vector.ConditionalSelect(Vector.GreaterThan(yv, Vector<T>.Zero), new Vector<T>(dy.Slice(i)), Vector<T>.Zero).CopyTo(dx.Slice(i));
                }
            for (; i < dx.Length; i++) dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
        }
    }

    internal readonly struct LeakyOp<T>(T slope) : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++) y[i] = x[i] > T.Zero ? x[i] : x[i] * slope;
        }
    }

    internal readonly struct LeakyGrad<T>(T slope) : IBinarySpan<T> where T : IFloatingPointIeee754<T>
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

    internal struct GeluTanhOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
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

    internal struct GeluTanhGrad<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
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

    internal readonly struct SoftplusOp<T>(T beta, T threshold) : IUnarySpan<T> where T : IFloatingPointIeee754<T>
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

    internal readonly struct SoftplusGrad<T>(T beta, T threshold) : IBinarySpan<T> where T : IFloatingPointIeee754<T>
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


    internal struct ExpOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Exp(x, y);
    }

    internal struct LogOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Log(x, y);
    }

    internal struct ErfOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++) y[i] = T.CreateTruncating(SpecialFunctions.Erf(double.CreateTruncating(x[i])));
        }
    }

    internal struct SqrtOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Sqrt(x, y);
    }

    internal struct SinOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Sin(x, y);
    }

    internal struct CosOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Cos(x, y);
    }

    internal struct FloorOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Floor(x, y);
    }

    internal struct CeilOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Ceiling(x, y);
    }

    internal struct RoundOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        // halves to even, as torch.round
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Round(x, MidpointRounding.ToEven, y);
    }

    internal struct AbsOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y) => TensorPrimitives.Abs(x, y);
    }

    internal struct SignOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++)
                y[i] = T.IsNaN(x[i]) ? x[i] : x[i] > T.Zero ? T.One : x[i] < T.Zero ? -T.One : T.Zero;
        }
    }

    internal readonly struct ClampOp<T>(T lo, T hi) : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++)
            {
                T v = x[i];
                y[i] = v < lo ? lo : v > hi ? hi : v; // NaN stays NaN
            }
        }
    }

    internal readonly struct InRangeOp<T>(T lo, T hi) : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++) y[i] = x[i] >= lo && x[i] <= hi ? T.One : T.Zero;
        }
    }

    internal struct MaxOp<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Max(a, b, y);
    }

    internal struct MinOp<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Min(a, b, y);
    }

    internal readonly struct WinnerOp<T>(bool max) : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y)
        {
            T half = T.One / (T.One + T.One);
            for (int i = 0; i < a.Length; i++)
                y[i] = a[i] == b[i] ? half : (max ? a[i] > b[i] : a[i] < b[i]) ? T.One : T.Zero;
        }
    }

    internal struct NonZeroOp<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++) y[i] = x[i] != T.Zero ? T.One : T.Zero;
        }
    }

    /// <summary>y = a where mask (first operand) is 1, else 0 — without multiplying, so NaN/Inf elsewhere do not leak.</summary>
    internal struct SelectOp<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> m, ReadOnlySpan<T> a, Span<T> y)
        {
            for (int i = 0; i < m.Length; i++) y[i] = m[i] != T.Zero ? a[i] : T.Zero;
        }
    }

    /// <summary>y = b where mask is 0, else 0.</summary>
    internal struct KeepOp<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> m, ReadOnlySpan<T> b, Span<T> y)
        {
            for (int i = 0; i < m.Length; i++) y[i] = m[i] == T.Zero ? b[i] : T.Zero;
        }
    }

    internal readonly struct CmpOp<T>(int op) : IBinarySpan<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y)
        {
            int i = 0;
            if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
            {
                var one = Vector<T>.One;
                for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count)
                {
                    var va = new Vector<T>(a[i..]);
                    var vb = new Vector<T>(b[i..]);
                    var m = op switch
                    {
                        0 => Vector.Equals(va, vb),
                        1 => Vector.OnesComplement(Vector.Equals(va, vb)), // NaN ≠ anything
                        2 => Vector.GreaterThan(va, vb),
                        3 => Vector.GreaterThanOrEqual(va, vb),
                        4 => Vector.LessThan(va, vb),
                        _ => Vector.LessThanOrEqual(va, vb),
                    };
                    Vector.ConditionalSelect(m, one, Vector<T>.Zero).CopyTo(y[i..]);
                }
            }
            for (; i < a.Length; i++)
            {
                bool r = op switch
                {
                    0 => a[i] == b[i],
                    1 => a[i] != b[i],
                    2 => a[i] > b[i],
                    3 => a[i] >= b[i],
                    4 => a[i] < b[i],
                    _ => a[i] <= b[i],
                };
                y[i] = r ? T.One : T.Zero;
            }
        }
    }

    internal readonly struct PowScalar<T>(T p) : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            if (p == T.CreateTruncating(2)) TensorPrimitives.Multiply(x, x, y);
            else if (p == T.One) x.CopyTo(y);
            else if (p == T.CreateTruncating(0.5)) TensorPrimitives.Sqrt(x, y);
            else TensorPrimitives.Pow(x, p, y);
        }
    }

    internal struct PowTensor<T> : IBinarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) => TensorPrimitives.Pow(a, b, y);
    }


    internal struct FiniteOrZero<T> : IUnarySpan<T> where T : IFloatingPointIeee754<T>
    {
        public readonly void Apply(ReadOnlySpan<T> x, Span<T> y)
        {
            for (int i = 0; i < x.Length; i++) y[i] = T.IsFinite(x[i]) ? x[i] : T.Zero;
        }
    }
}
