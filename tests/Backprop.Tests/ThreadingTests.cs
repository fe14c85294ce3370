namespace Backprop.Tests;

/// <summary>Large elementwise maps and reductions split across Threads.Count; results must not depend on the split.</summary>
[Collection("Threads")]
public class ThreadingTests
{
    private static T WithThreads<T>(int n, Func<T> f)
    {
        int old = Threads.Count;
        Threads.Count = n;
        try { return f(); }
        finally { Threads.Count = old; }
    }

    [Fact]
    public void LargeMapsAndZipsAreIdenticalOnOneAndTwoThreads()
    {
        var x = Tensor.Randn([1 << 19], new Generator(1));
        var y = Tensor.Randn([1 << 19], new Generator(2));
        float[] Run() => (x.Tanh() * y + x.Exp()).Gelu().ToArray();
        Assert.Equal(WithThreads(1, Run), WithThreads(2, Run));
    }

    [Fact]
    public void LargeSumIsDeterministicAndAccurate()
    {
        var x = Tensor.Rand([1 << 20], new Generator(3), DType.Float64);
        double one = WithThreads(1, () => x.Sum().ItemDouble());
        double two = WithThreads(2, () => x.Sum().ItemDouble());
        Assert.Equal(two, WithThreads(2, () => x.Sum().ItemDouble()));
        Assert.Equal(one, two, 1e-9 * one);
        Assert.Equal(x.ToDoubleArray().Sum(), two, 1e-9 * two);
    }

    [Fact]
    public void ThreadsCountValidatesAndNestedWorkRunsSerially()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Threads.Count = 0);
        Assert.Equal(1, WithThreads(2, () => Threads.ChunksFor(10, 100)));
        Assert.Equal(2, WithThreads(2, () => Threads.ChunksFor(1000, 100)));
    }
}
