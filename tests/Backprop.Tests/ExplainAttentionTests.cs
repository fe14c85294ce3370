using Backprop.Cli.Explain;

namespace Backprop.Tests;

/// <summary><c>backprop explain attention</c>: the trained model completes the prompt, and its heads look at the country.</summary>
public class ExplainAttentionTests
{
    [Fact]
    public void TheTrainedModelAnswersParisAndItsHeadsAttendToFrance()
    {
        var r = new AttentionExample().Compute();
        Assert.Equal("paris", r.Predicted);
        Assert.True(r.Probability > 0.5, $"p(paris) = {r.Probability}");
        Assert.True(r.FinalLoss < 0.5 * r.FirstLoss);
        int n = r.Prompt.Length, france = Array.IndexOf(r.Prompt, "france");
        // from the last word, some head puts most of its weight on "france"
        Assert.Contains(r.Weights.SelectMany(layer => layer), head => head[n - 1][france] > 0.5);
        // every row is a causal softmax: weights on earlier positions only, summing to 1
        foreach (var head in r.Weights.SelectMany(layer => layer))
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(1.0, head[i].Sum(), 5);
                for (int j = i + 1; j < n; j++) Assert.Equal(0.0, head[i][j]);
            }
    }
}
