using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Backprop.Data;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Bench;

/// <summary>
/// The long-run check: trains an MLP (784-256-128-10, Adam, batch 128) for a fixed time and samples
/// working set, managed heap and GC counts at a fixed interval. Memory must stay flat after warm-up
/// and Gen2 collections must stay rare; the exit code says whether they did.
/// </summary>
public static class Soak
{
    public static int Run(string[] args)
    {
        double minutes = Arg(args, "--minutes", 10);
        double interval = Arg(args, "--interval", 10);
        double maxGrowthMb = Arg(args, "--max-growth-mb", 32);
        double maxGen2PerMinute = Arg(args, "--max-gen2-per-minute", 2);
        bool json = args.Contains("--json");
        var gen = new Generator(1);
        // Synthetic MNIST-shaped data: the soak measures the framework, not the disk.
        var data = new TensorDataset(Tensor.Rand([8192, 784], gen), Tensor.RandInt(0, 10, [8192], gen));
        var loader = new DataLoader(data, 128, shuffle: true, seed: 1, recycleBatches: true);
        var model = new Sequential(new Linear(784, 256, generator: gen), new Relu(), new Linear(256, 128, generator: gen), new Relu(), new Linear(128, 10, generator: gen));
        var opt = new Adam(model.Parameters(), lr: 1e-3);
        var proc = Process.GetCurrentProcess();
        var samples = new List<JsonObject>();
        var total = Stopwatch.StartNew();
        var nextSample = TimeSpan.Zero;
        long steps = 0;
        int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
        double lastLoss = 0;
        while (total.Elapsed.TotalMinutes < minutes)
        {
            foreach (var (x, y) in loader)
            {
                using (Tensor.Scope())
                {
                    var loss = Loss.CrossEntropy(model.Forward(x), y);
                    opt.ZeroGrad();
                    loss.Backward();
                    opt.Step();
                    lastLoss = loss.ItemDouble();
                }
                steps++;
                if (total.Elapsed >= nextSample)
                {
                    proc.Refresh();
                    var s = new JsonObject
                    {
                        ["seconds"] = Math.Round(total.Elapsed.TotalSeconds, 1),
                        ["steps"] = steps,
                        ["working_set_mb"] = Math.Round(proc.WorkingSet64 / 1048576.0, 1),
                        ["managed_heap_mb"] = Math.Round(GC.GetTotalMemory(false) / 1048576.0, 2),
                        ["gen0"] = GC.CollectionCount(0) - gen0,
                        ["gen1"] = GC.CollectionCount(1) - gen1,
                        ["gen2"] = GC.CollectionCount(2) - gen2,
                        ["allocated_mb"] = Math.Round(GC.GetTotalAllocatedBytes() / 1048576.0, 1),
                        ["loss"] = Math.Round(lastLoss, 4),
                    };
                    samples.Add(s);
                    if (!json) Console.WriteLine(s.ToJsonString());
                    nextSample += TimeSpan.FromSeconds(interval);
                }
                if (total.Elapsed.TotalMinutes >= minutes) break;
            }
        }
        // Growth is judged after warm-up: from the second sample (pools and JIT settled) to the last.
        var baseline = samples.Count > 1 ? samples[1] : samples[0];
        var last = samples[^1];
        double growth = (double)last["working_set_mb"]! - (double)baseline["working_set_mb"]!;
        double heapGrowth = (double)last["managed_heap_mb"]! - (double)baseline["managed_heap_mb"]!;
        int gen2Total = GC.CollectionCount(2) - gen2;
        double gen2PerMinute = gen2Total / Math.Max(total.Elapsed.TotalMinutes, 1e-9);
        bool ok = growth <= maxGrowthMb && gen2PerMinute <= maxGen2PerMinute;
        var result = new JsonObject
        {
            ["benchmark"] = "soak",
            ["model"] = "mlp:784-256-128-10 relu adam batch 128",
            ["seconds"] = Math.Round(total.Elapsed.TotalSeconds, 1),
            ["steps"] = steps,
            ["steps_per_second"] = Math.Round(steps / total.Elapsed.TotalSeconds, 1),
            ["working_set_growth_mb"] = Math.Round(growth, 1),
            ["managed_heap_growth_mb"] = Math.Round(heapGrowth, 2),
            ["gen0"] = GC.CollectionCount(0) - gen0,
            ["gen1"] = GC.CollectionCount(1) - gen1,
            ["gen2"] = gen2Total,
            ["gen2_per_minute"] = Math.Round(gen2PerMinute, 2),
            // steady state, from the baseline sample on (the start allocates the data set and the pools)
            ["allocated_bytes_per_step"] = Math.Round(((double)last["allocated_mb"]! - (double)baseline["allocated_mb"]!) * 1048576.0 /
                Math.Max((long)last["steps"]! - (long)baseline["steps"]!, 1)),
            ["passed"] = ok,
            ["samples"] = new JsonArray(samples.Select(x => (JsonNode)x).ToArray()),
        };
        Console.WriteLine(result.ToJsonString());
        if (!ok)
            Console.Error.WriteLine($"soak: FAILED: working set grew {growth:F1} MB (limit {maxGrowthMb}), {gen2PerMinute:F2} Gen2 collections per minute (limit {maxGen2PerMinute}).");
        return ok ? 0 : 1;
    }

    private static double Arg(string[] args, string name, double fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
