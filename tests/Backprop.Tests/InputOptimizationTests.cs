using Backprop.Cli.Explain;

namespace Backprop.Tests;

/// <summary>explain adversarial and explain dream (issue 14): optimizing the input with the same backward pass.</summary>
[Collection("Threads")]
public sealed class InputOptimizationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-adv").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void FgsmFlipsACorrectDigitWithABoundedPerturbation()
    {
        var e = new AdversarialExample { OutDir = _dir };
        var o = new StringWriter();
        e.Run(o);
        var r = Assert.NotNull(e.Result);
        Assert.NotEqual(r.Before, r.After);
        // every pixel moves by at most ε, and a small ε suffices on this digit network
        Assert.True(r.MaxChange <= r.Epsilon + 1e-6, $"max change {r.MaxChange} > ε {r.Epsilon}");
        Assert.InRange(r.Epsilon, 0.005, 0.35);
        Assert.Contains("<- flipped", o.ToString());
        foreach (var f in Directory.GetFiles(_dir, "adversarial-*.pgm"))
            Assert.StartsWith("P5\n8 8\n255\n", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(f), 0, 11));
        Assert.Equal(3, Directory.GetFiles(_dir, "adversarial-*.pgm").Length);
    }

    [Fact]
    public void DreamingOfAClassRaisesItsProbabilityFromNoise()
    {
        var e = new DreamExample { Class = 3, OutDir = _dir };
        e.Run(new StringWriter());
        var (noise, final) = Assert.NotNull(e.Result);
        Assert.True(final > 0.99 && final > noise, $"p(3): noise {noise}, after {final}");
        Assert.True(File.Exists(Path.Combine(_dir, "dream-3.pgm")));
    }
}
