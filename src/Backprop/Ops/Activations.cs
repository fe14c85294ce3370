using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Backprop.Autograd;
using Backprop.Backends;

namespace Backprop;

// Tanh, Sigmoid, Relu, LeakyRelu, Gelu, Softplus. Backward formulas use the cached output where
// the derivative is a function of it (tanh, sigmoid, relu), so nothing is recomputed.
public partial class Tensor
{
    private static readonly double InvSqrt2 = 1 / Math.Sqrt(2), InvSqrt2Pi = 1 / Math.Sqrt(2 * Math.PI), SqrtTwoOverPi = Math.Sqrt(2 / Math.PI);

    /// <summary>Elementwise tanh. Backward: dx = dy·(1 − y²), with y cached from the forward pass.</summary>
    public Tensor Tanh()
    {
        var y = Dispatch.Map("Tanh", this, UnaryOp.Tanh);
        Engine.Record(y, "Tanh", new TanhBackward(this, y), this, saved0: y);
        return y;
    }

    private readonly struct TanhBackward(Tensor x, Tensor y) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph
            ? dy * (1 - y * y)
            : Dispatch.Zip("TanhBackward", dy, y, BinaryOp.TanhGrad));
    }

    /// <summary>Elementwise logistic sigmoid 1/(1 + e^−x). Backward: dx = dy·y·(1 − y).</summary>
    public Tensor Sigmoid()
    {
        var y = Dispatch.Map("Sigmoid", this, UnaryOp.Sigmoid);
        Engine.Record(y, "Sigmoid", new SigmoidBackward(this, y), this, saved0: y);
        return y;
    }

    private readonly struct SigmoidBackward(Tensor x, Tensor y) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph
            ? dy * y * (1 - y)
            : Dispatch.Zip("SigmoidBackward", dy, y, BinaryOp.SigmoidGrad));
    }

    /// <summary>Elementwise max(x, 0). Backward: dx = dy where y &gt; 0 (0 at x = 0, as in PyTorch).</summary>
    public Tensor Relu()
    {
        var y = Dispatch.Map("Relu", this, UnaryOp.Relu);
        Engine.Record(y, "Relu", new ReluBackward(this, y), this, saved0: y);
        return y;
    }

    private readonly struct ReluBackward(Tensor x, Tensor y) : IBackward
    {
        // The mask y > 0 is a constant of the backward graph: ReLU's second derivative is 0 almost everywhere.
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph
            ? dy * y.NoGraph().Gt(0).To(y.DType)
            : Dispatch.Zip("ReluBackward", dy, y, BinaryOp.ReluGrad));
    }

    /// <summary>Elementwise x for x &gt; 0, slope·x otherwise.</summary>
    public Tensor LeakyRelu(double negativeSlope = 0.01)
    {
        var y = Dispatch.Map("LeakyRelu", this, UnaryOp.LeakyRelu, negativeSlope);
        Engine.Record(y, "LeakyRelu", new LeakyReluBackward(this, negativeSlope), this);
        return y;
    }

    private readonly struct LeakyReluBackward(Tensor x, double slope) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph
            ? dy * Where(x.NoGraph().Gt(0), x.Const(1), x.Const(slope))
            : Dispatch.Zip("LeakyReluBackward", dy, x, BinaryOp.LeakyReluGrad, slope));
    }

    /// <summary>
    /// Gaussian error linear unit x·Φ(x) (exact, with erf, as PyTorch's default), or the tanh
    /// approximation 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) when <paramref name="approximateTanh"/> is set.
    /// </summary>
    public Tensor Gelu(bool approximateTanh = false)
    {
        var y = approximateTanh
            ? Dispatch.Map("Gelu", this, UnaryOp.GeluTanh)
            : Dispatch.Map("Gelu", this, UnaryOp.Gelu);
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
            ? Dispatch.Zip("GeluBackward", dy, x, BinaryOp.GeluTanhGrad)
            : Dispatch.Zip("GeluBackward", dy, x, BinaryOp.GeluGrad);
    }

    /// <summary>
    /// Smooth ReLU (1/β)·log(1 + e^(βx)), linear where βx &gt; threshold for stability.
    /// Backward: dx = dy·sigmoid(βx).
    /// </summary>
    public Tensor Softplus(double beta = 1, double threshold = 20)
    {
        var y = Dispatch.Map("Softplus", this, UnaryOp.Softplus, beta, threshold);
        Engine.Record(y, "Softplus", new SoftplusBackward(this, beta, threshold), this);
        return y;
    }

    private readonly struct SoftplusBackward(Tensor x, double beta, double threshold) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph
            ? Where((x.NoGraph() * beta).Gt(threshold), dy, dy * (x * beta).Sigmoid())
            : Dispatch.Zip("SoftplusBackward", dy, x, BinaryOp.SoftplusGrad, beta, threshold));
    }
}
