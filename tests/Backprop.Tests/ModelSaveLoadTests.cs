using System.Text.Json;
using Backprop.Data;
using Backprop.IO;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>model.Save/Load (weights as safetensors, PyTorch's names) and the one-call Checkpoint.Save/Load.</summary>
public sealed class ModelSaveLoadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("backprop-saveload-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>The Backprop twin of the PyTorch model in tools/safetensors_fixture.py.</summary>
    private static Sequential TorchMlp(ulong seed = 1)
    {
        var g = new Generator(seed);
        return new Sequential(
            new Linear(6, 16, generator: g), new Relu(),
            new Linear(16, 12, generator: g), new Tanh(),
            new Linear(12, 3, generator: g));
    }

    private static float[] Output(Module model, Tensor x)
    {
        using (Tensor.NoGrad()) return model.Forward(x).ToArray();
    }

    [Fact]
    public void WeightsWrittenByPyTorchGivePyTorchsOutputs()
    {
        var doc = JsonDocument.Parse(File.ReadAllBytes(SafeTensorsTests.FixturePath("torch_mlp.json"))).RootElement;
        float[] Floats(string key) => [.. doc.GetProperty(key).EnumerateArray().Select(e => (float)e.GetDouble())];
        int[] Shape(string key) => [.. doc.GetProperty(key).EnumerateArray().Select(e => e.GetInt32())];
        var x = Tensor.FromArray(Floats("input"), Shape("input_shape"));
        var expected = Floats("output");

        var model = TorchMlp().Load(SafeTensorsTests.FixturePath("torch_mlp.safetensors"));
        Assert.Equal(["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"], model.StateDict().Keys);
        var y = model.Forward(x);
        Assert.Equal(Shape("output_shape"), y.Shape.ToArray());
        var actual = Output(model, x);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5, $"output {i}: {actual[i]} vs PyTorch's {expected[i]}");
        // Not by chance: a freshly initialized model is far off, and the file lists the tensors in another
        // order than the model (by dtype, then name, as PyTorch's writer does), so names are what match them.
        Assert.True(Output(TorchMlp(), x).Zip(expected).Max(p => Math.Abs(p.First - p.Second)) > 0.01);
        Assert.NotEqual(model.StateDict().Keys, SafeTensors.Load(SafeTensorsTests.FixturePath("torch_mlp.safetensors")).Tensors.Keys);
    }

    [Fact]
    public void SaveThenLoadRestoresTheExactWeightsUnderPyTorchsNames()
    {
        var a = TorchMlp(seed: 1);
        var b = TorchMlp(seed: 2);
        var x = Tensor.Randn([4, 6], new Generator(3));
        Assert.NotEqual(Output(a, x), Output(b, x));
        string path = PathOf("mlp.safetensors");
        a.Save(path);
        var file = SafeTensors.Load(path);
        Assert.Equal(["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"], file.Tensors.Keys);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Same(b, b.Load(path));
        Assert.Equal(Output(a, x), Output(b, x)); // bit-identical
        foreach (var (name, t) in a.StateDict().Tensors) Assert.Equal(t.ToArray(), b.StateDict()[name].ToArray());
        // The copy is a copy: training a does not move b.
        using (Tensor.NoGrad()) a.Parameters().First().Fill_(0);
        Assert.NotEqual(a.Parameters().First().ToArray(), b.Parameters().First().ToArray());
    }

    [Fact]
    public void WeightsThatDoNotFitAreAllListedAndNothingChanges()
    {
        string path = PathOf("mlp.safetensors");
        TorchMlp().Save(path);
        var other = new Sequential(new Linear(6, 16), new Relu(), new Linear(16, 10), new Tanh(), new Linear(10, 3), new Linear(3, 3));
        var before = other.StateDict().Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        var ex = Assert.Throws<CheckpointMismatchException>(() => other.Load(path));
        Assert.Equal(path, ex.FilePath);
        Assert.Contains("'2.weight': the model has [10, 16] float32, the file [12, 16] float32", ex.Problems);
        Assert.Contains("missing '5.weight' (the model has [3, 3] float32)", ex.Problems);
        Assert.Equal(5, ex.Problems.Count); // the shapes of 2.weight, 2.bias and 4.weight; 5.weight and 5.bias missing
        foreach (var (name, t) in other.StateDict().Tensors) Assert.Equal(before[name], t.ToArray());

        // strict: false tolerates missing and extra names, never a wrong shape.
        var prefix = new Sequential(new Linear(6, 16), new Relu());
        prefix.Load(path, strict: false);
        Assert.Equal(SafeTensors.Load(path).Tensors["0.weight"].ToArray(), prefix.StateDict()["0.weight"].ToArray());
        Assert.Contains("unexpected '2.weight' ([12, 16] float32), which the model does not have",
            Assert.Throws<CheckpointMismatchException>(() => prefix.Load(path)).Problems);
        Assert.Throws<CheckpointMismatchException>(() => other.Load(path, strict: false));
        // Another dtype, names from elsewhere, no file, not a safetensors file.
        var dbl = TorchMlp().To(DType.Float64);
        Assert.Contains("'0.weight': the model has [16, 6] float64, the file [16, 6] float32", Assert.Throws<CheckpointMismatchException>(() => dbl.Load(path)).Problems);
        var renamed = new Sequential(new Sequential(new Linear(6, 16)));
        Assert.Contains(Assert.Throws<CheckpointMismatchException>(() => renamed.Load(path)).Problems,
            p => p.StartsWith("no name matches: the model's are 0.0.weight, 0.0.bias, the file's 0.weight, 0.bias, 2.weight, 2.bias, ...", StringComparison.Ordinal));
        Assert.Throws<FileNotFoundException>(() => TorchMlp().Load(PathOf("missing.safetensors")));
        File.WriteAllText(PathOf("junk.safetensors"), "not a tensor file");
        Assert.Throws<CheckpointFormatException>(() => TorchMlp().Load(PathOf("junk.safetensors")));
    }

    private sealed class Setup
    {
        public readonly Sequential Model;
        public readonly Adam Optimizer;
        public readonly StepLr Schedule;
        public readonly DataLoader Loader;

        public Setup(ulong seed)
        {
            var g = new Generator(seed);
            Model = new Sequential(new Linear(2, 8, generator: g), new Tanh(), new Dropout(0.2, new Generator(seed + 1)), new Linear(8, 2, generator: g));
            Optimizer = new Adam(Model.Parameters(), lr: 0.01);
            Schedule = new StepLr(Optimizer, stepSize: 1, gamma: 0.8);
            Loader = new DataLoader(Xor.Generate(samples: 60, seed: 4), batchSize: 8, shuffle: true, seed: 2);
        }

        public void Train(int steps)
        {
            while (steps > 0)
            {
                foreach (var (x, y) in Loader)
                {
                    var loss = Loss.CrossEntropy(Model.Forward(x), y);
                    Optimizer.ZeroGrad();
                    loss.Backward();
                    Optimizer.Step();
                    if (--steps == 0) break;
                }
                if (Loader.BatchIndex == 0) Schedule.Step();
            }
        }

        public float[][] Weights() => [.. Model.Parameters().Select(p => p.ToArray())];
    }

    [Fact]
    public void OneCallCheckpointResumesTrainingExactly()
    {
        var straight = new Setup(1);
        straight.Train(20);

        var first = new Setup(1);
        first.Train(12);                                     // epoch 1, batch 4 of 8
        string path = PathOf("run.ckpt");
        Checkpoint.Save(path, first.Model, first.Optimizer, first.Schedule, first.Loader, step: 12);

        var resumed = new Setup(99);                         // other weights, fresh optimizer, loader at epoch 0
        var content = Checkpoint.Load(path, resumed.Model, resumed.Optimizer, resumed.Schedule, resumed.Loader);
        Assert.Equal((1, 12L), (content.Epoch, content.Step)); // the epoch defaults to the loader's
        Assert.Equal((1, 4), (resumed.Loader.Epoch, resumed.Loader.BatchIndex));
        resumed.Train(8);
        Assert.Equal(straight.Weights(), resumed.Weights());  // bit-identical to the uninterrupted run

        // The weights alone load from the checkpoint too; a checkpoint that does not fit changes nothing.
        Assert.Equal(first.Weights(), new Setup(5).Model.Load(path).Parameters().Select(p => p.ToArray()).ToArray());
        var wrong = new Setup(7);
        var sgd = new Sgd(wrong.Model.Parameters(), lr: 0.1);
        var before = wrong.Weights();
        var ex = Assert.Throws<CheckpointMismatchException>(() => Checkpoint.Load(path, wrong.Model, sgd));
        Assert.Contains("the checkpoint holds the state of optimizer Adam, not Sgd", ex.Message);
        Assert.Equal(before, wrong.Weights());
        // Model only, with an explicit epoch.
        Checkpoint.Save(path, first.Model, epoch: 3);
        Assert.Equal(3, Checkpoint.Load(path, new Setup(8).Model).Epoch);
        Assert.Throws<CheckpointMismatchException>(() => Checkpoint.Load(path, new Setup(8).Model, new Setup(8).Optimizer));
    }
}
