using System.Diagnostics;
using System.Globalization;
using Backprop.Cli.Training;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Cli.Viz;

/// <summary>What the page chose: the dataset, the features, the network and how to train it.</summary>
public sealed record VizConfig
{
    /// <summary>Dataset name (<see cref="VizData.Names"/>).</summary>
    public string Dataset { get; init; } = "spirals";

    /// <summary>Input features (<see cref="VizData.FeatureNames"/>); ignored for images.</summary>
    public string[] Features { get; init; } = ["x", "y"];

    /// <summary>Hidden layer widths.</summary>
    public int[] Hidden { get; init; } = [8, 8];

    /// <summary>Hidden-layer activation.</summary>
    public string Activation { get; init; } = "tanh";

    /// <summary>cross-entropy or mse (against one-hot targets).</summary>
    public string Loss { get; init; } = "cross-entropy";

    /// <summary>Optimizer name (<see cref="OptimizerFactory.Names"/>).</summary>
    public string Optimizer { get; init; } = "adam";

    /// <summary>Learning rate.</summary>
    public double Lr { get; init; } = 0.03;

    /// <summary>Mini-batch size.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>L2 regularization (the optimizer's weight decay).</summary>
    public double L2 { get; init; }

    /// <summary>Noise: Gaussian jitter of the points, as a fraction of the box's half-width.</summary>
    public double Noise { get; init; }

    /// <summary>Fraction of the points used for training (the rest is the test set).</summary>
    public double TrainFraction { get; init; } = 0.7;

    /// <summary>Seed of the data and of the initial weights.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Points to generate (train images to use for digits and MNIST); null for the default.</summary>
    public int? Samples { get; init; }

    /// <summary>A one-line error for a setting out of range, or null.</summary>
    public string? Check()
    {
        if (!VizData.Names.Contains(Dataset)) return $"unknown dataset '{Dataset}'; expected one of: {string.Join(", ", VizData.Names)}.";
        if (Features.Length == 0) return "choose at least one input feature.";
        foreach (var f in Features)
            if (!VizData.FeatureNames.Contains(f)) return $"unknown feature '{f}'; expected one of: {string.Join(", ", VizData.FeatureNames)}.";
        if (Features.Distinct().Count() != Features.Length) return "a feature is chosen twice.";
        if (Hidden.Length > 6) return $"at most 6 hidden layers, got {Hidden.Length}.";
        foreach (var h in Hidden)
            if (h < 1 || h > 256) return $"hidden layer width {h} is outside 1..256.";
        if (!NN.Activation.Names.Contains(Activation)) return $"unknown activation '{Activation}'; expected one of: {string.Join(", ", NN.Activation.Names)}.";
        if (Loss is not ("cross-entropy" or "mse")) return $"unknown loss '{Loss}'; expected cross-entropy or mse.";
        if (!OptimizerFactory.Names.Contains(Optimizer)) return $"unknown optimizer '{Optimizer}'; expected one of: {string.Join(", ", OptimizerFactory.Names)}.";
        if (!(Lr > 0 && Lr <= 10)) return $"learning rate {Lr.ToString(CultureInfo.InvariantCulture)} is outside (0, 10].";
        if (BatchSize < 1 || BatchSize > 4096) return $"batch size {BatchSize} is outside 1..4096.";
        if (!(L2 >= 0 && L2 <= 1)) return $"L2 regularization {L2.ToString(CultureInfo.InvariantCulture)} is outside [0, 1].";
        if (!(Noise >= 0 && Noise <= 1)) return $"noise {Noise.ToString(CultureInfo.InvariantCulture)} is outside [0, 1].";
        if (!(TrainFraction >= 0.1 && TrainFraction <= 0.9)) return $"train fraction {TrainFraction.ToString(CultureInfo.InvariantCulture)} is outside [0.1, 0.9].";
        if (Samples is int s && (s < 10 || s > 60000)) return $"samples {s} is outside 10..60000.";
        return null;
    }
}

/// <summary>
/// One training run of the page: the data, the model, the optimizer and a background thread that
/// trains while playing. Every access to the model goes through one lock, held by the trainer for
/// one step at a time; the page's views work on copies (see <see cref="Copy"/>), so drawing never
/// holds up training for longer than a copy of the parameters.
/// </summary>
public sealed class VizSession : IDisposable
{
    private readonly object _gate = new();
    private readonly ManualResetEventSlim _play = new(false);
    private readonly Thread _thread;
    private volatile bool _disposed;
    private int[] _order = [];
    private int _pos;
    private Tensor[] _params = [];
    private Tensor[] _before = [];
    private Tensor[] _updates = [];
    private int[] _layerW = [], _layerB = []; // per linear layer: index of its weight and its bias in _params
    private long _rateSteps;
    private readonly Stopwatch _rateClock = Stopwatch.StartNew();

    /// <summary>Starts a session with <paramref name="config"/> (paused).</summary>
    public VizSession(VizConfig config)
    {
        Reset(config, null);
        _thread = new Thread(Loop) { IsBackground = true, Name = "backprop viz trainer" };
        _thread.Start();
    }

    /// <summary>The current configuration.</summary>
    public VizConfig Config { get; private set; } = new();

    /// <summary>The uploaded CSV text, when the dataset is "csv".</summary>
    public string? Csv { get; private set; }

    /// <summary>The data.</summary>
    public VizData Data { get; private set; } = null!;

    /// <summary>The model (touch it only under <see cref="Lock"/>).</summary>
    public Sequential Model { get; private set; } = null!;

    /// <summary>The optimizer.</summary>
    public Optimizer Optimizer { get; private set; } = null!;

    /// <summary>The linear layers of the model, in order.</summary>
    public Linear[] Layers { get; private set; } = [];

    /// <summary>Layer sizes from the inputs to the outputs.</summary>
    public int[] Sizes { get; private set; } = [];

    /// <summary>Model inputs of the train points [TrainCount, Inputs].</summary>
    public float[] TrainInputs { get; private set; } = [];

    /// <summary>Model inputs of the test points.</summary>
    public float[] TestInputs { get; private set; } = [];

    /// <summary>Training steps taken since the last reset.</summary>
    public long Step { get; private set; }

    /// <summary>Completed passes over the training set.</summary>
    public int Epoch { get; private set; }

    /// <summary>Loss of the last training batch.</summary>
    public double LastLoss { get; private set; } = double.NaN;

    /// <summary>Changes whenever the model or the configuration does.</summary>
    public long Version { get; private set; }

    /// <summary>Changes on every <see cref="Reset"/> (new data, model or optimizer).</summary>
    public long Generation { get; private set; }

    /// <summary>Whether the trainer thread is training.</summary>
    public bool Playing => _play.IsSet;

    /// <summary>Steps per second over the last second of play (0 when paused).</summary>
    public double StepsPerSecond { get; private set; }

    /// <summary>The lock that guards the model.</summary>
    public object Lock => _gate;

    /// <summary>Number of model inputs.</summary>
    public int Inputs => Sizes[0];

    /// <summary>Number of classes.</summary>
    public int Classes => Sizes[^1];

    /// <summary>Replaces the data, the model and the optimizer; pauses. Throws <see cref="VizException"/> for a bad setting.</summary>
    public void Reset(VizConfig config, string? csv)
    {
        if (config.Check() is string problem) throw new VizException(problem);
        if (config.Dataset == "cities-longitude" && config.Features.Any(f => f.Contains('y')))
            throw new VizException("cities-longitude has one input (longitude): choose among the features x, x2 and sinx.");
        var data = VizData.Build(config, config.Dataset == "csv" ? csv : null);
        _play.Reset();
        lock (_gate)
        {
            Config = config;
            Csv = config.Dataset == "csv" ? csv : null;
            Data = data;
            var features = data.Kind == VizKind.Image ? [] : config.Features;
            int inputs = data.Kind == VizKind.Image ? data.Dims : features.Length;
            TrainInputs = data.Features(data.TrainX, data.TrainCount, features);
            TestInputs = data.Features(data.TestX, data.TestCount, features);
            Sizes = [inputs, .. config.Hidden, data.ClassNames.Length];
            Model = new ModelSpec("mlp", Sizes).Build(config.Activation, new Generator(config.Seed));
            Layers = [.. Model.Layers.OfType<Linear>()];
            var parameters = Model.Parameters().ToArray<Tensor>();
            _params = parameters;
            Optimizer = OptimizerFactory.Create(config.Optimizer, parameters, config.Lr, 0, config.L2);
            _before = [.. parameters.Select(p => Tensor.ZerosLike(p))];
            _updates = [.. parameters.Select(p => Tensor.ZerosLike(p))];
            _layerW = [.. Layers.Select(l => Array.IndexOf(parameters, (Tensor)l.Weight))];
            _layerB = [.. Layers.Select(l => Array.IndexOf(parameters, (Tensor)l.Bias!))];
            Generation++;
            _order = [.. Enumerable.Range(0, data.TrainCount)];
            new Random((int)(config.Seed % int.MaxValue)).Shuffle(_order);
            _pos = 0;
            Step = 0;
            Epoch = 0;
            LastLoss = double.NaN;
            Version++;
        }
    }

    /// <summary>Starts training on the background thread.</summary>
    public void Play()
    {
        _rateSteps = 0;
        _rateClock.Restart();
        _play.Set();
    }

    /// <summary>Stops training after the current step.</summary>
    public void Pause()
    {
        _play.Reset();
        lock (_gate) StepsPerSecond = 0; // waits for the step in progress
    }

    /// <summary>Takes <paramref name="count"/> training steps on the caller's thread (paused sessions).</summary>
    public void StepMany(int count)
    {
        for (int i = 0; i < count; i++) TrainStep();
    }

    /// <summary>The loss of the model's outputs <paramref name="output"/> against labels <paramref name="target"/>.</summary>
    public static Tensor LossOf(string loss, Tensor output, Tensor target, int classes) => loss == "mse"
        ? NN.Loss.Mse(output, Tensor.OneHot(target, classes, output.DType))
        : NN.Loss.CrossEntropy(output, target);

    /// <summary>One optimizer step on the next mini-batch; records each parameter's update.</summary>
    public void TrainStep()
    {
        lock (_gate)
        {
            int b = Math.Min(Config.BatchSize, _order.Length);
            var x = new float[b * Inputs];
            var y = new long[b];
            for (int i = 0; i < b; i++)
            {
                if (_pos == _order.Length)
                {
                    _pos = 0;
                    Epoch++;
                    new Random((int)((Config.Seed + (ulong)Epoch) % int.MaxValue)).Shuffle(_order);
                }
                int r = _order[_pos++];
                Array.Copy(TrainInputs, r * Inputs, x, i * Inputs, Inputs);
                y[i] = Data.TrainY[r];
            }
            Optimizer.ZeroGrad();
            var loss = LossOf(Config.Loss, Model.Forward(Tensor.FromArray(x, b, Inputs)), Tensor.FromArray(y, b), Classes);
            loss.Backward();
            var parameters = _params;
            using (Tensor.NoGrad())
            {
                for (int k = 0; k < parameters.Length; k++) _before[k].CopyFrom(parameters[k]);
                Optimizer.Step();
                for (int k = 0; k < parameters.Length; k++) _updates[k].CopyFrom(parameters[k]).Sub_(_before[k]);
            }
            LastLoss = loss.ItemDouble();
            Step++;
            Version++;
            _rateSteps++;
            if (_rateClock.ElapsedMilliseconds >= 1000)
            {
                StepsPerSecond = _rateSteps * 1000.0 / _rateClock.ElapsedMilliseconds;
                _rateSteps = 0;
                _rateClock.Restart();
            }
        }
    }

    /// <summary>A copy of the model's state: weights, biases, their last gradients and updates (layer by layer).</summary>
    public sealed record ModelCopy(long Step, int Epoch, long Version, double LastLoss, int[] Sizes, StateDict State,
        float[][] Weights, float[][] Biases, float[][] WeightGrads, float[][] BiasGrads, float[][] WeightUpdates, float[][] BiasUpdates, VizConfig Config, VizData Data,
        float[] TrainInputs, float[] TestInputs);

    /// <summary>Copies the model under the lock (the only time a view holds up training).</summary>
    public ModelCopy Copy()
    {
        lock (_gate)
        {
            var state = new StateDict();
            using (Tensor.NoGrad())
                foreach (var (name, p) in Model.NamedParameters()) state.Add(name, p.Detach().Clone());
            int Index(Tensor t) => Array.IndexOf(_params, t);
            float[] Update(Tensor t) => _updates[Index(t)].ToArray();
            return new ModelCopy(Step, Epoch, Version, LastLoss, Sizes, state,
                [.. Layers.Select(l => l.Weight.ToArray())],
                [.. Layers.Select(l => l.Bias!.ToArray())],
                [.. Layers.Select(l => l.Weight.Grad?.ToArray() ?? new float[l.Weight.NumElements])],
                [.. Layers.Select(l => l.Bias!.Grad?.ToArray() ?? new float[l.Bias.NumElements])],
                [.. Layers.Select(l => Update(l.Weight))],
                [.. Layers.Select(l => Update(l.Bias!))],
                Config, Data, TrainInputs, TestInputs);
        }
    }

    /// <summary>
    /// The state a frame of the page needs, in buffers reused from frame to frame (see <see cref="CopyInto"/>):
    /// each linear layer's weight, bias, their last gradients and last updates.
    /// </summary>
    public sealed class Snapshot
    {
        /// <summary>The session generation the buffers were sized for (−1: none yet).</summary>
        public long Generation { get; internal set; } = -1;

        /// <summary>Training steps taken.</summary>
        public long Step { get; internal set; }

        /// <summary>Completed epochs.</summary>
        public int Epoch { get; internal set; }

        /// <summary>The session's <see cref="Version"/> when copied.</summary>
        public long Version { get; internal set; }

        /// <summary>Loss of the last training batch.</summary>
        public double LastLoss { get; internal set; }

        /// <summary>Layer sizes.</summary>
        public int[] Sizes { get; internal set; } = [];

        /// <summary>The configuration.</summary>
        public VizConfig Config { get; internal set; } = new();

        /// <summary>The data.</summary>
        public VizData Data { get; internal set; } = null!;

        /// <summary>Model inputs of the train points.</summary>
        public float[] TrainInputs { get; internal set; } = [];

        /// <summary>Model inputs of the test points.</summary>
        public float[] TestInputs { get; internal set; } = [];

        /// <summary>Per layer: the weight [out, in], row-major.</summary>
        public float[][] Weights { get; internal set; } = [];

        /// <summary>Per layer: the bias.</summary>
        public float[][] Biases { get; internal set; } = [];

        /// <summary>Per layer: the weight's last gradient.</summary>
        public float[][] WeightGrads { get; internal set; } = [];

        /// <summary>Per layer: the bias's last gradient.</summary>
        public float[][] BiasGrads { get; internal set; } = [];

        /// <summary>Per layer: the weight's last update (the optimizer's change).</summary>
        public float[][] WeightUpdates { get; internal set; } = [];

        /// <summary>Per layer: the bias's last update.</summary>
        public float[][] BiasUpdates { get; internal set; } = [];
    }

    /// <summary>
    /// Copies the model's state into <paramref name="s"/> under the lock: no allocation once the
    /// buffers fit this generation, a few microseconds for the page's small networks.
    /// </summary>
    public void CopyInto(Snapshot s)
    {
        lock (_gate)
        {
            if (s.Generation != Generation)
            {
                float[][] Alloc(Func<Linear, int> n) => [.. Layers.Select(l => new float[n(l)])];
                s.Weights = Alloc(l => l.Weight.NumElements);
                s.Biases = Alloc(l => l.Bias!.NumElements);
                s.WeightGrads = Alloc(l => l.Weight.NumElements);
                s.BiasGrads = Alloc(l => l.Bias!.NumElements);
                s.WeightUpdates = Alloc(l => l.Weight.NumElements);
                s.BiasUpdates = Alloc(l => l.Bias!.NumElements);
                s.Sizes = Sizes;
                s.Config = Config;
                s.Data = Data;
                s.TrainInputs = TrainInputs;
                s.TestInputs = TestInputs;
                s.Generation = Generation;
            }
            for (int l = 0; l < Layers.Length; l++)
            {
                var layer = Layers[l];
                layer.Weight.CopyToHost<float>(s.Weights[l]);
                layer.Bias!.CopyToHost<float>(s.Biases[l]);
                if (layer.Weight.Grad is { } gw) gw.CopyToHost<float>(s.WeightGrads[l]); else Array.Clear(s.WeightGrads[l]);
                if (layer.Bias.Grad is { } gb) gb.CopyToHost<float>(s.BiasGrads[l]); else Array.Clear(s.BiasGrads[l]);
                _updates[_layerW[l]].CopyToHost<float>(s.WeightUpdates[l]);
                _updates[_layerB[l]].CopyToHost<float>(s.BiasUpdates[l]);
            }
            s.Step = Step;
            s.Epoch = Epoch;
            s.Version = Version;
            s.LastLoss = LastLoss;
        }
    }

    /// <summary>A model of the copy's architecture holding the copy's weights.</summary>
    public static Sequential Replica(ModelCopy copy)
    {
        var m = new ModelSpec("mlp", copy.Sizes).Build(copy.Config.Activation, new Generator(0));
        m.LoadStateDict(copy.State);
        return m;
    }

    /// <summary>The <c>backprop train</c> command line closest to this configuration (with what it cannot express as a comment).</summary>
    public string TrainCommandLine()
    {
        var c = Config;
        var inv = CultureInfo.InvariantCulture;
        string? dataset = c.Dataset switch
        {
            "cities" or "tangled-border" or "spirals" or "circles" or "xor" or "digits" or "mnist" => c.Dataset,
            _ => null,
        };
        var parts = new List<string> { "backprop", "train", dataset ?? "DATASET" };
        parts.Add($"--model mlp:{string.Join("-", Sizes)}");
        parts.Add($"--activation {c.Activation}");
        parts.Add($"--loss {c.Loss}");
        parts.Add($"--optimizer {c.Optimizer}");
        parts.Add($"--lr {c.Lr.ToString("R", inv)}");
        parts.Add($"--batch-size {c.BatchSize}");
        if (c.L2 > 0) parts.Add($"--weight-decay {c.L2.ToString("R", inv)}");
        parts.Add($"--seed {c.Seed}");
        var notes = new List<string>();
        if (dataset == null) notes.Add($"'backprop train' has no dataset '{c.Dataset}'");
        if (Data.Kind != VizKind.Image && !c.Features.SequenceEqual(Data.Kind == VizKind.Line ? ["x"] : ["x", "y"]))
            notes.Add($"features {string.Join(",", c.Features)} are the page's own (train uses the raw inputs)");
        if (c.Noise > 0) notes.Add($"noise {c.Noise.ToString(inv)} is the page's own");
        if (dataset != null && Data.Kind != VizKind.Image) notes.Add("train generates its own points and split");
        return string.Join(" ", parts) + (notes.Count > 0 ? "   # " + string.Join("; ", notes) : "");
    }

    /// <summary>
    /// Writes a checkpoint (one safetensors file, <see cref="Backprop.IO.Checkpoint"/>) of the model and
    /// the optimizer's state at this step, with the page's configuration under <c>extra.viz</c> and the
    /// equivalent <c>backprop train</c> command line under <c>extra.command</c>.
    /// </summary>
    public void SaveCheckpoint(string path)
    {
        lock (_gate)
        {
            var content = Backprop.IO.CheckpointContent.Capture(Model, Optimizer, null, null, null);
            content.Epoch = Epoch;
            content.Step = Step;
            content.Extra["viz"] = System.Text.Json.JsonSerializer.SerializeToNode(Config, new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web));
            content.Extra["command"] = TrainCommandLine();
            content.Extra["classes"] = new System.Text.Json.Nodes.JsonArray([.. Data.ClassNames.Select(n => (System.Text.Json.Nodes.JsonNode)n)]);
            Backprop.IO.Checkpoint.Save(path, content);
        }
    }

    private void Loop()
    {
        while (!_disposed)
        {
            _play.Wait();
            if (_disposed) return;
            try
            {
                // Checked under the lock, so that no step follows a Pause that has returned.
                lock (_gate)
                    if (_play.IsSet) TrainStep();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _play.Reset();
                lock (_gate) Error = e.Message;
            }
        }
    }

    /// <summary>The message of the last error of the trainer thread (it pauses on an error).</summary>
    public string? Error { get; set; }

    /// <inheritdoc/>
    public void Dispose()
    {
        _disposed = true;
        _play.Set();
        _thread.Join(5000);
    }
}
