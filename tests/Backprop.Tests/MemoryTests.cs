using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>Buffer pooling: what is recycled when, and that nothing the user can still read is ever recycled.</summary>
public class MemoryTests
{
    [Fact]
    public void ScopeRecyclesOpOutputsAndReadingThemThrows()
    {
        var x = Tensor.Randn([4, 8], new Generator(1));
        Tensor y, kept;
        using (Tensor.Scope())
        {
            y = (x * 2).Tanh();
            kept = (x + 1).Detach();
            Assert.Equal(8, y.Size(1));
        }
        var ex = Assert.Throws<ObjectDisposedException>(() => y.ToArray());
        Assert.Contains("Tensor.Scope()", ex.Message);
        Assert.Equal((x + 1).ToArray(), kept.ToArray()); // Detach kept it
        Assert.Equal(32, x.ToArray().Length);            // creation-function tensors are never recycled
    }

    [Fact]
    public void WithoutAScopeOutputsStayReadableAfterBackward()
    {
        var w = Tensor.Randn([3, 3], new Generator(2)).RequiresGrad_();
        var logits = w.MatMul(Tensor.Eye(3)).Tanh();
        var loss = logits.Sum();
        loss.Backward();
        Assert.Equal(9, logits.ToArray().Length); // as in PyTorch, outputs outlive the graph
        Assert.Equal(loss.Item(), logits.Sum().Item(), 5);
    }

    [Fact]
    public void ParametersGradientsAndOptimizerStateSurviveScopes()
    {
        var model = new Sequential(new Linear(4, 8, generator: new Generator(3)), new Relu(), new Linear(8, 2, generator: new Generator(4)));
        var opt = new Adam(model.Parameters(), lr: 1e-2);
        var x = Tensor.Randn([5, 4], new Generator(5));
        var y = Tensor.FromArray(new long[] { 0, 1, 1, 0, 1 });
        double first = 0, last = 0;
        for (int i = 0; i < 30; i++)
        {
            using var step = Tensor.Scope();
            var loss = Loss.CrossEntropy(model.Forward(x), y);
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
            if (i == 0) first = loss.ItemDouble();
            last = loss.ItemDouble();
        }
        Assert.True(last < first);
        foreach (var p in model.Parameters())
        {
            Assert.False(p.IsReleased);
            Assert.False(p.Grad!.IsReleased);
        }
    }

    [Fact]
    public void ScopedTrainingMatchesUnscopedBitForBit()
    {
        float[] Train(bool scoped)
        {
            var model = new Sequential(new Linear(6, 16, generator: new Generator(7)), new Sigmoid(), new Linear(16, 3, generator: new Generator(8)));
            var opt = new Sgd(model.Parameters(), lr: 0.5, momentum: 0.9);
            var g = new Generator(9);
            for (int i = 0; i < 20; i++)
            {
                var x = Tensor.Randn([10, 6], g);
                var y = Tensor.RandInt(0, 3, [10], g);
                var scope = scoped ? Tensor.Scope() : default;
                var loss = Loss.CrossEntropy(model.Forward(x), y);
                opt.ZeroGrad();
                loss.Backward();
                opt.Step();
                scope.Dispose();
            }
            return model.Parameters().SelectMany(p => p.ToArray()).ToArray();
        }
        Assert.Equal(Train(false), Train(true));
    }

    [Fact]
    public void BackwardTemporariesReturnToThePool()
    {
        var w = Tensor.Randn([64, 32], new Generator(10)).RequiresGrad_();
        var x = Tensor.Randn([16, 64], new Generator(11));
        void Step()
        {
            using var s = Tensor.Scope();
            x.MatMul(w).Tanh().Sum().Backward();
        }
        Step();
        Assert.True(Backprop.Backends.Cpu.BufferPool<float>.Available(16 * 32) > 0, "the [16, 32] gradient buffers should be back in the pool");
    }

    [Fact]
    public void NestedScopesRecycleInnerFirst()
    {
        var x = Tensor.Ones(3);
        using var outer = Tensor.Scope();
        var a = x * 2;
        Tensor b;
        using (Tensor.Scope()) b = a * 3;
        Assert.Throws<ObjectDisposedException>(() => b.ToArray());
        Assert.Equal(new[] { 2f, 2f, 2f }, a.ToArray());
    }

    [Fact]
    public void AWarmTrainingStepOfEitherMlpAllocatesUnder4KB()
    {
        Assert.True(StepAllocation([784, 16, 16, 10], () => new Sigmoid(), 10, p => new Sgd(p, 0.3)) < 4096);
        Assert.True(StepAllocation([784, 256, 128, 10], () => new Relu(), 128, p => new Adam(p, 1e-3)) < 4096);
    }

    internal static long StepAllocation(int[] sizes, Func<Module> act, int batch, Func<IEnumerable<Tensor>, Optimizer> makeOpt)
    {
        var g = new Generator(1);
        var model = new Sequential();
        for (int i = 0; i + 1 < sizes.Length; i++)
        {
            model.Add(new Linear(sizes[i], sizes[i + 1], generator: g));
            if (i + 2 < sizes.Length) model.Add(act());
        }
        var opt = makeOpt(model.Parameters());
        var x = Tensor.Rand([batch, sizes[0]], g);
        var y = Tensor.RandInt(0, sizes[^1], [batch], g);
        void Step()
        {
            using var scope = Tensor.Scope();
            var loss = Loss.CrossEntropy(model.Forward(x), y);
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
        }
        for (int i = 0; i < 5; i++) Step();
        // the least of a few warm steps: a per-thread cache that other tests filled may be rebuilt once in between
        long least = long.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Step();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }
}

public class RecycledBatchesTests
{
    [Fact]
    public void RecycledBatchesReuseBuffersAndStaleOnesThrow()
    {
        var data = new Data.TensorDataset(Tensor.Randn([512, 100], new Generator(1)), Tensor.RandInt(0, 3, [512], new Generator(2)));
        var loader = new Data.DataLoader(data, 64, shuffle: true, seed: 1, recycleBatches: true);
        var seen = new List<Tensor>();
        Tensor? kept = null;
        int i = 0;
        foreach (var (x, _) in loader)
        {
            if (i == 1) kept = x.Detach();
            seen.Add(x);
            i++;
        }
        foreach (var _ in loader) { } // the next epoch reuses the buffers
        Assert.Throws<ObjectDisposedException>(() => seen[0].ToArray());
        Assert.Equal(6400, kept!.ToArray().Length);
        // the same batches as without recycling
        var plain = new Data.DataLoader(data, 64, shuffle: true, seed: 1);
        var firstPlain = plain.GetBatch(0, 1).Input.ToArray();
        Assert.Equal(firstPlain, kept.ToArray());
    }

    [Fact]
    public void RecyclingLoaderAllocatesLittlePerBatch()
    {
        var data = new Data.TensorDataset(Tensor.Randn([4096, 784], new Generator(3)), Tensor.RandInt(0, 10, [4096], new Generator(4)));
        var loader = new Data.DataLoader(data, 128, shuffle: true, seed: 1, recycleBatches: true);
        foreach (var _ in loader) { } // warm: the pool holds the two batch buffers
        long before = GC.GetAllocatedBytesForCurrentThread();
        int batches = 0;
        foreach (var _ in loader) batches++;
        long perBatch = (GC.GetAllocatedBytesForCurrentThread() - before) / batches;
        Assert.True(perBatch < 1024, $"{perBatch} bytes per batch"); // a batch of inputs alone is 401 KB
    }
}
