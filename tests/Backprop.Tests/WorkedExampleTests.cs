using Backprop.Cli;
using Backprop.Cli.Explain;

namespace Backprop.Tests;

/// <summary>The numbers of the classic backprop explanations, pinned.</summary>
public class WorkedExampleTests
{
    [Fact]
    public void ChainRule()
    {
        var r = new ChainRuleExample().Compute();
        Assert.Equal(8, r.DzDx);
        Assert.Equal(8, r.AutogradDzDx);
    }

    [Fact]
    public void TwoTanhHandFormulasMatchAutogradAndTheStepLowersTheLoss()
    {
        var ex = new TwoTanhExample();
        var r = ex.Compute();
        Assert.Equal(r.DLdW2, r.AutogradW2, 12);
        Assert.Equal(r.DLdW1, r.AutogradW1, 12);
        Assert.Equal(-(r.Y - r.O) * (1 - r.O * r.O) * r.H, r.DLdW2, 12);
        Assert.Equal(-(r.Y - r.O) * (1 - r.O * r.O) * r.W2 * (1 - r.H * r.H) * r.X, r.DLdW1, 12);
        Assert.True(r.NewL < r.L);
        Assert.Equal(0.2913, r.H, 4);
        Assert.Equal(-0.1160, r.O, 4);
        Assert.Equal(-0.2633, r.DLdW2, 4);
        Assert.Equal(0.1654, r.DLdW1, 4);
        // another configuration, checked against hand-evaluated numbers
        var r2 = ex.Compute(x: 1, y: 0, w1: 1, w2: 1, lr: 1);
        double h = Math.Tanh(1), o = Math.Tanh(h);
        Assert.Equal(o * (1 - o * o) * h, r2.DLdW2, 12);
        Assert.Equal(o * (1 - o * o) * (1 - h * h), r2.DLdW1, 12);
    }

    [Fact]
    public void LinearLayerBackpropEqualsTheJacobian()
    {
        var r = new LinearLayerExample().Compute();
        Assert.Equal(0, r.MaxDifference, 12);
        Assert.Equal(new[] { -1.5, 2, 2.5, 2.5 }, r.DX);
        Assert.Equal(new[] { 7, 1.5, 2, 10, 2, 2 }, r.DW);
        Assert.Equal(r.DX, r.DXAutograd);
        Assert.Equal(r.DW, r.DWAutograd);
    }

    [Fact]
    public void NumericalSlopesAgreeWithBackprop()
    {
        var r = new NumericalVsBackpropExample().Compute();
        Assert.Equal(17, r.Parameters);
        Assert.Equal(34, r.NumericalForwardPasses);
        Assert.True(r.MaxAbsDifference < 1e-8, $"max difference {r.MaxAbsDifference}");
        Assert.Equal(17, r.Slopes.Count);
    }

    [Fact]
    public void ExplainListsAndPrintsEveryExample()
    {
        var o = new StringWriter();
        Assert.Equal(0, Cli.Cli.Run(["explain"], o, TextWriter.Null));
        foreach (var e in WorkedExample.All) Assert.Contains(e.Name, o.ToString());
        foreach (var e in WorkedExample.All)
        {
            var w = new StringWriter();
            Assert.Equal(0, Cli.Cli.Run(["explain", e.Name], w, TextWriter.Null));
            Assert.True(w.ToString().Length > 200);
        }
        var err = new StringWriter();
        Assert.Equal(2, Cli.Cli.Run(["explain", "nope"], TextWriter.Null, err));
        Assert.StartsWith("error: unknown example 'nope'", err.ToString());
    }
}

public class CitiesExampleTests
{
    [Fact]
    public void TheParisPointMatchesTheWalkThrough()
    {
        var s = new CitiesExample().ComputeStep1();
        Assert.Equal(2.35, s.H[0], 2);
        Assert.Equal(0.906, s.P[0], 3);   // "P(Madrid) ≈ 0.91"
        Assert.Equal(0.086, s.P[1], 3);   // "P(Paris) ≈ 0.086"
        Assert.Equal(2.45, s.Loss, 2);
        Assert.Equal(0.107, s.PNudged[1], 3);
        Assert.Equal(2.24, s.LossNudged, 2);
        Assert.Equal(0.91, s.DLdH[0], 2);
        Assert.Equal(-0.91, s.DLdH[1], 2);
        Assert.Equal(0.00, s.DLdH[2], 1);
        Assert.Equal(-2.15, s.DLdM2, 2);
        Assert.Equal(s.DLdM2, s.AutogradDLdM2, 10);
        Assert.InRange(s.NumericalSlope, -2.2, -2.1);
    }

    [Fact]
    public void GradientDescentSeparatesThreeThenFourCities()
    {
        var ex = new CitiesExample();
        var three = ex.Train(Data.Cities.LongitudeExample, longitudeOnly: true);
        Assert.True(three.Accuracy >= 0.98, $"three cities by longitude: {three.Accuracy}");
        Assert.True(three.FinalLoss < three.InitialLoss);
        var fourLon = ex.Train(Data.Cities.All, longitudeOnly: true);
        Assert.True(fourLon.Accuracy < 0.9, $"longitude alone should not separate Paris from Barcelona: {fourLon.Accuracy}");
        var four = ex.Train(Data.Cities.All, longitudeOnly: false);
        Assert.Equal(12, four.Parameters);
        Assert.True(four.Accuracy >= 0.98, $"four cities by longitude and latitude: {four.Accuracy}");
    }

    [Fact]
    public void BackwardNetworkGivesTheSecondDerivative()
    {
        var r = new BackwardNetworkExample().Compute();
        var two = new TwoTanhExample().Compute();
        Assert.Equal(two.DLdW1, r.DLdW1, 12);                    // the recorded backward gives the same gradient
        Assert.Equal(r.ClosedForm, r.D2LdW1, 12);                // backprop through it: the hand-derived d2L/dw1^2
        Assert.Equal(r.FiniteDifference, r.D2LdW1, 8);
        Assert.Equal(-0.02260192, r.D2LdW1, 7);
        Assert.Equal(16, r.Ops);
        Assert.Contains(r.Graph, l => l.Contains("Tanh = 0.2913   <- forward pass: h = tanh(w1*x)"));
        var text = new StringWriter();
        new BackwardNetworkExample().Run(text);
        Assert.Contains("d2L/dw1^2 by backprop through the backward network = -0.02260192", text.ToString());
    }
}
