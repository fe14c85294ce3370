using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Backprop.Backends.Cpu;
using Backprop.NN;

namespace Backprop.Cli.Bench;

// backprop bench conv: Conv2d forward + backward GFLOP/s on the layer shapes of the small MNIST CNN
// (conv 1->32 3x3 pad 1 on 28x28 and 32->64 3x3 pad 1 on 14x14, batch 128), next to the FMA peak.
public static partial class BenchCommand
{
    private static Command CreateConv(Option<int?> threads, Option<bool> json)
    {
        var batch = CliOptions.Int("--batch", "samples per step (default 128)", 1, 65536, "B");
        var seconds = CliOptions.Double("--seconds", "timed seconds per layer (default 2)", 0.1, 600);
        var conv = new Command("conv",
            "Conv2d forward + backward GFLOP/s on the small MNIST CNN's layers (1->32 3x3 pad 1 on 28x28, 32->64 3x3 pad 1 on 14x14), next to the FMA peak");
        conv.Add(batch);
        conv.Add(seconds);
        conv.SetAction(r => Report(r, threads, json, () => ConvBench(r.GetValue(batch) ?? 128, r.GetValue(seconds) ?? 2)));
        return conv;
    }

    private static JsonObject ConvBench(int batch, double seconds)
    {
        var layers = new JsonArray
        {
            ConvLayer("conv1 1->32 3x3 pad 1, 28x28", batch, 1, 32, 28, inputGrad: false, seconds),
            ConvLayer("conv2 32->64 3x3 pad 1, 14x14", batch, 32, 64, 14, inputGrad: true, seconds),
        };
        double peak = FmaPeak.MeasureGflops(Threads.Count, TimeSpan.FromSeconds(1));
        double flops = 0, time = 0;
        foreach (var l in layers)
        {
            flops += (double)l!["gflop_per_step"]! * 1e9;
            time += (double)l["milliseconds_per_step"]! / 1e3;
        }
        double total = flops / time / 1e9;
        return new JsonObject
        {
            ["benchmark"] = "conv",
            ["batch"] = batch,
            ["algorithm"] = "im2col + packed GEMM per sample and group, threads over the batch",
            ["layers"] = layers,
            ["gflops_both_layers"] = Math.Round(total, 1),
            ["fma_peak_gflops"] = Math.Round(peak, 1),
            ["percent_of_peak"] = Math.Round(100 * total / peak, 1),
        };
    }

    /// <summary>One layer's training step (forward, weight and bias gradients, and the input gradient when asked), timed.</summary>
    private static JsonObject ConvLayer(string name, int batch, int cin, int cout, int size, bool inputGrad, double seconds)
    {
        var g = new Generator(1);
        var x = Tensor.Randn([batch, cin, size, size], g);
        if (inputGrad) x.RequiresGrad_();
        var layer = new Conv2d(cin, cout, 3, padding: 1, generator: g);
        var dy = Tensor.Randn([batch, cout, size, size], g);
        void Step()
        {
            using var scope = Tensor.Scope();
            var y = layer.Forward(x);
            y.Backward(dy);
        }
        // forward, weight gradient, and (for the second layer) input gradient: each 2·N·O·H·W·C·9 FLOPs
        double macs = (double)batch * cout * size * size * cin * 9;
        double flopsPerStep = 2 * macs * (inputGrad ? 3 : 2);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < 1) Step(); // JIT tiers, pools, workers
        long allocBefore = GC.GetTotalAllocatedBytes(precise: true);
        int steps = 0;
        sw.Restart();
        while (sw.Elapsed.TotalSeconds < seconds) { Step(); steps++; }
        sw.Stop();
        long alloc = GC.GetTotalAllocatedBytes(precise: true) - allocBefore;
        double perStep = sw.Elapsed.TotalSeconds / steps;
        return new JsonObject
        {
            ["layer"] = name,
            ["passes"] = inputGrad ? "forward, input grad, weight+bias grad" : "forward, weight+bias grad (the input is the image)",
            ["gflop_per_step"] = Math.Round(flopsPerStep / 1e9, 4),
            ["milliseconds_per_step"] = Math.Round(perStep * 1e3, 3),
            ["gflops"] = Math.Round(flopsPerStep / perStep / 1e9, 1),
            ["steps"] = steps,
            ["allocated_bytes_per_step"] = alloc / steps,
        };
    }
}
