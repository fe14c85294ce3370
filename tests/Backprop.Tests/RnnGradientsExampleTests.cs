using Backprop.Cli.Explain;

namespace Backprop.Tests;

/// <summary>
/// `backprop explain rnn-gradients`: the numbers it prints are pinned. At the initialization used, the plain
/// RNN's ‖dL/dh_0‖/‖dL/dh_49‖ is below 1e-3 and the LSTM's above 1e-1; with large recurrent weights the
/// RNN's gradient grows; clipping bounds the step; after training the LSTM solves the task and the RNN does not.
/// (WorkedExampleTests runs the command itself, with every other example.)
/// </summary>
public class RnnGradientsExampleTests
{
    [Fact]
    public void RnnVanishesLstmHoldsClippingBoundsAndOnlyTheLstmLearns()
    {
        var r = new RnnGradientsExample().Compute();
        int last = RnnGradientsExample.Steps - 1;
        Assert.Equal(RnnGradientsExample.Steps, r.RnnNorms.Length);
        Assert.True(r.RnnNorms[0] / r.RnnNorms[last] < 1e-3, $"RNN ratio {r.RnnNorms[0] / r.RnnNorms[last]}");
        Assert.True(r.LstmNorms[0] / r.LstmNorms[last] > 1e-1, $"LSTM ratio {r.LstmNorms[0] / r.LstmNorms[last]}");
        Assert.True(r.LargeRnnNorms[0] / r.LargeRnnNorms[last] > 100, $"large-W_hh RNN ratio {r.LargeRnnNorms[0] / r.LargeRnnNorms[last]}");
        Assert.True(r.ClipNormBefore > 10);
        Assert.True(r.UpdateUnclipped > 10 * r.UpdateClipped);
        Assert.True(r.UpdateClipped <= 0.1 * (1 + 1e-5), $"clipped update {r.UpdateClipped}");
        Assert.True(r.LstmAccuracy >= 0.95, $"LSTM accuracy {r.LstmAccuracy}");
        Assert.True(r.RnnAccuracy < 0.95, $"RNN accuracy {r.RnnAccuracy}");
    }
}
