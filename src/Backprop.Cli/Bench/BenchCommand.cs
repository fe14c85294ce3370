using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Backprop.Backends.Cpu;

namespace Backprop.Cli.Bench;

/// <summary><c>backprop bench gemm|peak|model</c>: speed measurements anyone can rerun on their own machine.</summary>
public static partial class BenchCommand
{
    // Readable JSON: "·", "≤" and "<" as themselves rather than \u escapes (still valid JSON).
    private static readonly JsonSerializerOptions JsonOut = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The command and its subcommands gemm, peak and model, for the command tree of <see cref="Cli"/>.</summary>
    internal static Command Create()
    {
        // On "bench" and every benchmark: "bench --json gemm" and "bench gemm --json" both work.
        var threads = CliOptions.Int("--threads", "threads for the kernels (default: the cores, or BACKPROP_THREADS)", 1, 1024, "T");
        threads.Recursive = true;
        var json = CliOptions.Flag("--json", "print one JSON object (the last line of stdout)");
        json.Recursive = true;
        var bench = new NotedCommand("bench", "Measure GEMM GFLOP/s, the FMA peak, or a model's training speed.") { Notes = "Always in Release: dotnet run -c Release --project src/Backprop.Cli -- bench ..." };
        bench.Add(threads);
        bench.Add(json);
        bench.SetAction(Cli.ShowHelpAndFail);

        var size = CliOptions.Int("--size", "N of the N x N x N product (default 1024)", 1, 16384);
        var repeats = CliOptions.Int("--repeats", "timed repeats; the median is reported (default 9)", 1, 1000, "R");
        var gemm = new Command("gemm", "GFLOP/s of an N x N x N single-precision product (median of R timed repeats after about a second of warm-up)");
        gemm.Add(size);
        gemm.Add(repeats);
        gemm.SetAction(r => Report(r, threads, json, () => GemmBench(r.GetValue(size) ?? 1024, r.GetValue(repeats) ?? 9)));

        var peak = new Command("peak", "the machine's FP32 FMA peak, from an unrolled loop of independent FMA chains on every thread");
        peak.SetAction(r => Report(r, threads, json, PeakBench));

        var name = CliOptions.Positionals("name", $"the benchmark model: {string.Join(", ", BenchModels.Names)}", BenchModels.Names);
        var steps = CliOptions.Int("--steps", "timed training steps (default: about 3 seconds' worth)", 1, int.MaxValue, "S");
        var warmup = CliOptions.Double("--warmup-seconds", "untimed warm-up (default 2)", 0, 600);
        var model = new NotedCommand("model", "training throughput of a benchmark model on fixed synthetic batches")
        {
            Notes = """
                Models:
                  mlp-small   784-16-16-10 sigmoid, SGD, batch 10
                  mlp-256     784-256-128-10 ReLU, Adam, batch 128
                  window-lm   fixed-window character language model, Adam, batch 128
                  gpt         GPT width 128, 4 layers, 4 heads, context 64, AdamW, batch 32
                  lstm        character LSTM language model (embedding 64, LSTM 256, context 64), Adam, batch 32
                  cnn         the --model cnn preset (two 3x3 conv + batch norm + ReLU + 2x2 max pool blocks), Adam, batch 128
                """,
        };
        model.Add(name);
        model.Add(steps);
        model.Add(warmup);
        model.SetAction(r =>
        {
            var names = r.GetValue(name) ?? [];
            if (names.Length != 1)
                throw new CliException($"'bench model' takes one model name: {string.Join(", ", BenchModels.Names)}.");
            return Report(r, threads, json, () => ModelBench(names[0], r.GetValue(steps) ?? 0, r.GetValue(warmup) ?? 2));
        });

        bench.Add(gemm);
        bench.Add(peak);
        bench.Add(model);
        bench.Add(AllReduceBench.Create(json));
        bench.Add(CreateConv(threads, json));
        bench.Add(CreateCnnSplit(threads, json));
        return bench;
    }

    /// <summary>Runs a benchmark with the thread count asked for, and prints its result.</summary>
    private static int Report(ParseResult r, Option<int?> threadsOption, Option<bool> jsonOption, Func<JsonObject> measure)
    {
        int threads = r.GetValue(threadsOption) ?? Threads.Count;
        var stdout = r.InvocationConfiguration.Output;
        int previous = Threads.Count;
        Threads.Count = threads;
        try
        {
            var result = measure();
            result["threads"] = threads;
            if (r.GetValue(jsonOption)) stdout.WriteLine(result.ToJsonString(JsonOut));
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

    private static unsafe JsonObject GemmBench(int n, int repeats)
    {
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

    private static JsonObject PeakBench()
    {
        double gflops = FmaPeak.MeasureGflops(Threads.Count, TimeSpan.FromSeconds(1));
        return new JsonObject
        {
            ["benchmark"] = "peak",
            ["gflops"] = Math.Round(gflops, 1),
            ["vector_bits"] = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? 512 : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? 256 : 128,
        };
    }

    private static JsonObject ModelBench(string name, int steps, double warmup)
    {
        var model = BenchModels.Create(name);
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
        var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        sw.Restart();
        for (int s = 0; s < steps; s++) model.Step(i++);
        sw.Stop();
        process.Refresh();
        double cpuSeconds = (process.TotalProcessorTime - cpu0).TotalSeconds;
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
            // the process's CPU time (all threads) per timed step: the steadier figure on a shared machine
            ["cpu_microseconds_per_step"] = Math.Round(cpuSeconds / steps * 1e6, 2),
            ["unit"] = model.Unit,
            ["allocated_bytes_per_step"] = alloc / steps,
        };
    }
}
