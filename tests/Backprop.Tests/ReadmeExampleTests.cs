using Backprop.Data;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>The README's first program, on a slice of MNIST so that it runs in seconds.</summary>
public class ReadmeExampleTests
{
    [Fact]
    public void FirstProgramLearnsMnist()
    {
        string dir = DataTestFiles.Shared("mnist");
        var train = Mnist.Load(dir, Split.Train, limit: 6000);
        var test = Mnist.Load(dir, Split.Test, limit: 2000);
        Generator.ManualSeed(1);
        var model = new Sequential(
            new Linear(784, 16), new Sigmoid(),
            new Linear(16, 16), new Sigmoid(),
            new Linear(16, 10));
        var opt = new Sgd(model.Parameters(), lr: 0.3);
        var loader = new DataLoader(train, batchSize: 10, shuffle: true, seed: 1);
        for (int epoch = 0; epoch < 3; epoch++)
            foreach (var (x, y) in loader)
            {
                var loss = Loss.CrossEntropy(model.Forward(x), y);
                opt.ZeroGrad();
                loss.Backward();
                opt.Step();
            }
        float acc;
        using (Tensor.NoGrad())
            acc = model.Forward(test.Inputs).Argmax(1).Eq(test.Targets).Mean().Item();
        Assert.True(acc > 0.8, $"accuracy {acc}");
    }
}

/// <summary>What the README's training loop allocates per warm step, as written and with the idiom it shows for less.</summary>
public class ReadmeLoopAllocationTests
{
    /// <summary>Bytes per step over a warm epoch, everything included (the loader's batches too).</summary>
    internal static long BytesPerStep(bool lean)
    {
        string dir = DataTestFiles.Shared("mnist");
        var train = Mnist.Load(dir, Split.Train, limit: 2000);
        var model = new Sequential(
            new Linear(784, 16), new Sigmoid(),
            new Linear(16, 16), new Sigmoid(),
            new Linear(16, 10));
        var opt = new Sgd(model.Parameters(), lr: 0.3);
        var loader = new DataLoader(train, batchSize: 10, shuffle: true, seed: 1, recycleBatches: lean);
        long steps = 0, start = 0;
        for (int epoch = 0; epoch < 2; epoch++)
        {
            if (epoch == 1) start = GC.GetAllocatedBytesForCurrentThread();
            foreach (var (x, y) in loader)
            {
                using var step = lean ? Tensor.Scope() : default;
                var loss = Loss.CrossEntropy(model.Forward(x), y);
                opt.ZeroGrad();
                loss.Backward();
                opt.Step();
                if (epoch == 1) steps++;
            }
        }
        return (GC.GetAllocatedBytesForCurrentThread() - start) / steps;
    }

    [Fact]
    public void TheLoopAsWrittenAllocatesUnder60KBPerStep()
    {
        long bytes = BytesPerStep(lean: false);
        Assert.True(bytes < 60_000, $"{bytes} bytes per step");
    }

    [Fact]
    public void WithAScopeAndRecycledBatchesAStepAllocatesAFewKB()
    {
        long bytes = BytesPerStep(lean: true);
        Assert.True(bytes < 4096, $"{bytes} bytes per step");
    }
}
