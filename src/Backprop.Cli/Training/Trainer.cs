using System.Diagnostics;
using System.Text.Json.Nodes;
using Backprop.Autograd;
using Backprop.Data;
using Backprop.IO;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Cli.Training;

/// <summary>What one epoch produced.</summary>
public sealed record EpochResult(int Epoch, double TrainLoss, double TestLoss, double TestAccuracy, double TrainSeconds, double SamplesPerSecond);

/// <summary>
/// Mini-batch training of a classifier on a <see cref="TensorDataset"/>, with evaluation after each
/// epoch, checkpoints (<see cref="SaveCheckpoint"/>) and exact resumption (<see cref="Restore"/>).
/// </summary>
public sealed class Trainer
{
    private readonly Generator _generator;
    // The epoch in progress, so that an epoch resumed from a mid-epoch checkpoint reports the same mean loss.
    private double _epochLossSum;
    private int _epochBatches, _epochSamples;

    /// <summary>The options this trainer was built from.</summary>
    public TrainOptions Options { get; }
    /// <summary>The model.</summary>
    public Sequential Model { get; }
    /// <summary>The optimizer.</summary>
    public Optimizer Optimizer { get; }
    /// <summary>Training split.</summary>
    public TensorDataset Train { get; }
    /// <summary>Test split.</summary>
    public TensorDataset Test { get; }
    /// <summary>The loader over the training split (one instance for the whole run, so each epoch shuffles anew).</summary>
    public DataLoader Loader { get; }
    /// <summary>Number of classes.</summary>
    public int Classes { get; }
    /// <summary>Parsed model spec.</summary>
    public ModelSpec Spec { get; }
    /// <summary>Training steps (optimizer updates) done, including those before a resume.</summary>
    public long Step { get; private set; }
    /// <summary>Epochs completed, including those before a resume.</summary>
    public int EpochsDone => Loader.Epoch;
    /// <summary>The results of the completed epochs.</summary>
    public List<EpochResult> History { get; } = [];
    /// <summary>Where the last checkpoint written or resumed is, for messages ("ck.safetensors (epoch 2, step 64)"), or null before any.</summary>
    public string? LastGoodCheckpoint { get; private set; }
    /// <summary>How many checkpoints <see cref="SaveCheckpoint"/> keeps: PATH (the newest), PATH.1, ..., PATH.(Keep-1).</summary>
    public int Keep { get; set; } = 2;
    /// <summary>The path checkpoints are saved to (set by the first save), where a diverged run looks for one to advise.</summary>
    public string? SavePath { get; private set; }
    /// <summary>The checkpoint this run was resumed from, another candidate to advise.</summary>
    public string? ResumedFrom { get; private set; }

    // The lowest training loss (one step's) seen in the run, resumed runs included; the last one;
    // and where the current divergence began: the first of an unbroken series of steps whose loss
    // was not finite or more than 10 times that lowest one, or null.
    private double _minLoss = double.PositiveInfinity, _lastLoss = double.NaN;
    private (long Step, double Loss)? _onset;

    /// <summary>A step's loss more than this many times the lowest one so far marks the start of a divergence.</summary>
    public const double DivergenceFactor = 10;

    /// <summary>Set (from a signal handler) to end <see cref="TrainEpoch"/> after the step in progress.</summary>
    public bool StopRequested { get => Volatile.Read(ref _stop); set => Volatile.Write(ref _stop, value); }
    private bool _stop;

    // Dropout masks from (seed, step, the sample's index in the global batch), so that a distributed
    // run draws the same masks as one process (docs/distributed.md); null without dropout layers.
    private readonly SampleMasks? _masks;

    /// <summary>Data-parallel training (--distributed), or null: one process.</summary>
    internal IStepSync? Sync { get; set; }

    /// <summary>Loads the data and builds the model and optimizer; throws <see cref="CliException"/> on bad options.</summary>
    public Trainer(TrainOptions o)
    {
        Options = o;
        var entry = DatasetCatalog.Find(o.Dataset);
        (Train, Test) = entry.Load(o.DataDir, o.Limit);
        Spec = ModelSpec.Parse(o.Model);
        // Both sets, before the first step: a test set of another image size would otherwise fail
        // only after a full epoch of training, with a stack trace.
        CheckFeatures("training", Train);
        CheckFeatures("test", Test);
        if (entry.Standardize) (Train, Test) = Standardized(Train, Test);
        Classes = (int)Math.Max(Train.Targets.Max().ItemDouble(), Test.Targets.Max().ItemDouble()) + 1;
        if (Spec.Sizes[^1] != Classes)
            throw new CliException($"--model {Spec}: the output size {Spec.Sizes[^1]} does not match the {Classes} classes of {o.Dataset}.");
        if (o.Loss is not ("cross-entropy" or "mse"))
            throw new CliException($"unknown loss '{o.Loss}'; expected cross-entropy or mse.");
        MemoryEstimate.Check(Spec, o.Optimizer, o.BatchSize);
        _generator = new Generator(o.Seed);
        try
        {
            NN.Activation.Create(o.Activation); // validates the name even for a model without hidden layers
            Model = Spec.Build(o.Activation, _generator);
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message);
        }
        try
        {
            Optimizer = OptimizerFactory.Create(o.Optimizer, Model.Parameters(), o.Lr, o.Momentum, o.WeightDecay);
        }
        catch (ArgumentException e) when (e is not ShapeException)
        {
            throw new CliException($"--optimizer {o.Optimizer}: {e.Message}");
        }
        _masks = new SampleMasks((ulong)o.Seed);
        if (_masks.Attach(Model) == 0) _masks = null;
        // The trainer reads each batch only within its step, so batch buffers can be recycled.
        Loader = new DataLoader(o.Augment ? Augmented(Train, o) : Train, o.BatchSize, shuffle: true, seed: o.Seed, recycleBatches: true);
    }

    /// <summary>
    /// The training images with seeded augmentation (each sample's draw from the seed, the epoch and its
    /// index, so a resumed run sees the same images): shifts of up to 2 pixels, and horizontal flips on
    /// fashion-mnist (clothes, unlike digits, keep their class when mirrored).
    /// </summary>
    private static AugmentedDataset Augmented(TensorDataset train, TrainOptions o)
    {
        int features = train.Inputs.NumElements / Math.Max(1, train.Count);
        int side = (int)Math.Round(Math.Sqrt(features));
        if (side * side != features || side < 8)
            throw new CliException($"--augment: {o.Dataset} is not a dataset of square images (its samples have {features} features).");
        double shift = 2.0 / side;
        ImageTransform[] transforms = o.Dataset == "fashion-mnist"
            ? [new RandomHorizontalFlip(), new RandomTranslate(shift, shift)]
            : [new RandomTranslate(shift, shift)];
        return new AugmentedDataset(train, o.Seed, transforms, (1, side, side));
    }

    /// <summary>A one-line error naming the set, the features the model expects and those found, unless they agree.</summary>
    private void CheckFeatures(string set, TensorDataset data)
    {
        var x = data.Inputs;
        long found = 1;
        for (int d = 1; d < x.Rank; d++) found *= x.Size(d);
        if (found == Spec.Sizes[0]) return;
        string dims = x.Rank > 2 ? string.Join("x", Enumerable.Range(1, x.Rank - 1).Select(d => x.Size(d))) + " = " : "";
        throw new CliException($"{Options.Dataset}: the {set} set has {dims}{found} features per sample; the model {Spec} expects {Spec.Sizes[0]} (its input size).");
    }

    /// <summary>Both splits with inputs shifted and scaled by the training split's per-feature mean and standard deviation.</summary>
    private static (TensorDataset, TensorDataset) Standardized(TensorDataset train, TensorDataset test)
    {
        var (mean, std) = InputStatistics(train);
        return (new TensorDataset((train.Inputs - mean) / std, train.Targets) { ClassNames = train.ClassNames },
            new TensorDataset((test.Inputs - mean) / std, test.Targets) { ClassNames = test.ClassNames });
    }

    /// <summary>The per-feature mean and standard deviation (plus 1e-8) of a training split, as standardized datasets use them.</summary>
    internal static (Tensor Mean, Tensor Std) InputStatistics(TensorDataset train) =>
        (train.Inputs.Mean(0, keepDim: true), train.Inputs.Var(0, keepDim: true).Sqrt() + 1e-8);

    private Tensor LossOf(Tensor output, Tensor target) => Options.Loss == "mse"
        ? NN.Loss.Mse(output, Tensor.OneHot(target, Classes, output.DType))
        : NN.Loss.CrossEntropy(output, target);

    /// <summary>
    /// Trains from the loader's position to the end of the epoch; <paramref name="onBatch"/> is told,
    /// after each step, the number of batches of this epoch done and their mean loss. Stops with a
    /// <see cref="TrainingDivergedException"/> before updating when the loss is not finite.
    /// </summary>
    public (double MeanLoss, double Seconds, int Samples) TrainEpoch(Action<int, double>? onBatch = null)
    {
        Model.Train();
        if (Loader.BatchIndex == 0) (_epochLossSum, _epochBatches, _epochSamples) = (0, 0, 0);
        int samples = 0;
        var sw = Stopwatch.StartNew();
        foreach (var (x, y) in Loader)
        {
            double l;
            try
            {
                // Everything the step computes goes back to the buffer pool at the end of the step.
                using var step = Tensor.Scope();
                if (_masks != null) (_masks.Step, _masks.FirstSample) = (Step, Loader.LastShardStart);
                var loss = LossOf(Model.Forward(x), y);
                // Checked before the update, so a diverged step never reaches the parameters.
                l = loss.ItemDouble();
                if (Sync != null) l = Sync.AfterForward(l, x.Size(0), StopRequested);
                Track(l);
                if (!double.IsFinite(l))
                    throw Diverged($"the training loss became {l}");
                Optimizer.ZeroGrad();
                loss.Backward();
                Sync?.BeforeUpdate();
                if (Options.MinLrFraction < 1) Optimizer.Lr = LrAt(Step + 1);
                Optimizer.Step();
            }
            catch (AnomalyException e)
            {
                throw Diverged($"anomaly detected ({e.Message.TrimEnd('.')})", e);
            }
            Step++;
            _epochLossSum += l;
            _epochBatches++;
            _epochSamples += Sync?.GlobalSamples ?? x.Size(0);
            samples += Sync?.GlobalSamples ?? x.Size(0);
            onBatch?.Invoke(_epochBatches, _epochLossSum / _epochBatches);
            if (Sync?.StopAgreed ?? StopRequested) break;
        }
        sw.Stop();
        return (_epochLossSum / Math.Max(_epochBatches, 1), sw.Elapsed.TotalSeconds, samples);
    }

    /// <summary>
    /// The learning rate of step <paramref name="step"/> (1-based) under --min-lr: cosine from Lr at the
    /// first step down to Lr x MinLrFraction at the last step of the last epoch (a function of the step
    /// alone, so a resumed run continues the same schedule).
    /// </summary>
    internal double LrAt(long step)
    {
        long total = Math.Max(1, (long)Options.Epochs * Loader.Count);
        double t = total <= 1 ? 1 : Math.Clamp((double)(step - 1) / (total - 1), 0, 1);
        return Options.Lr * (Options.MinLrFraction + (1 - Options.MinLrFraction) * 0.5 * (1 + Math.Cos(Math.PI * t)));
    }

    /// <summary>Where training is, for messages: "epoch 2, step 57 (batch 25 of 32)".</summary>
    private string Position()
    {
        // The loader has moved past the batch being processed; name that batch.
        int epoch = Loader.BatchIndex == 0 ? Loader.Epoch : Loader.Epoch + 1;
        int batch = Loader.BatchIndex == 0 ? Loader.Count : Loader.BatchIndex;
        return $"epoch {epoch}, step {Step + 1} (batch {batch} of {Loader.Count})";
    }

    /// <summary>Follows the training loss for <see cref="Advice"/>: the lowest so far, and where a divergence began.</summary>
    private void Track(double loss)
    {
        _lastLoss = loss;
        if (!double.IsFinite(loss) || loss > DivergenceFactor * _minLoss)
            _onset ??= (Step + 1, loss);
        else
        {
            _onset = null;
            _minLoss = Math.Min(_minLoss, loss);
        }
    }

    private TrainingDivergedException Diverged(string what, Exception? inner = null) =>
        new($"{what} at {Position()}; training stopped before that update; {Advice()}.", inner);

    private static string F(double v) => v.ToString("G4", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Where the divergence began, and the newest kept checkpoint from before it with a learning rate
    /// ten times lower, or that none is left.
    /// </summary>
    internal string Advice()
    {
        var (onset, loss) = _onset ?? (Step + 1, double.NaN);
        string began = _onset == null ? "" : double.IsFinite(loss)
            ? $"divergence began at step {onset} (training loss {F(loss)}, more than {DivergenceFactor:G} times the lowest so far, {F(_minLoss)}); "
            : $"divergence began at step {onset} (training loss {F(loss)}); ";
        string lr = F(Optimizer.Lr / 10);
        // A checkpoint at step s holds the parameters that computed the loss of step s + 1.
        var good = GoodCheckpoint(onset - 1);
        return good != null
            ? $"{began}the newest kept checkpoint from before it is {good}; continue with --resume {good.Value.Path} --lr {lr} (now {F(Optimizer.Lr)})"
            : $"{began}no checkpoint from before it is left{(SavePath == null ? " (no --save)" : $" (--keep {Keep} kept)")}; start again with --lr {lr} (now {F(Optimizer.Lr)})";
    }

    /// <summary>A kept checkpoint as messages name it.</summary>
    internal readonly record struct KeptCheckpoint(string Path, int Epoch, long Step, double Loss)
    {
        public override string ToString() =>
            $"{Path} (epoch {Epoch}, step {Step}{(double.IsFinite(Loss) ? $", training loss {F(Loss)}" : "")})";
    }

    /// <summary>The path of the <paramref name="i"/>-th newest kept checkpoint: PATH, PATH.1, PATH.2, ...</summary>
    public static string KeptPath(string path, int i) => i == 0 ? path : $"{path}.{i.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>
    /// The newest checkpoint of this run (the kept ones at <see cref="SavePath"/>, and the one resumed
    /// from) whose step is below <paramref name="before"/>, that holds only finite values and whose
    /// recorded options are this run's (learning rate, momentum, weight decay and epochs aside).
    /// </summary>
    private KeptCheckpoint? GoodCheckpoint(long before)
    {
        var paths = new List<string>();
        if (SavePath != null)
            for (int i = 0; i < Keep; i++) paths.Add(KeptPath(SavePath, i));
        if (ResumedFrom != null) paths.Add(ResumedFrom);
        KeptCheckpoint? best = null;
        foreach (var path in paths)
        {
            try
            {
                if (!File.Exists(path)) continue;
                var c = Checkpoint.Load(path);
                if (c.Step > before || (best is { } b && b.Step >= c.Step) || !SameRun(c) || Checkpoint.FindNonFinite(c) != null) continue;
                double loss = c.Extra["trainer"]?["loss"] is JsonValue lv && lv.TryGetValue<double>(out double d) ? d : double.NaN;
                if (c.Extra["trainer"]?["loss"] is JsonValue && !double.IsFinite(loss)) continue;
                best = new KeptCheckpoint(path, c.Epoch, c.Step, loss);
            }
            catch (Exception e) when (e is IOException or CheckpointException or UnauthorizedAccessException)
            {
                // Unreadable: not a candidate.
            }
        }
        return best;
    }

    private bool SameRun(CheckpointContent c)
    {
        if (c.Extra["options"] is not JsonObject o) return false;
        var mine = Options.ToJson();
        foreach (var k in new[] { "dataset", "model", "activation", "loss", "optimizer", "batch_size", "seed", "data", "limit" })
            if (o[k]?.ToJsonString() != mine[k]?.ToJsonString()) return false;
        return true;
    }

    // ------------------------------------------------------------------ checkpoints

    /// <summary>
    /// A snapshot of the run: model, optimizer, loader position, generator, counters, the epoch in
    /// progress, the history and the options (so that a resume needs only the checkpoint).
    /// </summary>
    public CheckpointContent Capture()
    {
        var c = CheckpointContent.Capture(Model, Optimizer, loader: Loader, generators: [new("init", _generator)]);
        c.Epoch = EpochsDone;
        c.Step = Step;
        c.Extra["program"] = "backprop train";
        c.Extra["options"] = Options.ToJson();
        c.Extra["threads"] = Threads.Count;
        if (Sync != null) c.Extra["ranks"] = Sync.Size;
        c.Extra["trainer"] = new JsonObject
        {
            ["epoch_loss_sum"] = _epochLossSum,
            ["epoch_batches"] = _epochBatches,
            ["epoch_samples"] = _epochSamples,
            // The last step's training loss (null: not finite, or no step yet) and the run's lowest.
            ["loss"] = double.IsFinite(_lastLoss) ? _lastLoss : null,
            ["min_loss"] = double.IsFinite(_minLoss) ? _minLoss : null,
            ["history"] = new JsonArray([.. History.Select(h => (JsonNode)new JsonObject
            {
                ["epoch"] = h.Epoch,
                ["train_loss"] = h.TrainLoss,
                ["test_loss"] = h.TestLoss,
                ["test_accuracy"] = h.TestAccuracy,
                ["train_seconds"] = h.TrainSeconds,
                ["samples_per_second"] = h.SamplesPerSecond,
            })]),
        };
        return c;
    }

    /// <summary>
    /// Writes a checkpoint atomically; refuses (a <see cref="TrainingDivergedException"/>) when a
    /// parameter or optimizer state is no longer finite, so the last good checkpoint stays.
    /// </summary>
    public void SaveCheckpoint(string path)
    {
        var c = Capture();
        SavePath ??= path;
        if (Checkpoint.FindNonFinite(c) is string bad)
        {
            throw new TrainingDivergedException(
                $"'{bad}' holds NaN or infinity after epoch {EpochsDone}, step {Step}; {path} was not overwritten; {Advice()}.");
        }
        Rotate(path);
        Checkpoint.Save(path, c);
        LastGoodCheckpoint = $"{path} (epoch {c.Epoch}, step {c.Step})";
    }

    /// <summary>
    /// Before a save, moves the kept checkpoints one place down: PATH.(K-2) becomes PATH.(K-1), ...,
    /// and PATH is copied to PATH.1 (atomically, so that PATH itself is never missing). Each step is
    /// a rename or an atomic write, so a crash in the middle leaves only whole checkpoints.
    /// </summary>
    private void Rotate(string path)
    {
        if (Keep < 2 || !File.Exists(path)) return;
        for (int i = Keep - 1; i >= 2; i--)
            if (File.Exists(KeptPath(path, i - 1)))
                File.Move(KeptPath(path, i - 1), KeptPath(path, i), overwrite: true);
        AtomicFile.Copy(path, KeptPath(path, 1));
    }

    /// <summary>
    /// Continues from a checkpoint written by <see cref="SaveCheckpoint"/>: model, optimizer, loader
    /// position, generator, counters and history, all or nothing. Options named in
    /// <paramref name="overridden"/> (lr, momentum, weight-decay) replace the recorded optimizer
    /// settings; a changed batch size or sample count is accepted only at an epoch boundary.
    /// </summary>
    /// <exception cref="CheckpointMismatchException">The checkpoint does not fit this model, optimizer or loader.</exception>
    public void Restore(CheckpointContent c, IReadOnlySet<string>? overridden = null)
    {
        overridden ??= new HashSet<string>();
        string source = c.SourcePath ?? "checkpoint";
        if (c.Extra["trainer"] is not JsonObject t)
            throw new CheckpointMismatchException(c.SourcePath, ["it has no 'trainer' metadata; was it written by 'backprop train'?"]);
        double lossSum, minLoss, lastLoss;
        int batches, samples;
        var history = new List<EpochResult>();
        try
        {
            const string p = "trainer.";
            lossSum = RecordedJson.Number(t, "epoch_loss_sum", double.MinValue, double.MaxValue, p);
            batches = RecordedJson.Int(t, "epoch_batches", 0, int.MaxValue, p);
            samples = RecordedJson.Int(t, "epoch_samples", 0, int.MaxValue, p);
            lastLoss = t["loss"] is null ? double.NaN : RecordedJson.Number(t, "loss", 0, double.MaxValue, p);
            minLoss = t["min_loss"] is null ? double.PositiveInfinity : RecordedJson.Number(t, "min_loss", 0, double.MaxValue, p);
            if (t["history"] is not JsonArray hs) throw new FormatException($"'{p}history' must be an array, found {t["history"]?.ToJsonString() ?? "nothing"}");
            for (int i = 0; i < hs.Count; i++)
            {
                string hp = $"{p}history[{i}].";
                var h = hs[i] as JsonObject ?? throw new FormatException($"'{p}history[{i}]' must be an object, found {hs[i]?.ToJsonString() ?? "null"}");
                history.Add(new EpochResult(RecordedJson.Int(h, "epoch", 1, DataLoader.MaxEpoch, hp), RecordedJson.NumberOrNaN(h, "train_loss", hp),
                    RecordedJson.NumberOrNaN(h, "test_loss", hp), RecordedJson.NumberOrNaN(h, "test_accuracy", hp),
                    RecordedJson.NumberOrNaN(h, "train_seconds", hp), RecordedJson.NumberOrNaN(h, "samples_per_second", hp)));
            }
        }
        catch (FormatException e)
        {
            throw new CheckpointMismatchException(c.SourcePath, [$"its 'trainer' metadata is invalid: {e.Message}"], e);
        }

        // Explicit settings win over the recorded ones: the fresh optimizer was built from them.
        if (c.Components.TryGetValue(CheckpointContent.OptimizerKey, out var saved))
        {
            var fresh = Optimizer.StateDict().Meta;
            if ((overridden.Contains("lr") || overridden.Contains("weight-decay")) &&
                saved.Meta["param_groups"] is JsonArray groups && fresh["param_groups"] is JsonArray freshGroups && groups.Count == freshGroups.Count)
                for (int i = 0; i < groups.Count; i++)
                    if (groups[i] is JsonObject g)
                    {
                        if (overridden.Contains("lr")) g["lr"] = freshGroups[i]!["lr"]!.DeepClone();
                        if (overridden.Contains("weight-decay")) g["weight_decay"] = freshGroups[i]!["weight_decay"]!.DeepClone();
                    }
            if (overridden.Contains("momentum") && saved.Meta["hyperparameters"] is JsonObject h && fresh["hyperparameters"]?["momentum"] is JsonNode m)
                h["momentum"] = m.DeepClone();
        }

        // At an epoch boundary the position is just an epoch number, valid for any batch size or
        // sample count; inside an epoch it names batches of the recorded loader only.
        DataLoader? loader = Loader;
        int? epochOnly = null;
        if (c.Components.TryGetValue(CheckpointContent.LoaderKey, out var l) && (int?)(l.Meta["batch_index"] as JsonValue) == 0 &&
            (l.Meta["batch_size"]?.ToJsonString() != Loader.BatchSize.ToString(System.Globalization.CultureInfo.InvariantCulture) ||
             l.Meta["samples"]?.ToJsonString() != Loader.Samples.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            // Only the epoch is used then, but a position that cannot be valid is still refused.
            foreach (var (k, min) in new[] { ("batch_size", 1), ("samples", 0) })
                if (!(l.Meta[k] is JsonValue kv && kv.TryGetValue<int>(out int n) && n >= min))
                    throw new CheckpointMismatchException(c.SourcePath,
                        [$"'{CheckpointContent.LoaderKey}.{k}' must be an integer in [{min}, {int.MaxValue}], found {l.Meta[k]?.ToJsonString() ?? "nothing"}"]);
            loader = null;
            epochOnly = l.Meta["epoch"] is JsonValue ev && ev.TryGetValue<int>(out int e) && e is >= 0 and <= DataLoader.MaxEpoch ? e
                : throw new CheckpointMismatchException(c.SourcePath, [$"'{CheckpointContent.LoaderKey}': invalid epoch {l.Meta["epoch"]?.ToJsonString() ?? "(missing)"}"]);
        }
        c.Restore(Model, Optimizer, loader: loader, generators: [new("init", _generator)]);
        if (epochOnly is int e0) Loader.Epoch = e0;
        Step = c.Step;
        (_epochLossSum, _epochBatches, _epochSamples) = (lossSum, batches, samples);
        History.Clear();
        History.AddRange(history);
        LastGoodCheckpoint = $"{source} (epoch {c.Epoch}, step {c.Step})";
        (_minLoss, _lastLoss, _onset, ResumedFrom) = (minLoss, lastLoss, null, c.SourcePath);
    }

    /// <summary>Mean loss and accuracy on a dataset, without recording a graph.</summary>
    public (double Loss, double Accuracy) Evaluate(TensorDataset data)
    {
        Model.Eval();
        double lossSum = 0;
        long correct = 0;
        try
        {
            using (Tensor.NoGrad())
                foreach (var (x, y) in new DataLoader(data, 1000, recycleBatches: true))
                {
                    using var scope = Tensor.Scope();
                    var output = Model.Forward(x);
                    lossSum += LossOf(output, y).ItemDouble() * x.Size(0);
                    correct += (long)output.Argmax(1).Eq(y).Sum().ItemDouble();
                }
        }
        catch (AnomalyException e)
        {
            throw new TrainingDivergedException($"anomaly detected while evaluating after epoch {EpochsDone}, step {Step} ({e.Message.TrimEnd('.')}).", e);
        }
        Model.Train();
        return (lossSum / Math.Max(data.Count, 1), (double)correct / Math.Max(data.Count, 1));
    }
}
