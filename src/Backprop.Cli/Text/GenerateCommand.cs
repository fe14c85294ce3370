using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Backprop.Cli.Training;
using Backprop.IO;
using Backprop.Text;

namespace Backprop.Cli.Text;

/// <summary><c>backprop generate --checkpoint FILE [--prompt TEXT] [--tokens N] ...</c>: text from a trained language model.</summary>
internal static class GenerateCommand
{
    private sealed class Options
    {
        public readonly Option<string?> Checkpoint = CliOptions.Text("--checkpoint", "FILE", "a checkpoint written by 'backprop train text --save'");
        public readonly Option<string?> Prompt = CliOptions.Text("--prompt", "TEXT", "the text to continue (with --lines models: the start of an item; default: nothing)");
        public readonly Option<int?> Tokens = CliOptions.Int("--tokens", "tokens to generate (per sample; --lines models stop at the boundary) (default 200)", 1, 1 << 20);
        public readonly Option<double?> Temperature = CliOptions.Double("--temperature", "divides the logits: <1 sharper, >1 flatter, 0 greedy (default 1)", 0, 1e6);
        public readonly Option<int?> TopK = CliOptions.Int("--top-k", "sample among the K most likely tokens only (default: all)", 1);
        public readonly Option<double?> TopP = CliOptions.Double("--top-p", "sample from the smallest set of tokens whose probability reaches P (default 1: all)", 0, 1);
        public readonly Option<ulong?> Seed = CliOptions.Seed("--seed", "seed of the sampling (default 1)");
        public readonly Option<int?> Samples = CliOptions.Int("--samples", "independent samples (default 1; 10 for --lines models)", 1, 10000);
        public readonly Option<bool> Json = CliOptions.Flag("--json", "print one JSON object (samples, tokens_per_second) as the last line of stdout");

        public IEnumerable<Option> All() => [Checkpoint, Prompt, Tokens, Temperature, TopK, TopP, Seed, Samples, Json];
    }

    internal static Command Create()
    {
        var o = new Options();
        var command = new NotedCommand("generate", "Generate text with a language model trained by 'backprop train text'.")
        {
            Notes = "Example: backprop generate --checkpoint names.safetensors --samples 10 --temperature 0.8",
        };
        foreach (var option in o.All()) command.Add(option);
        command.SetAction(r => Run(r, o, r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        return command;
    }

    private static int Run(ParseResult p, Options opt, TextWriter stdout, TextWriter stderr)
    {
        string path = p.GetValue(opt.Checkpoint) ?? throw new CliException("generate needs --checkpoint FILE, a checkpoint written by 'backprop train text --save'.");
        var sampling = new SamplingOptions(p.GetValue(opt.Temperature) ?? 1, p.GetValue(opt.TopK) ?? 0, p.GetValue(opt.TopP) ?? 1);
        if (sampling.Check() is string problem) throw new CliException(problem);
        var content = TrainCommand.LoadCheckpoint(path, "--checkpoint");
        var (options, tokenizer, boundary) = TextTrainer.Recorded(content, path, "--checkpoint");
        var model = TextModelFactory.Create(options, tokenizer.VocabSize, boundary, new Generator(options.Seed));
        try
        {
            content.Restore(model);
        }
        catch (CheckpointMismatchException e)
        {
            throw new CliException($"--checkpoint {Cli.OneLine(e.Message)}");
        }
        string prompt = p.GetValue(opt.Prompt) ?? "";
        int[] promptIds;
        try
        {
            promptIds = tokenizer.Encode(prompt);
        }
        catch (ArgumentException e)
        {
            throw new CliException($"--prompt: {Cli.OneLine(e.Message)}");
        }
        bool lines = options.Lines;
        // A --lines model starts every item after the boundary; a stream model with no prompt starts after a line break (or token 0).
        List<int> context = lines || promptIds.Length == 0 ? [boundary, .. promptIds] : [.. promptIds];
        int n = p.GetValue(opt.Tokens) ?? (lines ? 64 : 200);
        int samples = p.GetValue(opt.Samples) ?? (lines ? 10 : 1);
        var g = new Generator(p.GetValue(opt.Seed) ?? 1);
        var results = new List<string>();
        long generated = 0;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < samples; i++)
        {
            var toks = Sampler.Generate(model, context, n, sampling, g, TextModelFactory.MaxContext(options), lines ? boundary : null);
            generated += toks.Count;
            if (lines && toks.Count > 0 && toks[^1] == boundary) toks.RemoveAt(toks.Count - 1);
            string text = prompt + tokenizer.Decode(toks.ToArray());
            results.Add(text);
            (p.GetValue(opt.Json) ? stderr : stdout).WriteLine(text);
        }
        sw.Stop();
        if (p.GetValue(opt.Json))
            stdout.WriteLine(new JsonObject
            {
                ["checkpoint"] = path,
                ["model"] = options.Model,
                ["prompt"] = prompt,
                ["samples"] = new JsonArray([.. results.Select(s => (JsonNode)s)]),
                ["tokens"] = generated,
                ["seconds"] = sw.Elapsed.TotalSeconds,
                ["tokens_per_second"] = generated / Math.Max(sw.Elapsed.TotalSeconds, 1e-9),
            }.ToJsonString());
        return 0;
    }
}
