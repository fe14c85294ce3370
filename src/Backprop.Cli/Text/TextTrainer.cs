using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Backprop.Cli.Training;
using Backprop.Data;
using Backprop.IO;
using Backprop.NN;
using Backprop.Optim;
using Backprop.Text;

namespace Backprop.Cli.Text;

/// <summary>One validation result of a text run.</summary>
internal readonly record struct TextEval(long Step, double TrainLoss, double ValLoss, double TokensPerSecond);

/// <summary>
/// The training loop of 'backprop train text': random mini-batches (drawn with replacement by a seeded
/// generator, like makemore's torch.randint), cross-entropy on every predicted token, cosine decay of
/// the learning rate from --lr to --lr x --min-lr over --steps, validation every --eval-every steps,
/// and checkpoints that hold the model, the optimizer, the batch generator and the tokenizer.
/// </summary>
internal sealed class TextTrainer
{
    /// <summary>The key of the checkpoint's extra metadata that marks a text run and holds its options and tokenizer.</summary>
    public const string ExtraKey = "text";

    private readonly Generator _batches;
    private readonly SampleMasks _masks;

    /// <param name="options">The run's options.</param>
    /// <param name="tokenizer">The tokenizer recorded in a checkpoint (null: train one on the data).</param>
    /// <param name="create">Builds the model instead of <see cref="TextModelFactory.Create"/> (tests plug in their own).</param>
    public TextTrainer(TextTrainOptions options, ITokenizer? tokenizer = null, Func<TextTrainOptions, int, int, Generator, LanguageModel>? create = null)
    {
        Options = options;
        var init = new Generator(options.Seed);
        _batches = new Generator(options.Seed + 0x9E3779B97F4A7C15UL);
        // The model decides how it trains (windows or sequences), the data follows.
        bool windows = options.Model == "nlm";
        Data = TextData.Load(options, tokenizer, windows);
        Model = (create ?? TextModelFactory.Create)(options, Data.Tokenizer.VocabSize, Data.Boundary, init);
        Windows = TextModelFactory.TrainsOnWindows(Model);
        // Dropout masks from (seed, step, the sample's row in the global batch): the same whichever rank
        // computes a row, so --distributed with dropout matches one process (docs/distributed.md).
        _masks = new SampleMasks(options.Seed);
        _masks.Attach(Model);
        Optimizer = OptimizerFactory.Create(options.Optimizer, Model.Parameters(), options.Lr, 0, options.WeightDecay);
    }

    public TextTrainOptions Options { get; }

    /// <summary>Data-parallel training (--distributed; tests: thread-ranks), or null: one process.</summary>
    public IStepSync? Dist { get; set; }

    /// <summary>
    /// Asked before each step's all-reduce under <see cref="Dist"/> (--minutes: rank 0's clock); when it
    /// says yes on any rank, every rank learns it in the same step (<see cref="StopAgreed"/>).
    /// </summary>
    public Func<bool>? StopRequest { get; set; }

    /// <summary>Whether some rank asked to stop (<see cref="StopRequest"/>) in the last step: every rank stops after it.</summary>
    public bool StopAgreed => Dist?.StopAgreed ?? false;
    public TextData Data { get; }
    public LanguageModel Model { get; }
    public Optimizer Optimizer { get; }
    public bool Windows { get; }
    public long Step { get; private set; }
    public List<TextEval> History { get; } = [];

    /// <summary>
    /// The training losses of the steps since the last validation (their mean is the next
    /// <see cref="TextEval.TrainLoss"/>); checkpoints record them, so a run resumed between two
    /// validations reports what an uninterrupted one does.
    /// </summary>
    public double PendingLossSum { get; private set; }
    public int PendingLossCount { get; private set; }

    /// <summary>Target tokens trained on (over all ranks under <see cref="Dist"/>) and the seconds this process spent in training steps.</summary>
    public long Tokens { get; private set; }
    public double TrainSeconds { get; private set; }

    /// <summary>The learning rate at step <paramref name="step"/> (1-based): cosine from Lr down to Lr x MinLrFraction at the last step.</summary>
    public double LrAt(long step)
    {
        double t = Options.Steps <= 1 ? 1 : Math.Clamp((step - 1) / (double)(Options.Steps - 1), 0, 1);
        double f = Options.MinLrFraction + (1 - Options.MinLrFraction) * 0.5 * (1 + Math.Cos(Math.PI * t));
        return Options.Lr * f;
    }

    /// <summary>Loss of logits [..., V] against targets [...], skipping targets of -1 (padding).</summary>
    private Tensor LossOf(Tensor x, Tensor y, Reduction reduction)
    {
        var logits = Windows ? ((FixedWindowLm)Model).WindowLogits(x) : Model.Logits(x);
        return Loss.CrossEntropy(logits.Reshape(-1, Model.VocabSize), y.Reshape(-1), reduction, ignoreIndex: -1);
    }

    /// <summary>One optimizer step on a random batch; returns the batch's mean loss.</summary>
    public double TrainStep()
    {
        Model.Train();
        Tensor x, y;
        // --distributed: this rank's contiguous part of the global batch's rows
        var part = Dist is { } d ? DataLoader.ShardRange(Options.BatchSize, d.Rank, d.Size) : (Start: 0, Length: Options.BatchSize);
        if (Data.Bptt is BpttBatches streams)
        {
            // Chunk k of the pass continues chunk k-1 row by row: the state carries over (detached
            // after each step); a new pass over the streams starts from a fresh state. Under
            // --distributed a rank owns the same rows (streams) in every chunk and carries their state
            // only: a row's state depends on that row alone, so the ranks compute what one process does.
            int k = (int)(Step % streams.Count);
            if (k == 0) Model.ResetState();
            (x, y) = streams[k];
            if (part.Length != x.Size(0)) (x, y) = (x.Narrow(0, part.Start, part.Length), y.Narrow(0, part.Start, part.Length));
        }
        else
        {
            // Random windows are unrelated to one another: no state carries between them.
            Model.ResetState();
            var indices = new int[Options.BatchSize];
            for (int i = 0; i < indices.Length; i++) indices[i] = _batches.NextInt(Data.Train.Count);
            // --distributed: every rank draws the same global batch and keeps its part of it
            (x, y) = Data.Train.GetBatch(indices.AsSpan(part.Start, part.Length));
        }
        (_masks.Step, _masks.FirstSample) = (Step, part.Start);
        long targets = Windows ? y.NumElements : y.ToLongArray().Count(v => v >= 0);
        var sw = Stopwatch.StartNew();
        double l;
        using (Tensor.Scope())
        {
            Optimizer.Lr = LrAt(Step + 1);
            var loss = LossOf(x, y, Reduction.Mean);
            l = loss.ItemDouble();
            // the mean over every rank's targets (each rank's loss weighted by its targets; so are the gradients)
            if (Dist != null)
            {
                l = Dist.AfterForward(targets > 0 ? l : 0, (int)targets, StopRequest?.Invoke() ?? false);
                targets = Dist.GlobalSamples;
            }
            if (!double.IsFinite(l))
                throw new TrainingDivergedException($"training diverged at step {Step + 1}: the loss became {l}; try a smaller --lr.");
            Optimizer.ZeroGrad();
            loss.Backward();
            Dist?.BeforeUpdate();
            Optimizer.Step();
            Model.DetachState();
        }
        Step++;
        PendingLossSum += l;
        PendingLossCount++;
        Tokens += targets;
        TrainSeconds += sw.Elapsed.TotalSeconds;
        return l;
    }

    /// <summary>Validates, records the result in <see cref="History"/> with the mean training loss since the last one, and returns it.</summary>
    public TextEval Evaluate()
    {
        double val = Validate();
        var e = new TextEval(Step, PendingLossCount > 0 ? PendingLossSum / PendingLossCount : double.NaN, val, Tokens / Math.Max(TrainSeconds, 1e-9));
        History.Add(e);
        (PendingLossSum, PendingLossCount) = (0, 0);
        return e;
    }

    /// <summary>
    /// Mean loss per predicted token over the validation set (nats). A state carried between training
    /// chunks (truncated BPTT) is left as it was, so validating does not change the training run.
    /// </summary>
    public double Validate()
    {
        var carried = Model.CarriedState();
        Model.Eval();
        try
        {
            using var _ = Tensor.NoGrad();
            double sum = 0;
            long count = 0;
            int batch = Windows ? 4096 : Math.Max(1, Math.Min(Options.BatchSize, 4096 / Math.Max(1, Options.Context) + 1));
            var idx = Data.ValidationIndices;
            for (int at = 0; at < idx.Length; at += batch)
            {
                using var scope = Tensor.Scope();
                Model.ResetState();
                var (x, y) = Data.Validation.GetBatch(idx.AsSpan(at, Math.Min(batch, idx.Length - at)));
                sum += LossOf(x, y, Reduction.Sum).ItemDouble();
                count += Windows ? y.NumElements : y.ToLongArray().Count(v => v >= 0);
            }
            return sum / Math.Max(count, 1);
        }
        finally
        {
            Model.SetCarriedState(carried);
            Model.Train();
        }
    }

    /// <summary>The checkpoint component holding the state a recurrent model carries between chunks (truncated BPTT).</summary>
    public const string CarriedKey = "carried";

    /// <summary>
    /// A snapshot for --save: model (with its dropout generators), optimizer, batch generator, step,
    /// the carried recurrent state, the losses since the last validation, the thread count, options
    /// and tokenizer: everything a resumed run needs to continue bit for bit. Under <see cref="Dist"/>
    /// every rank calls it (collective: the carried state of the whole batch is gathered from the
    /// ranks' rows) and rank 0 writes the file.
    /// </summary>
    public void Save(string path)
    {
        var whole = WholeCarriedState();
        if (Dist is { Rank: not 0 }) return;
        var content = CheckpointContent.Capture(Model, Optimizer, generators: [new("batches", _batches)]);
        content.Step = Step;
        var carried = new StateDict();
        foreach (var (name, t) in whole) carried.Add(name, t);
        if (carried.Count > 0) content.Components[CarriedKey] = carried;
        content.Extra["threads"] = Threads.Count;
        if (Dist != null) content.Extra["ranks"] = Dist.Size;
        content.Extra[ExtraKey] = new JsonObject
        {
            ["options"] = Options.ToJson(),
            ["tokenizer"] = Data.Tokenizer.ToJson(),
            ["boundary"] = Data.Boundary,
            ["pending_loss_sum"] = PendingLossSum,
            ["pending_loss_count"] = PendingLossCount,
            ["history"] = new JsonArray([.. History.Select(h => (JsonNode)new JsonObject
            {
                // null when no step ran before the validation (--minutes 0): JSON has no NaN
                ["step"] = h.Step, ["train_loss"] = Finite(h.TrainLoss), ["val_loss"] = Finite(h.ValLoss),
            })]),
        };
        Checkpoint.Save(path, content, requireFinite: true);
    }

    /// <summary>
    /// Copies of the carried state (truncated BPTT), each <c>[layers, batch, hidden]</c> over the whole
    /// global batch: under <see cref="Dist"/> each rank carries only its contiguous rows
    /// (<see cref="DataLoader.ShardRange"/>), so every rank sends its rows to all (collective, in rank
    /// order) and the rows are put together in batch order, bit for bit.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, Tensor>> WholeCarriedState()
    {
        using var _ = Tensor.NoGrad();
        var mine = Model.CarriedState();
        if (Dist is not { Size: > 1 } d) return [.. mine.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.Detach().Clone()))];
        // Every rank has state or none: the ranks step, reset and validate together.
        return [.. mine.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.DType switch
        {
            DType.Float32 => GatherRows<float>(kv.Key, kv.Value, d),
            DType.Float64 => GatherRows<double>(kv.Key, kv.Value, d),
            var t => throw new InvalidOperationException($"carried state '{kv.Key}': cannot gather {t.Name()} rows across ranks."),
        }))];
    }

    private Tensor GatherRows<T>(string name, Tensor mine, IStepSync d) where T : unmanaged
    {
        int rows = Options.BatchSize;
        if (mine.Rank != 3 || mine.Size(1) != DataLoader.ShardRange(rows, d.Rank, d.Size).Length)
            throw new InvalidOperationException($"carried state '{name}' of shape {mine.Shape}: expected [layers, {DataLoader.ShardRange(rows, d.Rank, d.Size).Length} rows of rank {d.Rank}, hidden].");
        int layers = mine.Size(0), hidden = mine.Size(2);
        var whole = new T[layers * rows * hidden];
        for (int r = 0; r < d.Size; r++)
        {
            var (start, length) = DataLoader.ShardRange(rows, r, d.Size);
            var part = new T[layers * length * hidden];
            if (r == d.Rank) mine.Contiguous().CopyToHost<T>(part);
            d.Broadcast(MemoryMarshal.Cast<T, float>(part.AsSpan()), r);
            for (int l = 0; l < layers; l++)
                part.AsSpan(l * length * hidden, length * hidden).CopyTo(whole.AsSpan((l * rows + start) * hidden));
        }
        return Tensor.Zeros([layers, rows, hidden], mine.DType).CopyFromHost<T>(whole);
    }

    private static JsonNode? Finite(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    /// <summary>Continues from a checkpoint: weights, optimizer state, batch generator and step.</summary>
    public void Restore(CheckpointContent content)
    {
        content.Restore(Model, Optimizer, generators: [new("batches", _batches)]);
        Step = content.Step;
        var carried = content.Components.TryGetValue(CarriedKey, out var c) ? c.Tensors.Select(kv => kv).ToList() : [];
        // --distributed: the checkpoint holds the whole batch's rows (whatever number of ranks wrote
        // it); this rank carries its own rows only. (State of another batch size is dropped, as one
        // process drops it at the next chunk.)
        if (Dist is { } d && carried.Count > 0)
        {
            var (start, length) = DataLoader.ShardRange(Options.BatchSize, d.Rank, d.Size);
            carried = carried.All(kv => kv.Value.Rank == 3 && kv.Value.Size(1) == Options.BatchSize)
                ? [.. carried.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.Narrow(1, start, length)))]
                : [];
        }
        try
        {
            Model.SetCarriedState(carried);
        }
        catch (ArgumentException e)
        {
            throw new CheckpointMismatchException(content.SourcePath, [e.Message.Split(" (Parameter")[0]]);
        }
        var text = content.Extra[ExtraKey];
        PendingLossSum = text?["pending_loss_sum"] is JsonValue ps && ps.TryGetValue<double>(out double sum) ? sum : 0;
        PendingLossCount = text?["pending_loss_count"] is JsonValue pc && pc.TryGetValue<int>(out int count) ? count : 0;
        if (content.Extra[ExtraKey]?["history"] is JsonArray h)
            foreach (var e in h.OfType<JsonObject>())
                History.Add(new TextEval((long)(e["step"]?.GetValue<double>() ?? 0), e["train_loss"]?.GetValue<double>() ?? double.NaN, e["val_loss"]?.GetValue<double>() ?? double.NaN, 0));
    }

    /// <summary>The text section of a checkpoint written by <see cref="Save"/>, or a one-line error.</summary>
    public static (TextTrainOptions Options, ITokenizer Tokenizer, int Boundary) Recorded(CheckpointContent content, string path, string option)
    {
        if (content.Extra[ExtraKey] is not JsonObject t || t["options"] is not JsonObject o || t["tokenizer"] is not JsonObject tj)
            throw new CliException($"{option} {path}: not a text model checkpoint (it records no text options and tokenizer); was it written by 'backprop train text --save'?");
        var options = TextTrainOptions.FromJson(o, path);
        ITokenizer tokenizer;
        try
        {
            tokenizer = Tokenizers.FromJson(tj, path);
        }
        catch (FormatException e)
        {
            throw new CliException($"{option} {Cli.OneLine(e.Message)}");
        }
        int boundary = t["boundary"] is JsonValue b && b.TryGetValue<int>(out int bi) && bi >= 0 && bi < tokenizer.VocabSize
            ? bi : throw new CliException($"{option} {path}: the recorded boundary token is missing or not in 0..{tokenizer.VocabSize - 1}.");
        return (options, tokenizer, boundary);
    }
}
