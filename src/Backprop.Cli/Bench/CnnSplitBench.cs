using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Backprop.Cli.Training;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Cli.Bench;

// backprop bench cnn-split: where the time of the CNN preset's training step goes. Each layer of the
// preset is timed alone (its forward on the input the layers before it produce, then its backward from
// a fixed output gradient), then the loss and the Adam step, next to the whole step (as `bench model cnn` runs it).
// A batch norm followed by a ReLU (and a max pooling) is also timed as the fused op the step runs
// (fused_parts, not in the sum).
public static partial class BenchCommand
{
    private static Command CreateCnnSplit(Option<int?> threads, Option<bool> json)
    {
        var seconds = CliOptions.Double("--seconds", "timed seconds per part (default 1)", 0.01, 600);
        var batch = CliOptions.Int("--batch", "samples per step (default 128, the preset's)", 1, 65536, "B");
        var cmd = new Command("cnn-split",
            "time per part of the CNN preset's training step (each layer's forward + backward, the loss, the Adam step), batch 128");
        cmd.Add(seconds);
        cmd.Add(batch);
        cmd.SetAction(r => Report(r, threads, json, () => CnnSplit(r.GetValue(seconds) ?? 1, r.GetValue(batch) ?? 128)));
        return cmd;
    }

    private static JsonObject CnnSplit(double seconds, int batch)
    {
        var g = new Generator(1);
        var model = CnnSpec.Parse(CnnSpec.Preset, "cnn").Build(g);
        model.Train();
        var opt = new Adam(model.Parameters(), lr: 2e-3);
        var x = Tensor.Rand([batch, 1, 28, 28], g);
        var labels = Tensor.RandInt(0, 10, [batch], g);

        var parts = new JsonArray();
        var fused = new JsonArray();
        double total = 0;
        void Add(string name, Action step)
        {
            var (wall, cpu) = TimePerStep(step, seconds);
            total += wall * 1e3;
            parts.Add(new JsonObject { ["part"] = name, ["milliseconds"] = Math.Round(wall * 1e3, 3), ["cpu_milliseconds"] = Math.Round(cpu * 1e3, 3) });
        }

        // a fused op's forward + backward from a fixed output gradient (listed apart, not in the sum)
        void AddFused(string name, Tensor input, Tensor dy, Func<Tensor> forward)
        {
            var (wall, cpu) = TimePerStep(() =>
            {
                using var scope = Tensor.Scope();
                opt.ZeroGrad();
                forward().Backward(dy);
                input.Grad = null;
            }, seconds);
            fused.Add(new JsonObject { ["part"] = name, ["milliseconds"] = Math.Round(wall * 1e3, 3), ["cpu_milliseconds"] = Math.Round(cpu * 1e3, 3) });
        }

        var input = x;
        int index = 0;
        foreach (var layer in model.Layers)
        {
            var xi = index <= 1 ? input : input.Detach().RequiresGrad_(); // the image (and its reshape) needs no gradient
            Tensor y0;
            using (Tensor.NoGrad()) y0 = layer.Forward(input);
            if (index == 0) { input = y0; index++; continue; } // the input reshape: no arithmetic, no gradient
            var dy = Tensor.RandnLike(y0, g);
            string name = $"{index} {layer.GetType().Name} {string.Join("x", xi.Shape.ToArray().Skip(1))} -> {string.Join("x", y0.Shape.ToArray().Skip(1))}";
            Add(name, () =>
            {
                using var scope = Tensor.Scope();
                opt.ZeroGrad();
                layer.Forward(xi).Backward(dy);
                xi.Grad = null;
            });
            if (layer is BatchNormBase bn && index + 1 < model.Count && model[index + 1] is Relu)
            {
                string shape = string.Join("x", xi.Shape.ToArray().Skip(1));
                // the pair as the step runs it: one fused op (Sequential fuses batch norm + ReLU)
                AddFused($"{index}+{index + 1} {layer.GetType().Name}+Relu (fused) {shape}", xi, Tensor.RandnLike(y0, g),
                    () => Functional.BatchNormRelu(xi, bn.RunningMean, bn.RunningVar, bn.Weight, bn.Bias, training: true, eps: bn.Eps));
                if (index + 2 < model.Count && model[index + 2] is MaxPool2d pool)
                {
                    // and with the max pooling after them, as the training step runs the three
                    Tensor pooled;
                    using (Tensor.NoGrad()) pooled = Functional.MaxPool2d(y0, pool.KernelSize);
                    AddFused($"{index}+{index + 1}+{index + 2} {layer.GetType().Name}+Relu+MaxPool2d (fused) {shape}", xi, Tensor.RandnLike(pooled, g),
                        () => Functional.BatchNormReluMaxPool2d(xi, bn.RunningMean, bn.RunningVar, bn.Weight, bn.Bias, training: true, momentum: 0.1,
                            eps: bn.Eps, pool.KernelSize));
                }
            }
            input = y0;
            index++;
        }
        var logits = input.Detach().RequiresGrad_();
        Add("loss (cross-entropy forward + backward)", () =>
        {
            using var scope = Tensor.Scope();
            Loss.CrossEntropy(logits, labels).Backward();
            logits.Grad = null;
        });
        // a real gradient in every parameter, then the optimizer alone
        using (Tensor.Scope()) { opt.ZeroGrad(); Loss.CrossEntropy(model.Forward(x), labels).Backward(); }
        Add("Adam step", () => { using var scope = Tensor.Scope(); opt.Step(); });

        // the whole training step, as `bench model cnn` runs it (one batch here, where it cycles through a pool)
        var (stepWall, stepCpu) = TimePerStep(() =>
        {
            using var scope = Tensor.Scope();
            var loss = Loss.CrossEntropy(model.Forward(x), labels);
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
        }, seconds);
        return new JsonObject
        {
            ["benchmark"] = "cnn-split",
            ["model"] = CnnSpec.Preset,
            ["batch"] = batch,
            ["parts"] = parts,
            ["fused_parts"] = fused,
            ["sum_of_parts_milliseconds"] = Math.Round(total, 3),
            ["whole_step_milliseconds"] = Math.Round(stepWall * 1e3, 3),
            ["whole_step_cpu_milliseconds"] = Math.Round(stepCpu * 1e3, 3),
            ["note"] = "milliseconds: wall-clock per step; cpu_milliseconds: the process's CPU time per step (all threads; on a shared machine the steadier figure)",
        };
    }

    /// <summary>
    /// Wall-clock and process CPU seconds per call of <paramref name="step"/>: half a second of warm-up, then as
    /// many calls as fit in the time.
    /// </summary>
    private static (double Wall, double Cpu) TimePerStep(Action step, double seconds)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < Math.Min(0.5, seconds)) step();
        int n = 0;
        var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        sw.Restart();
        while (sw.Elapsed.TotalSeconds < seconds || n < 3) { step(); n++; }
        double wall = sw.Elapsed.TotalSeconds;
        process.Refresh();
        return (wall / n, (process.TotalProcessorTime - cpu0).TotalSeconds / n);
    }
}
