using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>Forward values of the PyTorch-style tensor API: trigonometry, rounding, in-place forms, composites, sorting, int64 arithmetic, C# indexing.</summary>
public class TensorApiTests
{
    private static readonly Tensor X = Tensor.FromArray([-2.5f, -0.5f, 0f, 0.5f, 1.5f, 2.7f]);

    [Fact]
    public void TrigonometryAndRounding()
    {
        Close(X.ToArray().Select(v => Math.Sin(v)).ToArray(), X.Sin(), 1e-6);
        Close(X.ToArray().Select(v => Math.Cos(v)).ToArray(), X.Cos(), 1e-6);
        Close([-3, -1, 0, 0, 1, 2], X.Floor());
        Close([-2, -0, 0, 1, 2, 3], X.Ceil());
        Close([-2, -0, 0, 0, 2, 3], X.Round()); // halves to even, as torch.round
    }

    [Fact]
    public void RoundingHasZeroGradient()
    {
        var x = Tensor.FromArray([0.3, 1.7, -2.2]).RequiresGrad_();
        (x.Floor() + x.Ceil() + x.Round()).Sum().Backward();
        Close([0, 0, 0], x.Grad!);
    }
}
