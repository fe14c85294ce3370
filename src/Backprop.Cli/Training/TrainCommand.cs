using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Backprop.Data;
using Spectre.Console;

namespace Backprop.Cli.Training;

/// <summary><c>backprop train [dataset] [options]</c>.</summary>
public static class TrainCommand
{
    /// <summary>Options that take no value.</summary>
    public static readonly string[] Flags = ["json", "help", "quiet"];

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
        """;

    /// <summary>Runs the command.</summary>
    public static int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Flag("help"))
        {
            stdout.WriteLine(Help);
            return 0;
        }
        if (args.Positionals.Count > 1)
            throw new CliException($"'train' takes at most one dataset, got: {string.Join(" ", args.Positionals)}.");
        bool json = args.Flag("json"), quiet = args.Flag("quiet");
        var entry = DatasetCatalog.Find(args.Positionals.Count == 1 ? args.Positionals[0] : "digits");
        int threads = args.Int("threads", 0, 1, 1024);
        int previousThreads = Threads.Count;
        if (threads > 0) Threads.Count = threads;
        try
        {
            return Train(args, stdout, stderr, entry, json, quiet);
        }
        finally
        {
            Threads.Count = previousThreads;
        }
    }

    private static int Train(CliArgs args, TextWriter stdout, TextWriter stderr, DatasetEntry entry, bool json, bool quiet)
    {
        var d = entry.Defaults;
        var seedText = args.String("seed");
        ulong seed = 1;
        if (seedText != null && !ulong.TryParse(seedText, NumberStyles.None, CultureInfo.InvariantCulture, out seed))
            throw new CliException($"option --seed expects a non-negative integer, got '{seedText}'.");
        var dataDir = args.String("data");
        if (dataDir != null && !Directory.Exists(dataDir))
            throw new CliException($"--data: folder '{dataDir}' does not exist.");
        var options = new TrainOptions
        {
            Dataset = entry.Name,
            Model = args.String("model", d.Model)!,
            Activation = args.String("activation", d.Activation)!.ToLowerInvariant(),
            Loss = args.String("loss", "cross-entropy")!.ToLowerInvariant(),
            Optimizer = args.String("optimizer", d.Optimizer)!.ToLowerInvariant(),
            Lr = args.Double("lr", d.Lr, 0, 1e6),
            Momentum = args.Double("momentum", 0, 0, 1),
            WeightDecay = args.Double("weight-decay", 0, 0, 1e3),
            BatchSize = args.Int("batch-size", d.BatchSize, 1, 1 << 20),
            Epochs = args.Int("epochs", d.Epochs, 1, 100000),
            Seed = seed,
            DataDir = dataDir,
            Limit = args.String("limit") != null ? args.Int("limit", 0, 1) : null,
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
        if (!quiet)
        {
            human.WriteLine($"training {options.Model} ({options.Activation}) on {options.Dataset}: {trainer.Train.Count} train / {trainer.Test.Count} test samples, " +
                $"{trainer.Model.NumParameters()} parameters, {options.Optimizer} lr={F(options.Lr)}, batch {options.BatchSize}, {options.Epochs} epochs, {Threads.Count} thread(s)");
            if (options.Dataset == "digits")
                human.WriteLine("  (the built-in 8x8 digits; for MNIST: backprop train mnist --data ../shared/data/mnist)");
        }

        var history = new List<EpochResult>();
        double trainSeconds = 0;
        long trainSamples = 0;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(human) });
        for (int epoch = 1; epoch <= options.Epochs; epoch++)
        {
            (double Loss, double Seconds, int Samples) r = default;
            if (quiet || !console.Profile.Capabilities.Interactive)
                r = trainer.TrainEpoch();
            else
                console.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"epoch {epoch}/{options.Epochs}", maxValue: trainer.Loader.Count);
                        var sw = Stopwatch.StartNew();
                        r = trainer.TrainEpoch((b, loss) =>
                        {
                            if (b % 20 != 0 && b != trainer.Loader.Count) return;
                            task.Value = b;
                            task.Description = $"epoch {epoch}/{options.Epochs}  loss {loss:F4}  {b * options.BatchSize / Math.Max(sw.Elapsed.TotalSeconds, 1e-9):F0} samples/s";
                        });
                    });
            trainSeconds += r.Seconds;
            trainSamples += r.Samples;
            var (testLoss, acc) = trainer.Evaluate(trainer.Test);
            var er = new EpochResult(epoch, r.Loss, testLoss, acc, r.Seconds, r.Samples / Math.Max(r.Seconds, 1e-9));
            history.Add(er);
            if (!quiet)
                human.WriteLine($"epoch {epoch,3}/{options.Epochs}  train loss {er.TrainLoss:F4}  test loss {er.TestLoss:F4}  " +
                    $"test accuracy {100 * er.TestAccuracy:F2}%  {er.SamplesPerSecond:F0} samples/s");
        }
        total.Stop();
        var last = history[^1];
        if (!quiet)
            human.WriteLine($"done in {total.Elapsed.TotalSeconds:F1} s: test accuracy {100 * last.TestAccuracy:F2}%");
        if (json)
        {
            var o = new JsonObject
            {
                ["dataset"] = options.Dataset,
                ["model"] = trainer.Spec.ToString(),
                ["activation"] = options.Activation,
                ["loss"] = options.Loss,
                ["optimizer"] = options.Optimizer,
                ["lr"] = options.Lr,
                ["batch_size"] = options.BatchSize,
                ["epochs"] = options.Epochs,
                ["seed"] = options.Seed,
                ["threads"] = Threads.Count,
                ["parameters"] = trainer.Model.NumParameters(),
                ["train_samples"] = trainer.Train.Count,
                ["test_samples"] = trainer.Test.Count,
                ["train_loss"] = last.TrainLoss,
                ["test_loss"] = last.TestLoss,
                ["test_accuracy"] = last.TestAccuracy,
                ["seconds"] = total.Elapsed.TotalSeconds,
                ["train_seconds"] = trainSeconds,
                ["samples_per_second"] = trainSamples / Math.Max(trainSeconds, 1e-9),
                ["history"] = new JsonArray(history.Select(h => (JsonNode)new JsonObject
                {
                    ["epoch"] = h.Epoch,
                    ["train_loss"] = h.TrainLoss,
                    ["test_loss"] = h.TestLoss,
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

    private static string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}
