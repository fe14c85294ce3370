using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Backprop.Cli.Training;
using Backprop.IO;
using Backprop.Text;
using Spectre.Console;

namespace Backprop.Cli.Text;

/// <summary><c>backprop train text [options]</c>: language models on a text file (docs/language-models.md).</summary>
internal static class TextTrainCommand
{
    private sealed class Options
    {
        public readonly Option<string?> Model = CliOptions.Choice("--model", "model", TextModelFactory.Names, "the language model (default nlm)");
        public readonly Option<string?> Data = CliOptions.Text("--data", "FILE", "UTF-8 text file (default: Tiny Shakespeare from ../shared/data)");
        public readonly Option<bool> Lines = CliOptions.Flag("--lines", "one item per line (e.g. names.txt): each line is a sequence from boundary to boundary, lines shuffled and split 80/10/10");
        public readonly Option<bool> Names = CliOptions.Flag("--names", "same as --lines");
        public readonly Option<bool> Bptt = CliOptions.Flag("--bptt", "sequence models on a running text: truncated backprop through time over --batch-size streams in chunks of --context tokens (state carried, detached between chunks)");
        public readonly Option<string?> Tokenizer = CliOptions.Text("--tokenizer", "char|word[:N]|bpe:N", "tokenizer (default char); word:N and bpe:N cap the vocabulary at N tokens", Tokenizers.CheckSpec);
        public readonly Option<int?> MinCount = CliOptions.Int("--min-count", "word tokenizer: words seen fewer than N times in the training text become <unk> (default 1)", 1);
        public readonly Option<int?> Context = CliOptions.Int("--context", "tokens of context (nlm: the window; others: the training sequence length)", 1, TextTrainOptions.MaxContext);
        public readonly Option<int?> Embedding = CliOptions.Int("--embedding", "size of the token embeddings", 1, TextTrainOptions.MaxWidth);
        public readonly Option<int?> Layers = CliOptions.Int("--layers", "layers (recurrent and transformer models)", 1, 64);
        public readonly Option<int?> Width = CliOptions.Int("--width", "hidden width (nlm: the tanh layer)", 1, TextTrainOptions.MaxWidth);
        public readonly Option<int?> Heads = CliOptions.Int("--heads", "attention heads (gpt)", 1, 256);
        public readonly Option<double?> Dropout = CliOptions.Double("--dropout", "dropout rate (recurrent and transformer models)", 0, 0.99);
        public readonly Option<int?> Steps = CliOptions.Int("--steps", "optimizer steps in total (when resuming too); the learning rate decays over them", 1);
        public readonly Option<double?> Minutes = CliOptions.Double("--minutes", "stop this run after M minutes of wall time (validating and saving first)", 0, 1e6);
        public readonly Option<int?> BatchSize = CliOptions.Int("--batch-size", "samples per step", 1, 1 << 16);
        public readonly Option<string?> Optimizer = CliOptions.Choice("--optimizer", "optimizer", OptimizerFactory.Names, "optimizer (default adamw)");
        public readonly Option<double?> Lr = CliOptions.Double("--lr", "peak learning rate", 0, 1e6);
        public readonly Option<double?> MinLr = CliOptions.Double("--min-lr", "learning rate at the last step as a fraction of --lr (cosine decay; 1: constant; default 0.05)", 0, 1);
        public readonly Option<double?> WeightDecay = CliOptions.Double("--weight-decay", "weight decay", 0, 1e3);
        public readonly Option<ulong?> Seed = CliOptions.Seed("--seed", "seed for the split, initialization and batches (default 1)");
        public readonly Option<int?> EvalEvery = CliOptions.Int("--eval-every", "validate (and save, with --save) every N steps (default: steps/10)", 1);
        public readonly Option<int?> Samples = CliOptions.Int("--samples", "samples to print at the end (default 5 with --lines, else 0)", 0, 1000);
        public readonly Option<int?> Threads = CliOptions.Int("--threads", "threads for the kernels (default: the cores, or BACKPROP_THREADS)", 1, 1024);
        public readonly Option<double?> MaxValLoss = CliOptions.Double("--max-val-loss", "exit with code 3 if the final validation loss is above X", 0, 1e6);
        public readonly Option<bool> Json = CliOptions.Flag("--json", "print one JSON object with the results (val_loss, tokens_per_second, ...) as the last line of stdout");
        public readonly Option<bool> Quiet = CliOptions.Flag("--quiet", "no progress output, only the final line");
        public readonly Option<string?> Save = CliOptions.Text("--save", "PATH", "write a checkpoint (model, optimizer, tokenizer) at every validation and at the end");
        public readonly Option<string?> Resume = CliOptions.Text("--resume", "PATH", "continue the run recorded in a checkpoint until --steps steps in total; its options apply unless given again");
        public readonly Option<bool> Distributed = CliOptions.Flag("--distributed", "data-parallel training over MPI: start with mpirun -np N; --batch-size is the global batch (docs/distributed.md)");

        public IEnumerable<Option> All() =>
            [Model, Data, Lines, Names, Bptt, Tokenizer, MinCount, Context, Embedding, Layers, Width, Heads, Dropout, Steps, Minutes, BatchSize, Optimizer, Lr, MinLr,
             WeightDecay, Seed, EvalEvery, Samples, Threads, MaxValLoss, Json, Quiet, Save, Resume, Distributed];
    }

    /// <summary>The subcommand, added to 'train'.</summary>
    internal static Command Create()
    {
        var o = new Options();
        var command = new NotedCommand("text", "Train a language model on a text file (no --data: Tiny Shakespeare).")
        {
            Notes = "Models: nlm (the fixed-window model of Bengio et al. 2003: --context, --embedding, --width); rnn, lstm, gru (--embedding, --layers, --width, --dropout, --bptt); gpt (--layers, --width, --heads, --context).\n" +
                "Examples:\n" +
                "  backprop train text --model nlm --data ../shared/data/names/names.txt --names --steps 20000\n" +
                "  backprop train text --model nlm --tokenizer bpe:512 --minutes 5 --save shakespeare.safetensors\n" +
                "  backprop generate --checkpoint shakespeare.safetensors --prompt \"ROMEO:\" --tokens 200",
        };
        foreach (var option in o.All()) command.Add(option);
        command.SetAction(r =>
        {
            int previousThreads = Threads.Count;
            try
            {
                if (r.GetValue(o.Distributed)) return RunDistributed(r, o);
                return Run(r, o, r.InvocationConfiguration.Output, r.InvocationConfiguration.Error);
            }
            finally
            {
                Threads.Count = previousThreads;
            }
        });
        return command;
    }

    /// <summary>
    /// <c>train text --distributed</c>: one rank of an mpirun job (random windows, --lines items or --bptt
    /// streams; each rank keeps its rows of every global batch). Only rank 0 writes output and
    /// checkpoints (with every rank's carried state); a failure after MPI started prints one line naming
    /// the rank and ends every rank (<see cref="DistributedTraining.RunRank"/>).
    /// </summary>
    private static int RunDistributed(ParseResult r, Options o) =>
        DistributedTraining.RunRank(r, (dist, stdout, stderr) => Run(r, o, stdout, stderr, dist));

    private static int Run(ParseResult p, Options opt, TextWriter stdout, TextWriter stderr, DistributedTraining? dist = null)
    {
        bool json = p.GetValue(opt.Json), quiet = p.GetValue(opt.Quiet);
        var human = json ? stderr : stdout;
        string? savePath = p.GetValue(opt.Save), resumePath = p.GetValue(opt.Resume);
        if (savePath != null)
        {
            try
            {
                Checkpoint.ValidatePath(savePath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                throw new CliException($"--save: {Cli.OneLine(e.Message).TrimEnd('.')}.");
            }
        }
        CheckpointContent? resume = null;
        TextTrainOptions? rec = null;
        ITokenizer? recordedTokenizer = null;
        if (resumePath != null)
        {
            resume = TrainCommand.LoadCheckpoint(resumePath, "--resume");
            (rec, recordedTokenizer, _) = TextTrainer.Recorded(resume, resumePath, "--resume");
            // Like 'train': the recorded thread count applies unless --threads is given (bit-identical continuation needs it).
            if (resume.Extra["threads"] is JsonValue tv && tv.TryGetValue<int>(out int rt) && rt is >= 1 and <= 1024) Threads.Count = rt;
            if (p.GetValue(opt.Tokenizer) is string tk && !tk.Equals(rec.Tokenizer, StringComparison.OrdinalIgnoreCase))
                throw new CliException($"--resume {resumePath}: the run was trained with tokenizer {rec.Tokenizer}, not {tk}; the tokenizer is restored from the checkpoint.");
        }
        if (p.GetValue(opt.Threads) is int threads) Threads.Count = threads;
        string model = (p.GetValue(opt.Model) ?? rec?.Model ?? "nlm").ToLowerInvariant();
        string? data = p.GetValue(opt.Data) ?? rec?.Data;
        bool lines = p.GetValue(opt.Lines) || p.GetValue(opt.Names) || (rec?.Lines ?? false);
        if (data == null)
        {
            data = TextData.DefaultShakespeare()
                ?? throw new CliException("no --data given and Tiny Shakespeare was not found at ../shared/data/tinyshakespeare/input.txt; pass --data FILE (a UTF-8 text file).");
            if (!quiet) human.WriteLine($"no --data given: training on Tiny Shakespeare ({data})");
        }
        bool nlm = model == "nlm";
        int steps = p.GetValue(opt.Steps) ?? (int?)rec?.Steps ?? (lines ? 20000 : 5000);
        var options = new TextTrainOptions
        {
            Model = model,
            Data = data,
            Lines = lines,
            Tokenizer = (p.GetValue(opt.Tokenizer) ?? rec?.Tokenizer ?? "char").ToLowerInvariant(),
            Context = p.GetValue(opt.Context) ?? rec?.Context ?? (nlm ? (lines ? 4 : 8) : 64),
            Embedding = p.GetValue(opt.Embedding) ?? rec?.Embedding ?? (nlm ? 24 : 64),
            Layers = p.GetValue(opt.Layers) ?? rec?.Layers ?? (nlm ? 1 : 2),
            Width = p.GetValue(opt.Width) ?? rec?.Width ?? (nlm ? 256 : 128),
            Heads = p.GetValue(opt.Heads) ?? rec?.Heads ?? 4,
            Dropout = p.GetValue(opt.Dropout) ?? rec?.Dropout ?? 0,
            Steps = steps,
            BatchSize = p.GetValue(opt.BatchSize) ?? rec?.BatchSize ?? (nlm ? 64 : 32),
            Optimizer = (p.GetValue(opt.Optimizer) ?? rec?.Optimizer ?? "adamw").ToLowerInvariant(),
            Lr = p.GetValue(opt.Lr) ?? rec?.Lr ?? 3e-3,
            MinLrFraction = p.GetValue(opt.MinLr) ?? rec?.MinLrFraction ?? 0.05,
            WeightDecay = p.GetValue(opt.WeightDecay) ?? rec?.WeightDecay ?? 0,
            Seed = p.GetValue(opt.Seed) ?? rec?.Seed ?? 1,
            EvalEvery = p.GetValue(opt.EvalEvery) ?? rec?.EvalEvery ?? Math.Max(1, steps / 10),
            Bptt = p.GetValue(opt.Bptt) || (rec?.Bptt ?? false),
            MinCount = p.GetValue(opt.MinCount) ?? rec?.MinCount ?? 1,
        };
        if (options.Bptt && (options.Lines || nlm))
            throw new CliException($"--bptt applies to sequence models (rnn, lstm, gru, gpt) on a running text, not to {(nlm ? "--model nlm, which reads fixed windows" : "--lines data, whose items are separate sequences")}.");
        double? minutes = p.GetValue(opt.Minutes);
        int samples = p.GetValue(opt.Samples) ?? (lines ? 5 : 0);
        if (dist != null && !dist.IsRoot) samples = 0;

        TextTrainer trainer;
        try
        {
            // Dist before Restore: under --distributed each rank takes its rows of the carried state
            trainer = new TextTrainer(options, recordedTokenizer) { Dist = dist };
            if (resume != null) trainer.Restore(resume);
        }
        catch (CheckpointMismatchException e)
        {
            throw new CliException($"--resume {Cli.OneLine(e.Message)}");
        }
        dist?.AttachModel(trainer.Model, options.BatchSize, () => trainer.Step);
        if (!quiet)
        {
            human.WriteLine($"training {options.Model} on {trainer.Data.Description}");
            human.WriteLine($"  tokenizer {options.Tokenizer}: {trainer.Data.Tokenizer.VocabSize} tokens; {trainer.Model.NumParameters()} parameters; " +
                $"{options.Optimizer} lr={F(options.Lr)} (cosine to {F(options.Lr * options.MinLrFraction)}), batch {options.BatchSize}, {options.Steps} steps" +
                (minutes != null ? $" or {F(minutes.Value)} min" : "") + $", {Threads.Count} thread(s)");
            if (resume != null) human.WriteLine($"  resuming from {resumePath} at step {trainer.Step}");
        }

        var total = Stopwatch.StartNew();
        var deadline = minutes is double m ? TimeSpan.FromMinutes(m) : TimeSpan.MaxValue;
        // --distributed --minutes: rank 0's clock decides, and every rank learns its decision in the
        // same step's all-reduce, so all stop after the same step (one step later than one process would).
        if (dist != null && minutes != null) trainer.StopRequest = () => dist.IsRoot && total.Elapsed >= deadline;
        bool TimeLeft() => dist != null ? !trainer.StopAgreed : total.Elapsed < deadline;
        long startStep = trainer.Step, savedStep = -1;
        // Every rank saves (collective: rank 0 gathers the ranks' carried state), rank 0 writes.
        void Save()
        {
            SaveTo(trainer, savePath!);
            savedStep = trainer.Step;
        }
        void Evaluate()
        {
            var e = trainer.Evaluate();
            if (!quiet)
                human.WriteLine($"step {trainer.Step,7}/{options.Steps}  train loss {e.TrainLoss:F4}  val loss {e.ValLoss:F4}  {e.TokensPerSecond:F0} tokens/s  {total.Elapsed.TotalSeconds:F0} s");
            if (savePath != null) Save();
        }
        // SIGINT or SIGTERM: the step in progress finishes, a checkpoint is written (with --save) and the
        // exit code is 130 or 143; a second signal exits at once (saves are atomic: the last checkpoint
        // stays whole). The same handling as 'backprop train' (Interruption), polled after every step.
        using var interrupt = new Interruption();
        int Interrupted()
        {
            if (savePath != null && savedStep != trainer.Step) Save();
            // Distributed, the signal may have reached another rank only (mpirun forwards it to all).
            stderr.WriteLine($"interrupted by {(interrupt.Name != "" ? interrupt.Name : "a signal to another rank")} at step {trainer.Step}" +
                (savePath != null ? $"; checkpoint {savePath} written; continue with: {TrainCommand.ResumeCommand(dist?.Size, savePath, "train text")}" : "; no checkpoint (no --save)") + ".");
            return interrupt.ExitCode != 0 ? interrupt.ExitCode : 130;
        }
        // Whether to stop: distributed, a collective that every rank calls at the same points (after
        // each step and each validation), so that all stop together whichever got the signal.
        bool stop = false;
        bool Stop()
        {
            if (!stop) stop = dist != null ? dist.AgreeStop(interrupt.Requested, withStepStop: false) : interrupt.Requested;
            return stop;
        }
        // One interval: steps up to the next validation (with a progress bar on an interactive terminal, like 'backprop train').
        Action? progressStep = null;
        bool Interval()
        {
            do
            {
                trainer.TrainStep();
                progressStep?.Invoke();
            }
            while (!Stop() && trainer.Step % options.EvalEvery != 0 && trainer.Step < options.Steps && TimeLeft());
            return trainer.Step % options.EvalEvery == 0 || trainer.Step == options.Steps;
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(human) });
        while (trainer.Step < options.Steps && TimeLeft())
        {
            if (Stop()) return Interrupted();
            bool validate;
            if (quiet || !console.Profile.Capabilities.Interactive)
                validate = Interval();
            else
            {
                validate = false;
                long first = trainer.Step, end = Math.Min(options.Steps, (trainer.Step / options.EvalEvery + 1) * options.EvalEvery);
                console.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"step {trainer.Step}/{options.Steps}", maxValue: end - first);
                        progressStep = () =>
                        {
                            if (trainer.Step % 20 != 0) return;
                            task.Value = trainer.Step - first;
                            task.Description = $"step {trainer.Step}/{options.Steps}  loss {trainer.PendingLossSum / Math.Max(trainer.PendingLossCount, 1):F4}";
                        };
                        validate = Interval();
                        progressStep = null;
                    });
            }
            if (validate) Evaluate();
            if (Stop()) return Interrupted();
        }
        if (Stop()) return Interrupted();   // the signal came during the last step
        if (trainer.History.Count == 0 || trainer.History[^1].Step != trainer.Step) Evaluate();
        total.Stop();
        var last = trainer.History[^1];

        var drawn = new List<string>();
        if (samples > 0)
        {
            var g = new Generator(options.Seed);
            var sampling = new SamplingOptions();
            for (int i = 0; i < samples; i++)
            {
                var toks = Sampler.Generate(trainer.Model, [trainer.Data.Boundary], lines ? 64 : 200, sampling, g, TextModelFactory.MaxContext(options),
                    stopToken: lines ? trainer.Data.Boundary : null);
                if (lines && toks.Count > 0 && toks[^1] == trainer.Data.Boundary) toks.RemoveAt(toks.Count - 1);
                drawn.Add(trainer.Data.Tokenizer.Decode(toks.ToArray()));
            }
            if (!quiet)
            {
                human.WriteLine("samples:");
                foreach (var s in drawn) human.WriteLine(lines ? $"  {s}" : s);
            }
        }
        double tps = trainer.Tokens / Math.Max(trainer.TrainSeconds, 1e-9);
        if (!quiet || !json)
            human.WriteLine($"done in {total.Elapsed.TotalSeconds:F1} s: step {trainer.Step}, validation loss {last.ValLoss:F4} nats/token" +
                (savePath != null ? $"; checkpoint {savePath}" : ""));
        if (json)
        {
            var o = new JsonObject
            {
                ["model"] = options.Model,
                ["data"] = options.Data,
                ["lines"] = options.Lines,
                ["tokenizer"] = options.Tokenizer,
                ["vocab_size"] = trainer.Data.Tokenizer.VocabSize,
                ["context"] = options.Context,
                ["parameters"] = trainer.Model.NumParameters(),
                ["optimizer"] = options.Optimizer,
                ["lr"] = options.Lr,
                ["batch_size"] = options.BatchSize,
                ["seed"] = options.Seed,
                ["threads"] = Threads.Count,
                ["steps"] = trainer.Step,
                ["steps_this_run"] = trainer.Step - startStep,
                ["train_loss"] = Num(last.TrainLoss),
                ["val_loss"] = Num(last.ValLoss),
                ["tokens_per_second"] = tps,
                ["seconds"] = total.Elapsed.TotalSeconds,
                ["train_seconds"] = trainer.TrainSeconds,
                ["resumed_from"] = resumePath,
                ["checkpoint"] = savePath,
                ["distributed"] = dist?.ToJson(),
                ["samples"] = new JsonArray([.. drawn.Select(s => (JsonNode)s)]),
                ["history"] = new JsonArray([.. trainer.History.Select(h => (JsonNode)new JsonObject
                {
                    ["step"] = h.Step, ["train_loss"] = Num(h.TrainLoss), ["val_loss"] = Num(h.ValLoss),
                })]),
            };
            stdout.WriteLine(o.ToJsonString());
        }
        if (p.GetValue(opt.MaxValLoss) is double maxVal && !(last.ValLoss <= maxVal))
        {
            stderr.WriteLine($"error: validation loss {last.ValLoss:F4} is above the required {maxVal:F4}.");
            return 3;
        }
        return 0;
    }

    private static void SaveTo(TextTrainer trainer, string path)
    {
        try
        {
            trainer.Save(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException or InvalidOperationException)
        {
            throw new CliException($"--save {path}: cannot write the checkpoint: {Cli.OneLine(e.Message)}");
        }
    }

    private static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;

    private static string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}
