using Backprop.Backends.Cpu;

namespace Backprop.Backends.Reference;

/// <summary>The elementwise ops as textbook formulas on one double each (float32 results rounded by the storage).</summary>
internal static class Scalar
{
    private static readonly double InvSqrt2 = 1 / Math.Sqrt(2), InvSqrt2Pi = 1 / Math.Sqrt(2 * Math.PI), SqrtTwoOverPi = Math.Sqrt(2 / Math.PI);

    /// <summary>Φ(x), the standard normal CDF, through erf.</summary>
    private static double Cdf(double x) => 0.5 * (1 + SpecialFunctions.Erf(x * InvSqrt2));

    /// <summary>φ(x), the standard normal density.</summary>
    private static double Pdf(double x) => InvSqrt2Pi * Math.Exp(-0.5 * x * x);

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    public static double Unary(UnaryOp op, double x, double p0, double p1, bool f32)
    {
        // float32 inputs computed in float32 where the CPU kernels do, so the two backends agree to rounding
        return op switch
        {
            UnaryOp.Copy => x,
            UnaryOp.Scale => f32 ? (float)x * (float)p0 : x * p0,
            UnaryOp.Neg => -x,
            UnaryOp.Exp => Math.Exp(x),
            UnaryOp.Log => Math.Log(x),
            UnaryOp.Sqrt => Math.Sqrt(x),
            UnaryOp.Abs => Math.Abs(x),
            UnaryOp.Sign => double.IsNaN(x) ? x : Math.Sign(x),
            UnaryOp.Erf => SpecialFunctions.Erf(x),
            UnaryOp.Tanh => Math.Tanh(x),
            UnaryOp.Sigmoid => Sigmoid(x),
            UnaryOp.Relu => x > 0 ? x : 0, // max(x, 0) with NaN propagating below
            UnaryOp.LeakyRelu => x > 0 ? x : x * p0,
            UnaryOp.Gelu => x * Cdf(x),
            UnaryOp.GeluTanh => 0.5 * x * (1 + Math.Tanh(SqrtTwoOverPi * (x + 0.044715 * x * x * x))),
            UnaryOp.Softplus => p0 * x > p1 ? x : (Math.Max(p0 * x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(p0 * x)))) / p0,
            UnaryOp.Clamp => x < p0 ? p0 : x > p1 ? p1 : x,
            UnaryOp.InRange => x >= p0 && x <= p1 ? 1 : 0,
            UnaryOp.NonZero => x != 0 ? 1 : 0,
            UnaryOp.FiniteOrZero => double.IsFinite(x) ? x : 0,
            UnaryOp.Pow => Math.Pow(x, p0),
            UnaryOp.Sin => Math.Sin(x),
            UnaryOp.Cos => Math.Cos(x),
            UnaryOp.Floor => Math.Floor(x),
            UnaryOp.Ceil => Math.Ceiling(x),
            UnaryOp.Round => Math.Round(x, MidpointRounding.ToEven),
            _ => throw new NotSupportedException($"Reference backend: unary op {op}."),
        } is var y && op == UnaryOp.Relu && double.IsNaN(x) ? x : y;
    }

    public static double Binary(BinaryOp op, double a, double b, double p0, double p1, bool f32) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Sub => a - b,
        BinaryOp.Mul => a * b,
        BinaryOp.Div => a / b,
        BinaryOp.Pow => Math.Pow(a, b),
        BinaryOp.Maximum => double.IsNaN(a) || double.IsNaN(b) ? double.NaN : Math.Max(a, b),
        BinaryOp.Minimum => double.IsNaN(a) || double.IsNaN(b) ? double.NaN : Math.Min(a, b),
        BinaryOp.MaxWinner => a == b ? 0.5 : a > b ? 1 : 0,
        BinaryOp.MinWinner => a == b ? 0.5 : a < b ? 1 : 0,
        BinaryOp.Eq => a == b ? 1 : 0,
        BinaryOp.Ne => a != b ? 1 : 0,
        BinaryOp.Gt => a > b ? 1 : 0,
        BinaryOp.Ge => a >= b ? 1 : 0,
        BinaryOp.Lt => a < b ? 1 : 0,
        BinaryOp.Le => a <= b ? 1 : 0,
        BinaryOp.TanhGrad => a * (1 - b * b),
        BinaryOp.SigmoidGrad => a * b * (1 - b),
        BinaryOp.ReluGrad => b > 0 ? a : 0,
        BinaryOp.LeakyReluGrad => b > 0 ? a : a * p0,
        BinaryOp.GeluGrad => a * (Cdf(b) + b * Pdf(b)),
        BinaryOp.GeluTanhGrad => a * GeluTanhDerivative(b),
        BinaryOp.SoftplusGrad => p0 * b > p1 ? a : a * Sigmoid(p0 * b),
        BinaryOp.SelectNonZero => a != 0 ? b : 0,
        BinaryOp.KeepZero => a == 0 ? b : 0,
        _ => throw new NotSupportedException($"Reference backend: binary op {op}."),
    };

    private static double GeluTanhDerivative(double x)
    {
        double t = Math.Tanh(SqrtTwoOverPi * (x + 0.044715 * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SqrtTwoOverPi * (1 + 3 * 0.044715 * x * x);
    }
}
