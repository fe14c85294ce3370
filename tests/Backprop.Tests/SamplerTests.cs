using Backprop.Text;

namespace Backprop.Tests;

public class SamplerTests
{
    private static void Near(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-6, $"{i}: {expected[i]} vs {actual[i]}");
    }

    private static double[] Softmax(params double[] l)
    {
        double m = l.Max();
        var e = l.Select(v => Math.Exp(v - m)).ToArray();
        return [.. e.Select(v => v / e.Sum())];
    }

    [Fact]
    public void TemperatureScalesTheLogits()
    {
        float[] l = [1, 2, 3];
        Near(Softmax(1, 2, 3), Sampler.Probabilities(l, new()));
        Near(Softmax(0.5, 1, 1.5), Sampler.Probabilities(l, new(Temperature: 2)));
        Near([0, 0, 1], Sampler.Probabilities(l, new(Temperature: 0)));
        Near([1, 0, 0], Sampler.Probabilities([5, 5, 1], new(Temperature: 0)));   // ties: the lower id
    }

    [Fact]
    public void TopKKeepsTheKMostLikely()
    {
        var p = Sampler.Probabilities([1, 4, 2, 3], new(TopK: 2));
        var s = Softmax(4, 3);
        Near([0, s[0], 0, s[1]], p);
        Near(Softmax(1, 4, 2, 3), Sampler.Probabilities([1, 4, 2, 3], new(TopK: 10)));
    }

    [Fact]
    public void TopPKeepsTheSmallestNucleusReachingP()
    {
        float[] l = [(float)Math.Log(0.2), (float)Math.Log(0.5), (float)Math.Log(0.3)];
        // Sorted: 0.5, 0.3, 0.2. p = 0.7: 0.5 < 0.7, 0.5 + 0.3 >= 0.7: keep two.
        Near([0, 0.5 / 0.8, 0.3 / 0.8], Sampler.Probabilities(l, new(TopP: 0.7)));
        Near([0, 1, 0], Sampler.Probabilities(l, new(TopP: 0.5)));
        Near([1, 0], Sampler.Probabilities([0, 0], new(TopP: 0.5)));   // reaching P exactly is enough
        Near([0.2, 0.5, 0.3], Sampler.Probabilities(l, new(TopP: 1)));
        // top-k first, then top-p within it: k = 2 leaves 0.625 / 0.375; p = 0.6 keeps the first.
        Near([0, 1, 0], Sampler.Probabilities(l, new(TopK: 2, TopP: 0.6)));
        Assert.Throws<ArgumentException>(() => Sampler.Probabilities(l, new(TopP: 0)));
        Assert.Throws<ArgumentException>(() => Sampler.Probabilities(l, new(Temperature: -1)));
    }

    [Fact]
    public void DrawsFollowTheProbabilities()
    {
        var g = new Generator(5);
        int ones = 0;
        for (int i = 0; i < 20000; i++) ones += Sampler.Draw([0.2, 0.8, 0], g);
        Assert.InRange(ones / 20000.0, 0.78, 0.82);
        for (int i = 0; i < 100; i++) Assert.NotEqual(2, Sampler.Draw([0.5, 0.5, 0], g));
    }

    [Fact]
    public void GenerationIsDeterministicForASeed()
    {
        var m = new FixedWindowLm(10, 3, 4, 16, generator: new Generator(1));
        List<int> Run(ulong seed) => Sampler.Generate(m, [0], 30, new(Temperature: 1.5, TopK: 5), new Generator(seed), 3);
        var a = Run(7);
        Assert.Equal(30, a.Count);
        Assert.Equal(a, Run(7));
        Assert.NotEqual(a, Run(8));
        // Greedy decoding does not depend on the seed; a stop token ends the sample (and is included).
        var greedy = Sampler.Generate(m, [0], 30, new(Temperature: 0), new Generator(1), 3);
        Assert.Equal(greedy, Sampler.Generate(m, [0], 30, new(Temperature: 0), new Generator(2), 3));
        var stopped = Sampler.Generate(m, [0], 30, new(), new Generator(7), 3, stopToken: a[3]);
        Assert.Equal(a[3], stopped[^1]);
        Assert.True(stopped.Count <= 4);
    }
}
