using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Backprop.Data;
using Backprop.IO;
using Spectre.Console;

namespace Backprop.Cli.Training;

/// <summary><c>backprop train [dataset] [options]</c>.</summary>
public static class TrainCommand
{
    /// <summary>Options that take no value.</summary>
    public static readonly string[] Flags = ["json", "help", "quiet", "detect-anomaly"];

    private static string Help => $"""
        usage: backprop train [dataset] [options]

        datasets (default: digits, embedded, no download):
        {string.Join("\n", DatasetCatalog.All.Select(e => $"  {e.Name,-16}{e.Description}"))}

        options (defaults depend on the dataset):
          --model mlp:A-B-...-Z   layer sizes from input to output, e.g. mlp:784-16-16-10
          --activation NAME       {string.Join(", ", NN.Activation.Names)}
          --loss NAME             cross-entropy (default) or mse (against one-hot targets)
          --optimizer NAME        {string.Join(", ", OptimizerFactory.Names)}
          --lr X                  learning rate
          --momentum X            momentum (sgd, rmsprop; momentum/nesterov default to 0.9)
          --weight-decay X        weight decay
          --batch-size N          mini-batch size
          --epochs N              passes over the training set
          --seed N                seed for initialization and shuffling (default 1)
          --data DIR              folder with the dataset's files (mnist, fashion-mnist)
          --limit N               train on the first N samples only
          --threads N             threads for the kernels (default: cores, or BACKPROP_THREADS)
          --min-accuracy X        exit with code 3 if the final test accuracy (a fraction) is below X
          --json                  print one JSON object with the results as the last line of stdout
          --quiet                 no progress output
          --save PATH             write a checkpoint (one .safetensors file, replaced atomically) after every epoch
          --save-every N          also write it every N training steps (needs --save)
          --resume PATH           continue the run recorded in a checkpoint until --epochs epochs are done in total;
                                  its options (and thread count) apply unless given again: bit-identical on the same machine
          --detect-anomaly        check every op for NaN and infinity and name the first op that produced one
        """;

    /// <summary>Runs the command.</summary>
    public static int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        // --threads (or a resumed run's recorded count) applies to this run only.
        int previousThreads = Threads.Count;
        try
        {
            return RunWithThreads(args, stdout, stderr);
        }
        finally
        {
            Threads.Count = previousThreads;
        }
    }

    private static int RunWithThreads(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Flag("help"))
        {
            stdout.WriteLine(Help);
            return 0;
        }
        if (args.Positionals.Count > 1)
            throw new CliException($"'train' takes at most one dataset, got: {string.Join(" ", args.Positionals)}.");
        bool json = args.Flag("json"), quiet = args.Flag("quiet"), detectAnomaly = args.Flag("detect-anomaly");
        string? savePath = args.String("save"), resumePath = args.String("resume");
        int saveEvery = args.String("save-every") != null ? args.Int("save-every", 0, 1) : 0;
        if (saveEvery > 0 && savePath == null)
            throw new CliException("--save-every needs --save PATH, the checkpoint file to write.");
        if (savePath != null && (!ValidPath(savePath) || Directory.Exists(savePath)))
            throw new CliException($"--save '{savePath}': give a file name (it is {(Directory.Exists(savePath) ? "a directory" : "not a valid path")}), e.g. run.safetensors.");
        if (savePath != null)
        {
            // Fail now rather than after the first epoch when the folder cannot exist.
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(savePath))!);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                throw new CliException($"--save {savePath}: cannot create its folder: {e.Message}");
            }
        }
        if (resumePath != null && !ValidPath(resumePath))
            throw new CliException($"--resume '{resumePath}': not a valid path; give the checkpoint file written by --save.");

        CheckpointContent? resume = null;
        TrainOptions? recorded = null;
        if (resumePath != null)
        {
            resume = LoadCheckpoint(resumePath);
            recorded = resume.Extra["options"] is JsonObject ro
                ? TrainOptions.FromJson(ro, resumePath)
                : throw new CliException($"--resume {resumePath}: the checkpoint records no training options; was it written by 'backprop train'?");
        }
        // Resuming: what the checkpoint recorded is the default, and only options given again change.
        var entry = DatasetCatalog.Find(args.Positionals.Count == 1 ? args.Positionals[0] : recorded?.Dataset ?? "digits");
        var d = entry.Defaults;
        // Resuming also keeps the recorded thread count (bit-identical continuation needs it) unless --threads is given.
        int recordedThreads = resume?.Extra["threads"] is JsonValue tv && tv.TryGetValue<int>(out int rt) && rt is >= 1 and <= 1024 ? rt : 0;
        int threads = args.Int("threads", recordedThreads, 1, 1024);
        if (threads > 0) Threads.Count = threads;
        var seedText = args.String("seed");
        ulong seed = recorded?.Seed ?? 1;
        if (seedText != null && !ulong.TryParse(seedText, NumberStyles.None, CultureInfo.InvariantCulture, out seed))
            throw new CliException($"option --seed expects a non-negative integer, got '{seedText}'.");
        var dataDir = args.String("data", recorded?.DataDir);
        if (dataDir != null && !Directory.Exists(dataDir))
            throw new CliException($"--data: folder '{dataDir}' does not exist{(args.Has("data") ? "" : $" (recorded in {resumePath})")}.");
        var options = new TrainOptions
        {
            Dataset = entry.Name,
            Model = args.String("model", recorded?.Model ?? d.Model)!,
            Activation = args.String("activation", recorded?.Activation ?? d.Activation)!.ToLowerInvariant(),
            Loss = args.String("loss", recorded?.Loss ?? "cross-entropy")!.ToLowerInvariant(),
            Optimizer = args.String("optimizer", recorded?.Optimizer ?? d.Optimizer)!.ToLowerInvariant(),
            Lr = args.Double("lr", recorded?.Lr ?? d.Lr, 0, 1e6),
            Momentum = args.Double("momentum", recorded?.Momentum ?? 0, 0, 1),
            WeightDecay = args.Double("weight-decay", recorded?.WeightDecay ?? 0, 0, 1e3),
            BatchSize = args.Int("batch-size", recorded?.BatchSize ?? d.BatchSize, 1, 1 << 20),
            Epochs = args.Int("epochs", recorded?.Epochs ?? d.Epochs, 1, 100000),
            Seed = seed,
            DataDir = dataDir,
            Limit = args.String("limit") != null ? args.Int("limit", 0, 1) : recorded?.Limit,
        };
        double minAccuracy = args.Double("min-accuracy", 0, 0, 1);
        args.RejectUnknown("train");

        var human = json ? stderr : stdout;
        var total = Stopwatch.StartNew();
        Trainer trainer;
        try
        {
            trainer = new Trainer(options);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or DataFormatException or InvalidDataException)
        {
            throw new CliException($"{options.Dataset}: {e.Message}");
        }
        if (resume != null)
        {
            try
            {
                trainer.Restore(resume, new HashSet<string>(["lr", "momentum", "weight-decay"]).Where(args.Has).ToHashSet());
            }
            catch (CheckpointMismatchException e)
            {
                throw new CliException($"--resume {e.Message}");
            }
        }
        if (!quiet)
        {
            human.WriteLine($"training {options.Model} ({options.Activation}) on {options.Dataset}: {trainer.Train.Count} train / {trainer.Test.Count} test samples, " +
                $"{trainer.Model.NumParameters()} parameters, {options.Optimizer} lr={F(trainer.Optimizer.Lr)}, batch {options.BatchSize}, {options.Epochs} epochs, {Threads.Count} thread(s)");
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

        double trainSeconds = 0;
        long trainSamples = 0;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(human) });
        void Save()
        {
            try
            {
                trainer.SaveCheckpoint(savePath!);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                throw new CliException($"--save {savePath}: cannot write the checkpoint: {e.Message}");
            }
        }
        void OnBatch(int b)
        {
            // The epoch's last batch is saved at the end of the epoch, after its evaluation.
            if (saveEvery > 0 && trainer.Step % saveEvery == 0 && b != trainer.Loader.Count) Save();
        }
        // A boxed scope, so the no-anomaly case needs no second copy of the loop.
        IDisposable? anomaly = detectAnomaly ? Tensor.DetectAnomaly() : null;
        try
        {
            for (int epoch = trainer.EpochsDone + 1; epoch <= options.Epochs; epoch++)
            {
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
                trainSeconds += r.Seconds;
                trainSamples += r.Samples;
                var (testLoss, acc) = trainer.Evaluate(trainer.Test);
                var er = new EpochResult(epoch, r.Loss, testLoss, acc, r.Seconds, r.Samples / Math.Max(r.Seconds, 1e-9));
                trainer.History.Add(er);
                if (!quiet)
                    human.WriteLine($"epoch {epoch,3}/{options.Epochs}  train loss {er.TrainLoss:F4}  test loss {er.TestLoss:F4}  " +
                        $"test accuracy {100 * er.TestAccuracy:F2}%  {er.SamplesPerSecond:F0} samples/s");
                if (savePath != null) Save();
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
        if (!quiet)
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

    /// <summary>The checkpoint to resume from, or a one-line error naming the file and what is wrong with it.</summary>
    private static CheckpointContent LoadCheckpoint(string path)
    {
        try
        {
            return Checkpoint.Load(path);
        }
        catch (FileNotFoundException e)
        {
            throw new CliException($"--resume: {e.Message}");
        }
        catch (CheckpointFormatException e)
        {
            throw new CliException($"--resume: {e.Message}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new CliException($"--resume {path}: cannot read the checkpoint: {e.Message}");
        }
    }

    /// <summary>A path the file APIs accept: not empty, no NUL character.</summary>
    private static bool ValidPath(string path) => path.Length > 0 && !path.Contains('\0') && path.Trim().Length > 0;

    private static string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}
