using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Backprop.Backends.Cpu;

namespace Backprop.Cli.Bench;

/// <summary><c>backprop bench gemm|peak|model</c>: speed measurements anyone can rerun on their own machine.</summary>
public static class BenchCommand
{
    // Readable JSON: "·", "≤" and "<" as themselves rather than \u escapes (still valid JSON).
    private static readonly JsonSerializerOptions JsonOut = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Options that take no value.</summary>
    public static readonly string[] Flags = ["json", "help"];

    private const string Help = """
        usage:
          backprop bench gemm --size N [--threads T] [--repeats R] [--json]
              GFLOP/s of an N x N x N single-precision product (median of R timed repeats after warm-up)
          backprop bench peak [--threads T] [--json]
              the machine's FP32 FMA peak, from an unrolled loop of independent FMAs
          backprop bench model NAME [--steps S] [--threads T] [--warmup-seconds W] [--json]
              training throughput of a benchmark model on fixed synthetic batches:
              mlp-small (784-16-16-10 sigmoid, SGD, batch 10), mlp-256 (784-256-128-10 ReLU, Adam, batch 128),
              window-lm (fixed-window character model, Adam, batch 128)
        """;

    /// <summary>Runs the command.</summary>
    public static int Run(CliArgs args, TextWriter stdout)
    {
        if (args.Flag("help") || args.Positionals.Count == 0)
        {
            stdout.WriteLine(Help);
            return args.Positionals.Count == 0 && !args.Flag("help") ? 2 : 0;
        }
        int threads = args.Int("threads", Threads.Count, 1, 1024);
        bool json = args.Flag("json");
        int previous = Threads.Count;
        Threads.Count = threads;
        try
        {
            var what = args.Positionals[0];
            JsonObject result = what switch
            {
                "gemm" => GemmBench(args),
                "peak" => PeakBench(args),
                "model" => ModelBench(args),
                _ => throw new CliException($"unknown benchmark '{what}'; expected gemm, peak or model."),
            };
            result["threads"] = threads;
            if (json) stdout.WriteLine(result.ToJsonString(JsonOut));
            else
                foreach (var (k, v) in result)
                    stdout.WriteLine($"{k,-22} {(v is JsonValue s && s.TryGetValue(out string? text) ? text : v?.ToJsonString(JsonOut))}");
            return 0;
        }
        finally
        {
            Threads.Count = previous;
        }
    }

    private static unsafe JsonObject GemmBench(CliArgs args)
    {
        if (args.Positionals.Count != 1) throw new CliException("'bench gemm' takes no positional arguments beyond 'gemm'.");
        int n = args.Int("size", 1024, 1, 16384);
        int repeats = args.Int("repeats", 9, 1, 1000);
        args.RejectUnknown("bench");
        var g = new Generator(1);
        var a = Tensor.Rand([n, n], g).ToArray();
        var b = Tensor.Rand([n, n], g).ToArray();
        var c = new float[(long)n * n];
        double flops = 2.0 * n * n * n;
        void Once()
        {
            fixed (float* pa = a, pb = b, pc = c) Gemm.Sgemm(false, false, n, n, n, 1f, pa, n, pb, n, 0f, pc, n);
        }
        // Warm up (JIT tiers, pack buffers, worker threads) for about a second, then time repeats of ~0.2 s each.
        var sw = Stopwatch.StartNew();
        int perRepeat = 0;
        while (sw.Elapsed.TotalSeconds < 1) { Once(); perRepeat++; }
        perRepeat = Math.Max(1, perRepeat / 5);
        var rates = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            sw.Restart();
            for (int i = 0; i < perRepeat; i++) Once();
            rates[r] = flops * perRepeat / sw.Elapsed.TotalSeconds / 1e9;
        }
        Array.Sort(rates);
        return new JsonObject
        {
            ["benchmark"] = "gemm",
            ["size"] = n,
            ["gflops"] = Math.Round(rates[repeats / 2], 1),
            ["gflops_min"] = Math.Round(rates[0], 1),
            ["gflops_max"] = Math.Round(rates[^1], 1),
            ["repeats"] = repeats,
            ["kernel"] = Gemm.Describe(),
        };
    }

    private static JsonObject PeakBench(CliArgs args)
    {
        if (args.Positionals.Count != 1) throw new CliException("'bench peak' takes no positional arguments beyond 'peak'.");
        args.RejectUnknown("bench");
        double gflops = FmaPeak.MeasureGflops(Threads.Count, TimeSpan.FromSeconds(1));
        return new JsonObject
        {
            ["benchmark"] = "peak",
            ["gflops"] = Math.Round(gflops, 1),
            ["vector_bits"] = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? 512 : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? 256 : 128,
        };
    }

    private static JsonObject ModelBench(CliArgs args)
    {
        if (args.Positionals.Count != 2)
            throw new CliException($"'bench model' takes one model name: {string.Join(", ", BenchModels.Names)}.");
        int steps = args.Int("steps", 0, 1, int.MaxValue);
        double warmup = args.Double("warmup-seconds", 2, 0, 600);
        args.RejectUnknown("bench");
        var model = BenchModels.Create(args.Positionals[1]);
        var sw = Stopwatch.StartNew();
        int i = 0;
        while (sw.Elapsed.TotalSeconds < warmup) model.Step(i++); // tiered JIT settles in the first second or two
        if (steps == 0)
        {
            // Default: as many steps as fit in about 3 seconds.
            sw.Restart();
            int probe = 0;
            while (sw.Elapsed.TotalSeconds < 0.3) { model.Step(i++); probe++; }
            steps = Math.Max(10, (int)(probe * 10));
        }
        long allocBefore = GC.GetAllocatedBytesForCurrentThread();
        sw.Restart();
        for (int s = 0; s < steps; s++) model.Step(i++);
        sw.Stop();
        long alloc = GC.GetAllocatedBytesForCurrentThread() - allocBefore;
        double seconds = sw.Elapsed.TotalSeconds;
        return new JsonObject
        {
            ["benchmark"] = "model",
            ["model"] = model.Name,
            ["description"] = model.Description,
            ["steps"] = steps,
            ["seconds"] = Math.Round(seconds, 4),
            ["microseconds_per_step"] = Math.Round(seconds / steps * 1e6, 2),
            ["samples_per_second"] = Math.Round(model.SamplesPerStep * steps / seconds, 1),
            ["unit"] = model.Unit,
            ["allocated_bytes_per_step"] = alloc / steps,
        };
    }
}
