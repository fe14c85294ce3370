using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Backprop.Data;
using Backprop.IO;
using Spectre.Console;

namespace Backprop.Cli.Training;

/// <summary><c>backprop train [dataset] [options]</c>.</summary>
public static partial class TrainCommand
{
    /// <summary>The options of the command.</summary>
    private sealed class Options
    {
        public readonly Argument<string[]> Dataset = CliOptions.Positionals("dataset", "the dataset (default: digits, embedded, no download)", DatasetCatalog.All.Select(e => e.Name));
        public readonly Option<string?> Model = CliOptions.Text("--model", "mlp:A-B-...-Z|cnn[:SPEC]", "layer sizes from input to output, e.g. mlp:784-16-16-10; cnn: the small conv net preset; cnn:1x28x28-c32-bn-relu-m2-...-10 (docs/cli.md)", CheckModel);
        public readonly Option<string?> Activation = CliOptions.Choice("--activation", "activation", NN.Activation.Names, "hidden-layer activation");
        public readonly Option<string?> Loss = CliOptions.Choice("--loss", "loss", ["cross-entropy", "mse"], "loss (mse against one-hot targets; default cross-entropy)");
        public readonly Option<string?> Optimizer = CliOptions.Choice("--optimizer", "optimizer", OptimizerFactory.Names, "optimizer");
        public readonly Option<double?> Lr = CliOptions.Double("--lr", "learning rate", 0, 1e6);
        public readonly Option<double?> Momentum = CliOptions.Double("--momentum", "momentum (sgd, rmsprop; momentum/nesterov default to 0.9)", 0, 1);
        public readonly Option<double?> WeightDecay = CliOptions.Double("--weight-decay", "weight decay", 0, 1e3);
        public readonly Option<int?> BatchSize = CliOptions.Int("--batch-size", "mini-batch size", 1, 1 << 20);
        public readonly Option<int?> Epochs = CliOptions.Int("--epochs", "passes over the training set (in total, when resuming)", 1, 100000);
        public readonly Option<ulong?> Seed = CliOptions.Seed("--seed", "seed for initialization and shuffling (default 1)");
        public readonly Option<string?> Data = CliOptions.Text("--data", "DIR", "folder with the dataset's files (mnist, fashion-mnist)");
        public readonly Option<int?> Limit = CliOptions.Int("--limit", "train on the first N samples only", 1);
        public readonly Option<int?> Threads = CliOptions.Int("--threads", "threads for the kernels (default: the cores, or BACKPROP_THREADS)", 1, 1024);
        public readonly Option<double?> MinAccuracy = CliOptions.Double("--min-accuracy", "exit with code 3 if the final test accuracy (a fraction) is below X", 0, 1);
        public readonly Option<bool> Json = CliOptions.Flag("--json", "print one JSON object with the results as the last line of stdout (the other lines go to stderr)");
        public readonly Option<bool> Quiet = CliOptions.Flag("--quiet", "no progress output, only the final line");
        public readonly Option<string?> Save = CliOptions.Text("--save", "PATH", "write a checkpoint (one .safetensors file, replaced atomically) after every epoch");
        public readonly Option<int?> Keep = CliOptions.Int("--keep", "keep the last N checkpoints: PATH (the newest), PATH.1, ..., PATH.(N-1) (default 2; needs --save)", 1, 1000);
        public readonly Option<int?> SaveEvery = CliOptions.Int("--save-every", "also write it every N training steps (needs --save)", 1);
        public readonly Option<string?> Resume = CliOptions.Text("--resume", "PATH",
            "continue the run recorded in a checkpoint until --epochs epochs are done in total; its options (and thread count) apply unless given again: bit-identical on the same machine");
        public readonly Option<bool> DetectAnomaly = CliOptions.Flag("--detect-anomaly", "check every op for NaN and infinity and name the first op that produced one");
        public readonly Option<double?> MinLr = CliOptions.Double("--min-lr", "learning rate at the last step as a fraction of --lr: cosine decay over all steps (default 1: constant)", 0, 1);
        public readonly Option<bool> Augment = CliOptions.Flag("--augment", "image datasets: seeded augmentation of the training images, random shifts of up to 2 pixels (and horizontal flips on fashion-mnist), drawn anew every epoch");
        public readonly Option<bool> Distributed = CliOptions.Flag("--distributed", "data-parallel training over MPI: start with mpirun -np N; --batch-size is the global batch (docs/distributed.md)");
        public readonly Option<string?> Plot = CliOptions.Text("--plot", "DIR", "write PNG/SVG charts there at the end: loss, accuracy, gradient flow, confusion matrix, decision regions (2-D data), first-layer weights and misclassified images (image data)");
        public readonly Option<bool> Animate = CliOptions.Flag("--animate", "with --plot, also an animated GIF of the decision regions, one frame per epoch (2-D data)");
        public readonly Option<string?> LogDir = CliOptions.Text("--logdir", "DIR", "write TensorBoard event files there: scalars, weight and gradient histograms, images, text");

        public IEnumerable<Symbol> All() =>
            [Dataset, Model, Activation, Loss, Optimizer, Lr, Momentum, WeightDecay, BatchSize, Epochs, Seed, Data, Limit, Threads, MinAccuracy, Json, Quiet, Save, Keep, SaveEvery, Resume, DetectAnomaly, Distributed, Plot, Animate, LogDir, Augment, MinLr];

        private static string? CheckModel(string text)
        {
            try
            {
                ModelSpec.Parse(text);
                return null;
            }
            catch (CliException e)
            {
                return e.Message;
            }
        }
    }

    /// <summary>The command, for the command tree of <see cref="Cli"/>.</summary>
    internal static Command Create()
    {
        var o = new Options();
        var command = new NotedCommand("train", "Train a network (no dataset: the built-in 8x8 digits).")
        {
            Notes = "Datasets (the defaults of the options depend on the dataset):\n" +
                string.Join("\n", DatasetCatalog.All.Select(e => $"  {e.Name,-16}{e.Description}")) +
                "\n\nExample: backprop train mnist --data ../shared/data/mnist --epochs 5 --save mnist.safetensors",
        };
        foreach (var symbol in o.All())
            if (symbol is Argument a) command.Add(a);
            else command.Add((Option)symbol);
        command.SetAction(r => Run(r, o));
        command.Add(Text.TextTrainCommand.Create());
        return command;
    }

    /// <summary>Runs the command.</summary>
    private static int Run(ParseResult r, Options o)
    {
        // --threads (or a resumed run's recorded count) applies to this run only.
        int previousThreads = Threads.Count;
        try
        {
            if (r.GetValue(o.Distributed)) return RunDistributed(r, o);
            return RunWithThreads(r, o, r.InvocationConfiguration.Output, r.InvocationConfiguration.Error);
        }
        finally
        {
            Threads.Count = previousThreads;
        }
    }

    private static int RunWithThreads(ParseResult p, Options opt, TextWriter stdout, TextWriter stderr, DistributedTraining? dist = null)
    {
        var positionals = p.GetValue(opt.Dataset) ?? [];
        if (positionals.Length > 1)
            throw new CliException($"'train' takes at most one dataset, got: {string.Join(" ", positionals)}.");
        bool json = p.GetValue(opt.Json), quiet = p.GetValue(opt.Quiet), detectAnomaly = p.GetValue(opt.DetectAnomaly);
        string? savePath = p.GetValue(opt.Save), resumePath = p.GetValue(opt.Resume);
        int saveEvery = p.GetValue(opt.SaveEvery) ?? 0;
        int? keep = p.GetValue(opt.Keep);
        if (keep != null && savePath == null)
            throw new CliException("--keep needs --save PATH, the checkpoint file to write.");
        if (saveEvery > 0 && savePath == null)
            throw new CliException("--save-every needs --save PATH, the checkpoint file to write.");
        if (savePath != null && (!ValidPath(savePath) || Directory.Exists(savePath)))
            throw new CliException($"--save '{savePath}': give a file name (it is {(Directory.Exists(savePath) ? "a directory" : "not a valid path")}), e.g. run.safetensors.");
        if (savePath != null)
        {
            // Fail now rather than after the first epoch: the name's length, the kind of file it
            // names (a FIFO, a device), and whether its folder exists or can be created and written.
            try
            {
                Checkpoint.ValidatePath(savePath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                throw new CliException($"--save: {Cli.OneLine(e.Message).TrimEnd('.')}.");
            }
        }
        if (resumePath != null && !ValidPath(resumePath))
            throw new CliException($"--resume '{resumePath}': not a valid path; give the checkpoint file written by --save.");

        CheckpointContent? resume = null;
        TrainOptions? recorded = null;
        if (resumePath != null)
        {
            resume = LoadCheckpoint(resumePath, "--resume");
            recorded = RecordedOptions(resume, resumePath, "--resume");
        }
        // Resuming: what the checkpoint recorded is the default, and only options given again change.
        var entry = DatasetCatalog.Find(positionals.Length == 1 ? positionals[0] : recorded?.Dataset ?? "digits");
        var d = entry.Defaults;
        // A convolutional model takes the dataset's CNN defaults (optimizer, rate, batch, epochs) where it has them.
        string model = p.GetValue(opt.Model) ?? recorded?.Model ?? d.Model;
        if (model.StartsWith("cnn", StringComparison.OrdinalIgnoreCase) && entry.CnnDefaults is { } cnnDefaults) d = cnnDefaults with { Model = model };
        // Resuming also keeps the recorded thread count (bit-identical continuation needs it) unless --threads is given.
        int recordedThreads = resume?.Extra["threads"] is JsonValue tv && tv.TryGetValue<int>(out int rt) && rt is >= 1 and <= 1024 ? rt : 0;
        int threads = p.GetValue(opt.Threads) ?? recordedThreads;
        if (threads > 0) Threads.Count = threads;
        bool dataGiven = p.GetResult(opt.Data) != null;
        var dataDir = p.GetValue(opt.Data) ?? recorded?.DataDir;
        if (dataDir != null) CheckDataFolder(dataDir, dataGiven ? null : resumePath);
        var options = new TrainOptions
        {
            Dataset = entry.Name,
            Model = model,
            Activation = (p.GetValue(opt.Activation) ?? recorded?.Activation ?? d.Activation).ToLowerInvariant(),
            Loss = (p.GetValue(opt.Loss) ?? recorded?.Loss ?? "cross-entropy").ToLowerInvariant(),
            Optimizer = (p.GetValue(opt.Optimizer) ?? recorded?.Optimizer ?? d.Optimizer).ToLowerInvariant(),
            Lr = p.GetValue(opt.Lr) ?? recorded?.Lr ?? d.Lr,
            Momentum = p.GetValue(opt.Momentum) ?? recorded?.Momentum ?? 0,
            WeightDecay = p.GetValue(opt.WeightDecay) ?? recorded?.WeightDecay ?? 0,
            BatchSize = p.GetValue(opt.BatchSize) ?? recorded?.BatchSize ?? d.BatchSize,
            Epochs = p.GetValue(opt.Epochs) ?? recorded?.Epochs ?? d.Epochs,
            Seed = p.GetValue(opt.Seed) ?? recorded?.Seed ?? 1,
            DataDir = dataDir,
            Limit = p.GetValue(opt.Limit) ?? recorded?.Limit,
            Augment = p.GetValue(opt.Augment) || (recorded?.Augment ?? false),
            MinLrFraction = p.GetValue(opt.MinLr) ?? recorded?.MinLrFraction ?? 1,
        };
        double minAccuracy = p.GetValue(opt.MinAccuracy) ?? 0;
        var overridden = new HashSet<string>();
        if (p.GetResult(opt.Lr) != null) overridden.Add("lr");
        if (p.GetResult(opt.Momentum) != null) overridden.Add("momentum");
        if (p.GetResult(opt.WeightDecay) != null) overridden.Add("weight-decay");

        var human = json ? stderr : stdout;
        var total = Stopwatch.StartNew();
        // Resuming continues the recorded run: another dataset, optimizer, activation or loss is
        // refused, together with whatever else does not fit (the model), in one line.
        var problems = new List<string>();
        if (recorded != null)
            foreach (var (name, was, now) in new[]
            {
                ("dataset", recorded.Dataset, options.Dataset), ("optimizer", recorded.Optimizer, options.Optimizer),
                ("activation", recorded.Activation, options.Activation), ("loss", recorded.Loss, options.Loss),
            })
                if (!string.Equals(was, now, StringComparison.OrdinalIgnoreCase))
                    problems.Add($"it was trained with {name} {was}, not {now}");
        Trainer? trainer = null;
        try
        {
            trainer = new Trainer(options) { Keep = keep ?? 2 };
            if (resume != null) trainer.Restore(resume, overridden);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or DataFormatException or InvalidDataException)
        {
            throw new CliException($"{options.Dataset}: {e.Message}");
        }
        catch (CheckpointMismatchException e)
        {
            problems.AddRange(e.Problems);
        }
        catch (CliException e) when (problems.Count > 0)
        {
            // A changed dataset often brings a model that no longer fits it.
            problems.Add(e.Message.TrimEnd('.'));
        }
        if (problems.Count > 0)
            throw new CliException($"--resume {new CheckpointMismatchException(resumePath, problems).Message}");
        if (trainer == null) throw new InvalidOperationException("unreachable: no trainer and no problem");
        dist?.Attach(trainer);
        if (!quiet)
        {
            human.WriteLine($"training {options.Model} ({options.Activation}) on {options.Dataset}: {trainer.Train.Count} train / {trainer.Test.Count} test samples, " +
                $"{trainer.Model.NumParameters()} parameters, {options.Optimizer} lr={F(options.Lr)}{(options.MinLrFraction < 1 ? $" (cosine to {F(options.Lr * options.MinLrFraction)})" : "")}, batch {options.BatchSize}, {options.Epochs} epochs, {Threads.Count} thread(s)");
            if (options.Dataset == "digits" && resume == null)
                human.WriteLine("  (the built-in 8x8 digits; for MNIST: backprop train mnist --data ../shared/data/mnist)");
            if (resume != null)
            {
                human.WriteLine($"  resuming from {resumePath}: {trainer.EpochsDone} epoch(s) and {trainer.Step} step(s) done" +
                    (trainer.Loader.BatchIndex > 0 ? $", epoch {trainer.EpochsDone + 1} from batch {trainer.Loader.BatchIndex + 1} of {trainer.Loader.Count}" : ""));
                if (recordedThreads > 0 && recordedThreads != Threads.Count)
                    human.WriteLine($"  note: the checkpoint was trained with {recordedThreads} thread(s), this run uses {Threads.Count}; the results may differ in the last bits from an uninterrupted run.");
            }
        }

        // Only rank 0 of a distributed run draws pictures and writes logs.
        using var pictures = dist is { IsRoot: false } ? null : TrainingPictures.Create(trainer, p.GetValue(opt.Plot), p.GetValue(opt.Animate), p.GetValue(opt.LogDir));
        double trainSeconds = 0;
        long trainSamples = 0;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(human) });
        long savedStep = -1;
        void Save()
        {
            if (dist is { IsRoot: false }) { savedStep = trainer.Step; return; } // rank 0 writes the checkpoints
            try
            {
                trainer.SaveCheckpoint(savePath!);
                savedStep = trainer.Step;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                // The write is atomic: what failed was a temporary file, which is gone; the checkpoint at
                // the path (if any) is the last one written. Name the path, not the temporary file.
                string why = e is IOException io && (io.HResult == 28 || io.Message.Contains("No space left", StringComparison.Ordinal))
                    ? "no space left on the device"
                    : Cli.OneLine(System.Text.RegularExpressions.Regex.Replace(e.Message, @"\s*:?\s*'[^']*\.tmp-[^']*'", "").TrimEnd('.', ' ', ':'));
                string kept = savedStep >= 0 ? $"; the checkpoint written at step {savedStep} is left as it was" : File.Exists(savePath) ? "; the file at the path is left as it was" : "";
                throw new CliException($"--save {savePath}: cannot write the checkpoint at step {trainer.Step}: {why}{kept}.",
                    e is IOException ? OutputGuard.ExitCode : 2);
            }
        }
        void OnBatch(int b)
        {
            // The epoch's last batch is saved at the end of the epoch, after its evaluation.
            if (saveEvery > 0 && trainer.Step % saveEvery == 0 && b != trainer.Loader.Count) Save();
        }
        // SIGINT or SIGTERM: the step in progress finishes, a checkpoint is written (with --save), and
        // the exit code is 130 or 143; a second signal exits at once (saves are atomic, so the last
        // checkpoint stays whole).
        using var interrupt = new Interruption(trainer);
        int Interrupted()
        {
            string where = $"epoch {trainer.EpochsDone + (trainer.Loader.BatchIndex > 0 ? 1 : 0)}, step {trainer.Step}";
            if (savePath != null && savedStep != trainer.Step) Save();
            stderr.WriteLine($"interrupted by {interrupt.Name} at {where}" +
                (savePath != null ? $"; checkpoint {savePath} written; continue with: {ResumeCommand(dist?.Size, savePath)}" : "; no checkpoint (no --save)") + ".");
            return interrupt.ExitCode;
        }
        // Distributed: a collective, so that every rank stops at the same place whichever got the signal.
        bool Stopping() => dist?.AgreeStop(interrupt.Requested) ?? interrupt.Requested;
        // A boxed scope, so the no-anomaly case needs no second copy of the loop.
        IDisposable? anomaly = detectAnomaly ? Tensor.DetectAnomaly() : null;
        try
        {
            for (int epoch = trainer.EpochsDone + 1; epoch <= options.Epochs; epoch++)
            {
                if (Stopping()) return Interrupted();
                (double Loss, double Seconds, int Samples) r = default;
                if (quiet || !console.Profile.Capabilities.Interactive)
                    r = trainer.TrainEpoch((b, _) => OnBatch(b));
                else
                    console.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                        .Start(ctx =>
                        {
                            var task = ctx.AddTask($"epoch {epoch}/{options.Epochs}", maxValue: trainer.Loader.Count);
                            var sw = Stopwatch.StartNew();
                            int first = trainer.Loader.BatchIndex;
                            r = trainer.TrainEpoch((b, loss) =>
                            {
                                OnBatch(b);
                                if (b % 20 != 0 && b != trainer.Loader.Count) return;
                                task.Value = b;
                                task.Description = $"epoch {epoch}/{options.Epochs}  loss {loss:F4}  {(b - first) * options.BatchSize / Math.Max(sw.Elapsed.TotalSeconds, 1e-9):F0} samples/s";
                            });
                        });
                // Stopped inside the epoch: no evaluation, the checkpoint records the position.
                if (Stopping() && trainer.Loader.BatchIndex > 0) return Interrupted();
                trainSeconds += r.Seconds;
                trainSamples += r.Samples;
                var (testLoss, acc) = trainer.Evaluate(trainer.Test);
                var er = new EpochResult(epoch, r.Loss, testLoss, acc, r.Seconds, r.Samples / Math.Max(r.Seconds, 1e-9));
                trainer.History.Add(er);
                dist?.CheckAgreement();
                pictures?.OnEpoch(er);
                if (!quiet)
                    human.WriteLine($"epoch {epoch,3}/{options.Epochs}  train loss {er.TrainLoss:F4}  test loss {er.TestLoss:F4}  " +
                        $"test accuracy {100 * er.TestAccuracy:F2}%  {er.SamplesPerSecond:F0} samples/s");
                if (savePath != null) Save();
                if (Stopping()) return Interrupted();
            }
        }
        finally
        {
            anomaly?.Dispose();
        }
        total.Stop();
        int epochsRun = trainer.History.Count(h => h.Epoch > (resume?.Epoch ?? 0));
        if (epochsRun == 0)
        {
            // Resumed with --epochs already done: report the model as the checkpoint left it.
            if (!quiet)
                human.WriteLine($"nothing to train: the checkpoint has done {trainer.EpochsDone} epoch(s)" +
                    (trainer.Loader.BatchIndex > 0 ? $" and {trainer.Loader.BatchIndex} batch(es) of the next" : "") + $"; --epochs is {options.Epochs}.");
            if (trainer.History.Count == 0 || trainer.Loader.BatchIndex > 0)
            {
                var (testLoss, acc) = trainer.Evaluate(trainer.Test);
                trainer.History.Add(new EpochResult(trainer.EpochsDone, double.NaN, testLoss, acc, 0, 0));
            }
        }
        var last = trainer.History[^1];
        if (pictures?.Finish() is { } written && !quiet) human.WriteLine($"pictures: {string.Join(", ", written)}");
        // The result line, even with --quiet (which only drops the progress); --json --quiet prints only the JSON.
        if (dist != null && !quiet) human.WriteLine(dist.Summary());
        if (!quiet || !json)
            human.WriteLine($"done in {total.Elapsed.TotalSeconds:F1} s: test accuracy {100 * last.TestAccuracy:F2}%" +
                (savePath != null ? $"; checkpoint {savePath} (epoch {trainer.EpochsDone}, step {trainer.Step})" : ""));
        if (json)
        {
            var o = new JsonObject
            {
                ["dataset"] = options.Dataset,
                ["model"] = trainer.Spec.ToString(),
                ["activation"] = options.Activation,
                ["loss"] = options.Loss,
                ["optimizer"] = options.Optimizer,
                ["lr"] = trainer.Optimizer.Lr,
                ["batch_size"] = options.BatchSize,
                ["epochs"] = options.Epochs,
                ["seed"] = options.Seed,
                ["threads"] = Threads.Count,
                ["parameters"] = trainer.Model.NumParameters(),
                ["train_samples"] = trainer.Train.Count,
                ["test_samples"] = trainer.Test.Count,
                ["steps"] = trainer.Step,
                ["train_loss"] = JsonNumber(last.TrainLoss),
                ["test_loss"] = JsonNumber(last.TestLoss),
                ["test_accuracy"] = last.TestAccuracy,
                ["seconds"] = total.Elapsed.TotalSeconds,
                ["train_seconds"] = trainSeconds,
                ["samples_per_second"] = trainSamples / Math.Max(trainSeconds, 1e-9),
                ["distributed"] = dist?.ToJson(),
                ["resumed_from"] = resumePath,
                ["checkpoint"] = savePath,
                ["history"] = new JsonArray(trainer.History.Select(h => (JsonNode)new JsonObject
                {
                    ["epoch"] = h.Epoch,
                    ["train_loss"] = JsonNumber(h.TrainLoss),
                    ["test_loss"] = JsonNumber(h.TestLoss),
                    ["test_accuracy"] = h.TestAccuracy,
                    ["samples_per_second"] = h.SamplesPerSecond,
                }).ToArray()),
            };
            stdout.WriteLine(o.ToJsonString());
        }
        if (last.TestAccuracy < minAccuracy)
        {
            stderr.WriteLine($"error: test accuracy {last.TestAccuracy:F4} is below the required {minAccuracy:F4}.");
            return 3;
        }
        return 0;
    }

    /// <summary>A number, or null for NaN and infinity (which JSON cannot hold).</summary>
    private static JsonNode? JsonNumber(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    /// <summary>A checkpoint written by 'backprop train', or a one-line error naming the option, the file and what is wrong with it.</summary>
    internal static CheckpointContent LoadCheckpoint(string path, string option)
    {
        try
        {
            return Checkpoint.Load(path);
        }
        catch (FileNotFoundException e)
        {
            throw new CliException($"{option}: {e.Message}");
        }
        catch (CheckpointFormatException e)
        {
            throw new CliException($"{option}: {e.Message}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new CliException($"{option} {path}: cannot read the checkpoint: {e.Message}");
        }
    }

    /// <summary>The training options a checkpoint records.</summary>
    internal static TrainOptions RecordedOptions(CheckpointContent checkpoint, string path, string option) =>
        checkpoint.Extra["options"] is JsonObject ro
            ? TrainOptions.FromJson(ro, path)
            : throw new CliException($"{option} {path}: the checkpoint records no training options; was it written by 'backprop train'?");

    /// <summary>
    /// A one-line error unless <paramref name="dir"/> is an existing folder; it says whether the path is
    /// missing or a file, and where a path that was not given came from.
    /// </summary>
    internal static void CheckDataFolder(string dir, string? recordedIn)
    {
        string from = recordedIn != null ? $" (recorded in {recordedIn})" : "";
        if (!ValidPath(dir))
            throw new CliException($"--data: '{dir}' is not a valid path{from}; give the folder that holds the dataset's files.");
        if (File.Exists(dir))
            throw new CliException($"--data: '{dir}' is a file, not a folder{from}; give the folder that holds the dataset's files.");
        if (!Directory.Exists(dir))
            throw new CliException($"--data: folder '{dir}' does not exist{from}.");
    }

    /// <summary>A path the file APIs accept: not empty, no NUL character.</summary>
    private static bool ValidPath(string path) => path.Length > 0 && !path.Contains('\0') && path.Trim().Length > 0;

    private static string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}
