namespace Backprop.Cli.Explain;

/// <summary>y = 2x, z = 4y: the chain rule multiplies local slopes, dz/dx = dz/dy · dy/dx = 8.</summary>
public sealed class ChainRuleExample : WorkedExample
{
    /// <inheritdoc/>
    public override string Name => "chain-rule";

    /// <inheritdoc/>
    public override string Summary => "y = 2x, z = 4y: dz/dx = 8 from the two local slopes";

    /// <summary>Numbers the example computes.</summary>
    public sealed record Result(double X, double Y, double Z, double DyDx, double DzDy, double DzDx, double AutogradDzDx);

    /// <summary>Computes the example.</summary>
    public Result Compute(double x0 = 3)
    {
        var x = Tensor.Scalar(x0).RequiresGrad_();
        var y = 2 * x;
        var z = 4 * y;
        z.Backward();
        return new Result(x0, y.ItemDouble(), z.ItemDouble(), 2, 4, 2 * 4, x.Grad!.ItemDouble());
    }

    /// <inheritdoc/>
    public override void Run(TextWriter o)
    {
        var r = Compute();
        o.WriteLine("Chain rule: y = 2x, z = 4y");
        o.WriteLine();
        o.WriteLine($"  forward   x = {F(r.X, 1)}  ->  y = 2x = {F(r.Y, 1)}  ->  z = 4y = {F(r.Z, 1)}");
        o.WriteLine($"  local slopes   dy/dx = {F(r.DyDx, 0)}   dz/dy = {F(r.DzDy, 0)}");
        o.WriteLine($"  chain rule     dz/dx = dz/dy * dy/dx = {F(r.DzDy, 0)} * {F(r.DyDx, 0)} = {F(r.DzDx, 0)}");
        o.WriteLine($"  autograd       z.Backward(); x.Grad = {F(r.AutogradDzDx, 0)}");
        o.WriteLine();
        o.WriteLine("  Nudging x by a little changes z by 8 times as much: each link multiplies the change by its local slope.");
    }
}
