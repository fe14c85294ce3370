using System.Text.Json.Nodes;
using Backprop.Data;
using Backprop.IO;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Tests;

public class CheckpointTests
{
    /// <summary>A small training setup with every kind of state a checkpoint must carry.</summary>
    internal sealed class Run
    {
        public readonly Sequential Model;
        public readonly AdamW Optimizer;
        public readonly StepLr Schedule;
        public readonly DataLoader Loader;
        public readonly Generator Noise;   // a generator the loop itself draws from
        public long Steps;

        /// <param name="seed">Initialization seed: a restored run starts from other weights on purpose.</param>
        public Run(ulong seed)
        {
            var g = new Generator(seed);
            Model = new Sequential(new Linear(2, 16, generator: g), new Tanh(), new Dropout(0.3, new Generator(seed + 100)), new Linear(16, 2, generator: g));
            Optimizer = new AdamW(Model.Parameters(), lr: 0.02);
            Schedule = new StepLr(Optimizer, stepSize: 1, gamma: 0.7);
            Loader = new DataLoader(Xor.Generate(samples: 200, seed: 5), batchSize: 16, shuffle: true, seed: 9);
            Noise = new Generator(seed + 200);
        }

        public IEnumerable<KeyValuePair<string, Generator>> Generators => [new("noise", Noise)];

        /// <summary>Trains until <paramref name="totalSteps"/> steps are done, stepping the schedule at each epoch end.</summary>
        public void TrainTo(long totalSteps)
        {
            while (Steps < totalSteps)
            {
                foreach (var (x, y) in Loader)
                {
                    var noisy = x + Tensor.Randn([x.Size(0), 2], Noise) * 0.01;
                    var loss = Loss.CrossEntropy(Model.Forward(noisy), y);
                    Optimizer.ZeroGrad();
                    loss.Backward();
                    Optimizer.Step();
                    if (++Steps == totalSteps) break;
                }
                if (Loader.BatchIndex == 0) Schedule.Step();
            }
        }

        public CheckpointContent Capture()
        {
            var c = CheckpointContent.Capture(Model, Optimizer, Schedule, Loader, Generators);
            c.Step = Steps;
            c.Epoch = Loader.Epoch;
            return c;
        }

        public void Restore(CheckpointContent c)
        {
            c.Restore(Model, Optimizer, Schedule, Loader, Generators);
            Steps = c.Step;
        }

        public Dictionary<string, Tensor> AllTensors() => Capture().Components
            .SelectMany(kv => kv.Value.Tensors.Select(t => (Key: $"{kv.Key}.{t.Key}", t.Value)))
            .ToDictionary(t => t.Key, t => t.Value);
    }

    internal static void AssertBitIdentical(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (k, e) in expected)
        {
            var a = actual[k];
            Assert.True(e.Shape == a.Shape && e.DType == a.DType, $"{k}: {e.Shape} {e.DType} vs {a.Shape} {a.DType}");
            var eb = e.DType == DType.Int64 ? e.ToLongArray() : e.ToDoubleArray().Select(BitConverter.DoubleToInt64Bits).ToArray();
            var ab = a.DType == DType.Int64 ? a.ToLongArray() : a.ToDoubleArray().Select(BitConverter.DoubleToInt64Bits).ToArray();
            int i = -1;
            for (int j = 0; j < eb.Length && i < 0; j++) if (eb[j] != ab[j]) i = j;
            Assert.True(i < 0, $"{k}: element {i} differs: {(i >= 0 ? e.ToDoubleArray()[i] : 0)} vs {(i >= 0 ? a.ToDoubleArray()[i] : 0)}");
        }
    }

    private static string TempDir() => Directory.CreateTempSubdirectory("bp-ckpt").FullName;

    [Theory]
    [InlineData(13, 30)]   // mid-epoch (13 batches per epoch): loader position, dropout and noise generators
    [InlineData(26, 20)]   // at an epoch boundary, after a schedule step
    public void SaveKillResumeIsBitIdenticalToOneRun(int first, int more)
    {
        var dir = TempDir();
        try
        {
            var straight = new Run(1);
            straight.TrainTo(first + more);

            var a = new Run(1);
            a.TrainTo(first);
            string path = Path.Combine(dir, "a.safetensors");
            Checkpoint.Save(path, a.Capture());

            var b = new Run(77);              // other weights, generators and position: all must come from the file
            b.Restore(Checkpoint.Load(path));
            Assert.Equal(first, b.Steps);
            b.TrainTo(first + more);
            AssertBitIdentical(straight.AllTensors(), b.AllTensors());
            Assert.Equal(straight.Noise.GetState(), b.Noise.GetState());
            Assert.Equal(straight.Schedule.LastEpoch, b.Schedule.LastEpoch);
            Assert.Equal(straight.Optimizer.Lr, b.Optimizer.Lr);
            Assert.Equal((straight.Loader.Epoch, straight.Loader.BatchIndex), (b.Loader.Epoch, b.Loader.BatchIndex));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void TheFileIsSafetensorsWithPrefixedNamesAndJsonMetadata()
    {
        var run = new Run(1);
        run.TrainTo(5);
        var c = run.Capture();
        c.Extra["note"] = "hello";
        var ms = new MemoryStream();
        Checkpoint.Write(ms, c);
        ms.Position = 0;
        var raw = SafeTensors.Read(ms, "mem");
        Assert.Contains("model.0.weight", raw.Tensors.Keys);
        Assert.Contains("optim.state.0.exp_avg", raw.Tensors.Keys);
        Assert.Equal(Checkpoint.Format, raw.Metadata["format"]);
        Assert.Equal("1", raw.Metadata["format_version"]);
        var meta = JsonNode.Parse(raw.Metadata["checkpoint"])!;
        Assert.Equal(5, (long)meta["step"]!);
        Assert.Equal("hello", (string)meta["extra"]!["note"]!);
        Assert.Equal("AdamW", (string)meta["components"]!["optim"]!["meta"]!["type"]!);
        Assert.Equal(4, meta["rng"]!["model/2"]!.AsArray().Count);       // the Dropout's generator
        Assert.Equal(4, meta["rng"]!["noise"]!.AsArray().Count);

        ms.Position = 0;
        var back = Checkpoint.Read(ms, "mem");
        Assert.Equal(c.Step, back.Step);
        Assert.Equal(c.RngStates["noise"], back.RngStates["noise"]);
        Assert.Equal("hello", (string)back.Extra["note"]!);
        AssertBitIdentical(c.Components["model"].Tensors.ToDictionary(), back.Components["model"].Tensors.ToDictionary());
    }

    [Fact]
    public void CaptureIsASnapshot()
    {
        var run = new Run(1);
        var c = run.Capture();
        var before = c.Components["model"]["0.weight"].ToArray();
        run.TrainTo(3);
        Assert.Equal(before, c.Components["model"]["0.weight"].ToArray());
    }

    [Fact]
    public void MismatchesAreAllListedAndNothingIsModified()
    {
        var run = new Run(1);
        run.TrainTo(20);
        var c = run.Capture();

        var g = new Generator(3);
        var other = new Sequential(new Linear(2, 8, generator: g), new Tanh(), new Linear(8, 2, generator: g), new Linear(2, 2, generator: g));
        var sgd = new Sgd(other.Parameters(), lr: 0.1);
        var loader = new DataLoader(Xor.Generate(samples: 200, seed: 5), batchSize: 32, shuffle: true, seed: 9);
        var gen = new Generator(4);
        var weightsBefore = other.Parameters().Select(p => p.ToArray()).ToList();
        var genBefore = gen.GetState();

        var e = Assert.Throws<CheckpointMismatchException>(() =>
            c.Restore(other, sgd, loader: loader, generators: [new("noise", gen), new("absent", new Generator(1))]));
        Assert.Contains("'model.0.weight': expected [8, 2] float32, found [16, 2] float32", e.Message);
        Assert.Contains("missing key 'model.2.weight' (expected [2, 8] float32)", e.Message);
        Assert.Contains("'model.3.weight': expected [2, 2] float32, found [2, 16] float32", e.Message);
        Assert.Contains("the checkpoint holds the state of optimizer AdamW, not Sgd", e.Message);
        Assert.Contains("'loader': saved with batch_size = 16, this loader has batch_size = 32", e.Message);
        Assert.Contains("no generator state named 'absent' (have: model/2, noise)", e.Message);
        Assert.StartsWith("checkpoint: does not fit what it is restored into, nothing was changed: ", e.Message);
        Assert.True(e.Problems.Count >= 7);
        Assert.Equal(weightsBefore, other.Parameters().Select(p => p.ToArray()).ToList());
        Assert.Equal(genBefore, gen.GetState());
        Assert.Equal((0, 0), (loader.Epoch, loader.BatchIndex));

        // A model with fewer layers: the checkpoint's extra tensors are unexpected keys.
        var small = new Sequential(new Linear(2, 16, generator: g), new Tanh(), new Dropout(0.3, new Generator(1)));
        var e1 = Assert.Throws<CheckpointMismatchException>(() => c.Restore(small));
        Assert.Equal(["unexpected key 'model.3.weight' ([2, 16] float32)", "unexpected key 'model.3.bias' ([2] float32)"], e1.Problems);

        // Right shapes, wrong dtype.
        var run64 = new Run(1);
        run64.Model.To(DType.Float64);
        var e2 = Assert.Throws<CheckpointMismatchException>(() => c.Restore(run64.Model));
        Assert.Contains("'model.0.weight': expected [16, 2] float64, found [16, 2] float32", e2.Message);
    }

    [Fact]
    public void ALateRefusalRollsBackWhatWasAlreadyRestored()
    {
        var run = new Run(1);
        run.TrainTo(20);
        var c = run.Capture();
        // A loader position that only the loader itself rejects (past the end of an epoch).
        c.Components["loader"].Meta["batch_index"] = 999;
        var fresh = new Run(2);
        var optBefore = fresh.Optimizer.StateDict();
        var e = Assert.Throws<CheckpointMismatchException>(() => fresh.Restore(c));
        Assert.Contains("batch 999 is invalid", e.Message);
        Assert.Equal(optBefore.Count, fresh.Optimizer.StateDict().Count);   // the optimizer's state was put back
        Assert.Equal(0, fresh.Optimizer.StepCount(0));
    }

    [Fact]
    public void DuplicateKeysInTheMetadataJsonAreAFormatError()
    {
        // found by the fuzzer: JsonObject throws ArgumentException on a repeated key when it is first indexed
        var ms = new MemoryStream();
        SafeTensors.Write(ms, [], new Dictionary<string, string>
        {
            ["format"] = "backprop-checkpoint",
            ["format_version"] = "1",
            ["checkpoint"] = "{\"epoch\": 0, \"epoch\": 1, \"step\": 0, \"components\": {}}",
        });
        ms.Position = 0;
        var ex = Assert.Throws<CheckpointFormatException>(() => Checkpoint.Read(ms, "dup.safetensors"));
        Assert.Contains("not valid JSON", ex.Message);
        Assert.Contains("dup.safetensors", ex.Message);
    }

    [Fact]
    public void TruncatedOrCorruptCheckpointsAreClearErrors()
    {
        var run = new Run(1);
        run.TrainTo(3);
        var ms = new MemoryStream();
        Checkpoint.Write(ms, run.Capture());
        var full = ms.ToArray();
        for (int len = 0; len < full.Length; len += 7)
        {
            var e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.Read(new MemoryStream(full[..len]), "ck.safetensors"));
            Assert.StartsWith("ck.safetensors: ", e.Message);
        }

        // A plain safetensors file is not a checkpoint.
        var plain = new MemoryStream();
        SafeTensors.Write(plain, [new("x", Tensor.Zeros(1))]);
        plain.Position = 0;
        Assert.Contains("not a Backprop checkpoint", Assert.Throws<CheckpointFormatException>(() => Checkpoint.Read(plain, "p")).Message);

        // A newer format version.
        var c = run.Capture();
        var bytes = Rewrite(c, meta => meta["format_version"] = "2");
        Assert.Contains("format version 2", Assert.Throws<CheckpointFormatException>(() => Checkpoint.Read(new MemoryStream(bytes), "v2")).Message);
        // A tensor that belongs to no component, and a component with a missing tensor.
        var f = SafeTensors.Read(new MemoryStream(ToArray(c)), "c");
        var renamed = f.Tensors.Select(kv => new KeyValuePair<string, Tensor>(kv.Key == "model.0.bias" ? "modell.0.bias" : kv.Key, kv.Value)).ToList();
        var s2 = new MemoryStream();
        SafeTensors.Write(s2, renamed, f.Metadata);
        var e3 = Assert.Throws<CheckpointFormatException>(() => Checkpoint.Read(new MemoryStream(s2.ToArray()), "c"));
        Assert.Contains("tensor 'modell.0.bias' belongs to no component", e3.Message);
        Assert.Equal("modell.0.bias", e3.Key);
    }

    private static byte[] ToArray(CheckpointContent c)
    {
        var ms = new MemoryStream();
        Checkpoint.Write(ms, c);
        return ms.ToArray();
    }

    private static byte[] Rewrite(CheckpointContent c, Action<Dictionary<string, string>> edit)
    {
        var f = SafeTensors.Read(new MemoryStream(ToArray(c)), "c");
        var meta = f.Metadata.ToDictionary();
        edit(meta);
        var ms = new MemoryStream();
        SafeTensors.Write(ms, f.Tensors, meta);
        return ms.ToArray();
    }

    [Fact]
    public void RequireFiniteKeepsTheLastGoodCheckpoint()
    {
        var dir = TempDir();
        try
        {
            string path = Path.Combine(dir, "ck.safetensors");
            var run = new Run(1);
            run.TrainTo(2);
            Checkpoint.Save(path, run.Capture(), requireFinite: true);
            using (Tensor.NoGrad()) run.Model.Parameters().First().Fill_(float.NaN);
            var bad = run.Capture();
            Assert.Equal("model.0.weight", Checkpoint.FindNonFinite(bad));
            var e = Assert.Throws<InvalidOperationException>(() => Checkpoint.Save(path, bad, requireFinite: true));
            Assert.Contains("'model.0.weight' holds NaN", e.Message);
            Assert.Null(Checkpoint.FindNonFinite(Checkpoint.Load(path)));
            Assert.Equal(2, Checkpoint.Load(path).Step);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void LoadingAMissingCheckpointMentionsAnInterruptedFirstSave()
    {
        var dir = TempDir();
        try
        {
            string path = Path.Combine(dir, "ck.safetensors");
            Assert.Throws<FileNotFoundException>(() => Checkpoint.Load(path));
            File.WriteAllBytes(path + AtomicFile.TempMarker + $"1-{AtomicFile.LocalHostId}-0123456789ab", [1, 2, 3]);
            var e = Assert.Throws<FileNotFoundException>(() => Checkpoint.Load(path));
            Assert.Contains("incomplete temporary file of an interrupted save", e.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
