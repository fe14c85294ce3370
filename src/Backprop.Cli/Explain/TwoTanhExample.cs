namespace Backprop.Cli.Explain;

/// <summary>
/// Two tanh neurons in a chain: h = tanh(w1·x), o = tanh(w2·h), L = ½(y − o)². The backward pass
/// computes the shared factor δ = −(y − o)(1 − o²) once and reuses it for both weights.
/// </summary>
public sealed class TwoTanhExample : WorkedExample
{
    /// <inheritdoc/>
    public override string Name => "two-tanh";

    /// <inheritdoc/>
    public override string Summary => "h = tanh(w1 x), o = tanh(w2 h), L = (y - o)^2 / 2: gradients by hand, by autograd, one update";

    /// <summary>Numbers the example computes.</summary>
    public sealed record Result(double X, double Y, double W1, double W2, double Lr, double H, double O, double L,
        double Delta, double DLdW2, double DLdW1, double AutogradW2, double AutogradW1, double NewW1, double NewW2, double NewL);

    /// <summary>Computes the example by hand and with autograd.</summary>
    public Result Compute(double x = 0.5, double y = 0.8, double w1 = 0.6, double w2 = -0.4, double lr = 0.5)
    {
        double h = Math.Tanh(w1 * x), o = Math.Tanh(w2 * h), l = 0.5 * (y - o) * (y - o);
        double delta = -(y - o) * (1 - o * o);         // dL/d(w2·h): shared by both weights
        double dW2 = delta * h;
        double dW1 = delta * w2 * (1 - h * h) * x;

        var tw1 = Tensor.Scalar(w1, DType.Float64).RequiresGrad_();
        var tw2 = Tensor.Scalar(w2, DType.Float64).RequiresGrad_();
        var th = (tw1 * x).Tanh();
        var to = (tw2 * th).Tanh();
        var loss = 0.5 * (y - to).Pow(2);
        loss.Backward();

        double nw1 = w1 - lr * dW1, nw2 = w2 - lr * dW2;
        double nh = Math.Tanh(nw1 * x), no = Math.Tanh(nw2 * nh), nl = 0.5 * (y - no) * (y - no);
        return new Result(x, y, w1, w2, lr, h, o, l, delta, dW2, dW1, tw2.Grad!.ItemDouble(), tw1.Grad!.ItemDouble(), nw1, nw2, nl);
    }

    /// <inheritdoc/>
    public override void Run(TextWriter o)
    {
        var r = Compute();
        o.WriteLine("Two tanh neurons: h = tanh(w1*x), o = tanh(w2*h), L = 1/2 (y - o)^2");
        o.WriteLine();
        o.WriteLine($"  inputs    x = {F(r.X, 2)}, target y = {F(r.Y, 2)}, w1 = {F(r.W1, 2)}, w2 = {F(r.W2, 2)}");
        o.WriteLine($"  forward   h = tanh({P(r.W1, 2)} * {P(r.X, 2)}) = {F(r.H, 4)}");
        o.WriteLine($"            o = tanh({P(r.W2, 2)} * {P(r.H, 4)}) = {F(r.O, 4)}");
        o.WriteLine($"            L = 1/2 ({F(r.Y, 2)} - {P(r.O, 4)})^2 = {F(r.L, 4)}");
        o.WriteLine();
        o.WriteLine("  backward  shared factor  delta = -(y - o)(1 - o^2)");
        o.WriteLine($"                                = -({F(r.Y, 2)} - {P(r.O, 4)})(1 - {P(r.O, 4)}^2) = {F(r.Delta, 4)}");
        o.WriteLine($"            dL/dw2 = delta * h                     = {P(r.Delta, 4)} * {P(r.H, 4)} = {F(r.DLdW2, 4)}");
        o.WriteLine($"            dL/dw1 = delta * w2 * (1 - h^2) * x    = {P(r.Delta, 4)} * {P(r.W2, 2)} * {P(1 - r.H * r.H, 4)} * {P(r.X, 2)} = {F(r.DLdW1, 4)}");
        o.WriteLine($"            autograd: w2.Grad = {F(r.AutogradW2, 4)}, w1.Grad = {F(r.AutogradW1, 4)}");
        o.WriteLine();
        o.WriteLine($"  update    theta <- theta - eta * dL/dtheta with eta = {F(r.Lr, 2)}");
        o.WriteLine($"            w1 = {F(r.W1, 2)} - {F(r.Lr, 2)} * {P(r.DLdW1, 4)} = {F(r.NewW1, 4)}");
        o.WriteLine($"            w2 = {F(r.W2, 2)} - {F(r.Lr, 2)} * {P(r.DLdW2, 4)} = {F(r.NewW2, 4)}");
        o.WriteLine($"            loss {F(r.L, 4)} -> {F(r.NewL, 4)}");
    }
}
