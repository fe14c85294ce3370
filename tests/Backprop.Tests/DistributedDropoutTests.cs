using Backprop.Cli.Text;
using Backprop.Cli.Training;
using Backprop.Data;
using Backprop.Distributed;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>What a <see cref="DistributedTraining"/> step does, over thread-ranks (tests only): the loss and sample count all-reduced, the gradients averaged by DDP.</summary>
internal sealed class ThreadStepSync(ThreadCommunicator comm, DistributedDataParallel ddp) : IStepSync
{
    public int Rank => comm.Rank;
    public int Size => comm.Size;
    public int GlobalSamples { get; private set; }
    public bool StopAgreed { get; private set; }

    public double AfterForward(double localLoss, int localSamples, bool stopRequested)
    {
        Span<double> r = [localLoss * localSamples, localSamples, stopRequested ? 1 : 0];
        comm.AllReduceSum(r);
        (GlobalSamples, StopAgreed) = ((int)r[1], r[2] > 0);
        ddp.SetLocalShare(localSamples, GlobalSamples);
        return r[0] / r[1];
    }

    public void BeforeUpdate() => ddp.FinishGradientSync();

    public void Broadcast(Span<float> data, int root) => comm.Broadcast(data, root);
}

/// <summary>
/// Dropout masks from the global sample index beyond <see cref="Dropout"/>: <see cref="Dropout2d"/>'s channel
/// masks, and the text models of 'train text' (GPT: embedding, residual and attention dropout; LSTM: dropout
/// between layers, with --bptt's carried state split by rows): N thread-ranks compute what one process does.
/// </summary>
public class DistributedDropoutTests
{
    private static double MaxRelative(float[][] expected, float[][] actual) => expected.Zip(actual, (e, a) =>
        e.Zip(a, (u, v) => (double)Math.Abs(u - v)).Max() / Math.Max(1e-30, e.Max(v => Math.Abs(v)))).Max();

    [Fact]
    public void Dropout2dPerSampleMasksDependOnTheGlobalIndexOnly()
    {
        var whole = Functional.Dropout2dPerSample(Tensor.Ones([6, 8, 2, 3]), 0.5, 42, 0).ToArray();
        var tail = Functional.Dropout2dPerSample(Tensor.Ones([2, 8, 2, 3]), 0.5, 42, 4).ToArray();
        Assert.Equal(whole[(4 * 48)..], tail);
        // one draw per channel: the 6 pixels of a channel share it
        for (int c = 0; c < 6 * 8; c++) Assert.All(whole[(6 * c)..(6 * c + 6)], v => Assert.Equal(whole[6 * c], v));
        Assert.NotEqual(whole[..48], whole[48..96]); // samples differ
        Assert.NotEqual(whole, Functional.Dropout2dPerSample(Tensor.Ones([6, 8, 2, 3]), 0.5, 43, 0).ToArray()); // keys differ
        Assert.All(whole, v => Assert.True(v == 0 || v == 2));
        // a 3-D input is one sample: sample 5's channel mask
        var one = Functional.Dropout2dPerSample(Tensor.Ones([8, 2, 3]), 0.5, 42, 5).ToArray();
        Assert.Equal(whole[(5 * 48)..], one);
    }

    [Fact]
    public void AttachReachesEveryLayerThatDropsOut()
    {
        var masks = new SampleMasks(1);
        var model = new Sequential(new Dropout2d(0.2), new Dropout(0.2), new TransformerBlock(8, 2, 0.1), new Lstm(4, 4, 2, dropout: 0.1));
        Assert.Equal(5, masks.Attach(model)); // Dropout2d, Dropout, the block's attention and residual dropout, the LSTM
        Assert.Same(masks, ((Dropout2d)model[0]).Masks);
    }

    private static Sequential Cnn(ulong seed) => new(
        new Conv2d(2, 6, 3, padding: 1, generator: new Generator(seed)), new Relu(), new Dropout2d(0.4),
        new Flatten(), new Linear(6 * 4 * 4, 3, generator: new Generator(seed + 1)));

    private static float[][] TrainCnn(int ranks, bool globalIndex = true)
    {
        var g = new Generator(11);
        var data = new TensorDataset(Tensor.Randn([48, 2, 4, 4], g), Tensor.FromArray(Enumerable.Range(0, 48).Select(i => (long)(i * 5 % 3)).ToArray(), 48));
        float[][] Rank(Communicator? comm)
        {
            var model = Cnn(comm is { Rank: > 0 } ? 50UL : 1UL); // rank 0's parameters are broadcast
            var ddp = comm == null ? null : new DistributedDataParallel(model, comm, bucketBytes: 256);
            var masks = new SampleMasks(7);
            Assert.Equal(1, masks.Attach(model));
            var opt = new Sgd(model.Parameters(), 0.1, momentum: 0.9);
            var loader = new DataLoader(data, 8, shuffle: true, seed: 3);
            if (comm != null) loader.SetShard(comm.Rank, comm.Size);
            int step = 0;
            foreach (var (x, y) in loader)
            {
                // the mutation: each rank numbers its samples from 0
                (masks.Step, masks.FirstSample) = (step, globalIndex ? loader.LastShardStart : 0);
                ddp?.SetLocalShare(x.Size(0), 8);
                var loss = Loss.CrossEntropy(model.Forward(x), y);
                opt.ZeroGrad();
                loss.Backward();
                ddp?.FinishGradientSync();
                opt.Step();
                if (++step == 6) break;
            }
            return [.. model.Parameters().Select(p => p.ToArray())];
        }
        return ranks == 0 ? Rank(null) : DistributedSyncTests.OnThreads(ranks, c => Rank(c))[0];
    }

    [Fact]
    public void RanksWithDropout2dMatchOneProcess()
    {
        var single = TrainCnn(0);
        foreach (int ranks in new[] { 2, 3 }) // 3 ranks: parts of 2, 3 and 3 samples
            Assert.True(MaxRelative(single, TrainCnn(ranks)) < 1e-5, $"{ranks} ranks differ from one process");
        Assert.True(MaxRelative(single, TrainCnn(2, globalIndex: false)) > 1e-3); // what the test guards
    }

    private static TextTrainOptions TextOptions(string data, string model, bool lines, bool bptt, double dropout, int steps) => new()
    {
        Model = model, Data = data, Lines = lines, Tokenizer = "char", Context = 6, Embedding = 6, Layers = 2, Width = 8, Heads = 2,
        Dropout = dropout, Steps = steps, BatchSize = 4, Optimizer = "sgd", Lr = 0.5, MinLrFraction = 1, WeightDecay = 0, Seed = 5,
        EvalEvery = 100, Bptt = bptt,
    };

    /// <summary>'train text' steps on one process (ranks 0) or thread-ranks: rank 0's parameters and token count.</summary>
    private static (float[][] Parameters, long Tokens) TrainText(TextTrainOptions o, int ranks, int steps)
    {
        (float[][], long) Rank(ThreadCommunicator? comm)
        {
            var t = new TextTrainer(o);
            if (comm != null) t.Dist = new ThreadStepSync(comm, new DistributedDataParallel(t.Model, comm, bucketBytes: 1024));
            for (int i = 0; i < steps; i++) t.TrainStep();
            return ([.. t.Model.Parameters().Select(p => p.ToArray())], t.Tokens);
        }
        return ranks == 0 ? Rank(null) : DistributedSyncTests.OnThreads(ranks, c => Rank(c))[0];
    }

    private static string TextFile(string name, string text)
    {
        string path = Path.Combine(Path.GetTempPath(), $"ddp-text-{Guid.NewGuid():N}-{name}");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void LstmWithBpttAndDropoutOnRanksMatchesOneProcess()
    {
        // a running text: 4 streams of ~100 characters, chunks of 6; 20 steps cross a pass boundary (16 chunks)
        string path = TextFile("t.txt", string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 10)));
        try
        {
            var o = TextOptions(path, "lstm", lines: false, bptt: true, dropout: 0.3, steps: 20);
            var (single, tokens) = TrainText(o, 0, 20);
            var (two, twoTokens) = TrainText(o, 2, 20);
            Assert.True(MaxRelative(single, two) < 1e-5, $"2 ranks differ from one process: {MaxRelative(single, two)}");
            Assert.Equal(tokens, twoTokens); // the global count of tokens (tokens/s is reported over all ranks)
            Assert.True(MaxRelative(single, TrainText(o with { Dropout = 0 }, 0, 20).Parameters) > 1e-3); // dropout acts
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void GptWithDropoutOnRanksMatchesOneProcess()
    {
        string path = TextFile("names.txt", string.Join('\n', Enumerable.Range(0, 60).Select(i => new[] { "anna", "bob", "carla", "dan", "eve" }[i % 5] + (char)('a' + i % 7))));
        try
        {
            var o = TextOptions(path, "gpt", lines: true, bptt: false, dropout: 0.3, steps: 8) with { Context = 8 };
            var single = TrainText(o, 0, 8).Parameters;
            Assert.True(MaxRelative(single, TrainText(o, 2, 8).Parameters) < 1e-5, "2 ranks differ from one process");
            Assert.True(MaxRelative(single, TrainText(o with { Dropout = 0 }, 0, 8).Parameters) > 1e-3);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void RankZerosStopRequestStopsEveryRankAfterTheSameStep()
    {
        string path = TextFile("s.txt", string.Concat(Enumerable.Repeat("abcdefgh ", 40)));
        try
        {
            var o = TextOptions(path, "gpt", lines: false, bptt: false, dropout: 0, steps: 20);
            var steps = DistributedSyncTests.OnThreads(2, comm =>
            {
                var t = new TextTrainer(o);
                t.Dist = new ThreadStepSync(comm, new DistributedDataParallel(t.Model, comm));
                // only rank 0 asks (as --minutes does with its clock), before its fourth step's all-reduce
                t.StopRequest = () => comm.Rank == 0 && t.Step == 3;
                while (t.Step < 20 && !t.StopAgreed) t.TrainStep();
                return t.Step;
            });
            Assert.Equal([4L, 4L], steps);
        }
        finally { File.Delete(path); }
    }
}
