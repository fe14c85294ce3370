using System.Diagnostics;
using Backprop.Autograd;
using Backprop.NN;
using Backprop.Optim;
using Backprop.Text;

namespace Backprop.Bench;

/// <summary>
/// `gpt-profile [--steps 20] [--warmup-seconds 3]`: where a warm training step of the bench/compare GPT
/// (width 128, 4 layers, 4 heads, context 64, batch 32, vocab 65, AdamW) spends its time, per op, forward
/// and backward separately. Each op's time in each step is taken from <see cref="Engine.Probe"/>; the table
/// shows, per op, the sum over its uses in a step of the minimum over the timed steps (robust to a noisy,
/// shared machine), and the step's phases (forward, backward, optimizer) the same way.
/// </summary>
internal static class GptProfile
{
    public static int Run(string[] args)
    {
        int steps = Arg(args, "--steps", 20);
        double warm = Arg(args, "--warmup-seconds", 3);
        Threads.Count = Arg(args, "--threads", Threads.Count);
        // --cpu: this thread's CPU time (clock_gettime(CLOCK_THREAD_CPUTIME_ID), Linux) instead of wall time:
        // with --threads 1, the work of each op, little disturbed by other processes on a shared machine.
        Func<long> clock = args.Contains("--cpu") ? ThreadCpuTicks : Stopwatch.GetTimestamp;
        const int vocab = 65, context = 64, batch = 32;
        var g = new Generator(1);
        var model = new Gpt(vocab, context, layers: 4, width: 128, heads: 4, generator: g);
        var opt = new AdamW(model.Parameters(), lr: 1e-3);
        var xs = Enumerable.Range(0, 8).Select(_ => Tensor.RandInt(0, vocab, [batch, context], g)).ToArray();
        var ys = Enumerable.Range(0, 8).Select(_ => Tensor.RandInt(0, vocab, [batch * context], g)).ToArray();
        var events = new List<(string Name, long Ticks, bool Backward)>();
        long last = 0;
        var phases = new long[4];
        void Step(int i)
        {
            using var scope = Tensor.Scope();
            long t0 = clock();
            last = t0;
            var loss = Loss.CrossEntropy(model.Logits(xs[i % 8]).Reshape(batch * context, vocab), ys[i % 8]);
            long t1 = clock();
            opt.ZeroGrad();
            long t2 = clock();
            loss.Backward();
            long t3 = clock();
            opt.Step();
            long t4 = clock();
            (phases[0], phases[1], phases[2], phases[3]) = (t1 - t0, t2 - t1, t3 - t2, t4 - t3);
        }
        var sw = Stopwatch.StartNew();
        int it = 0;
        while (sw.Elapsed.TotalSeconds < warm) Step(it++);
        Engine.Probe = (name, bw) =>
        {
            long now = clock();
            if (name != null) events.Add((name, now - last, bw));
            last = now;
        };
        List<(string Name, long Ticks, bool Backward)>? mins = null;
        var phaseMin = new long[4] { long.MaxValue, long.MaxValue, long.MaxValue, long.MaxValue };
        var stepTimes = new List<double>();
        for (int s = 0; s < steps; s++)
        {
            events.Clear();
            long t = clock();
            Step(it++);
            stepTimes.Add((clock() - t) * 1000.0 / Stopwatch.Frequency);
            for (int p = 0; p < 4; p++) phaseMin[p] = Math.Min(phaseMin[p], phases[p]);
            if (mins == null) mins = [.. events];
            else
                for (int e = 0; e < Math.Min(mins.Count, events.Count); e++)
                    if (events[e].Ticks < mins[e].Ticks) mins[e] = events[e];
        }
        Engine.Probe = null;
        double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
        stepTimes.Sort();
        Console.WriteLine($"steps {steps}, threads {Threads.Count}, clock {(args.Contains("--cpu") ? "thread CPU" : "wall")}; step ms: min {stepTimes[0]:F1}, median {stepTimes[stepTimes.Count / 2]:F1}");
        Console.WriteLine($"phases (min ms): forward {Ms(phaseMin[0]):F2}, zero_grad {Ms(phaseMin[1]):F2}, backward {Ms(phaseMin[2]):F2}, optimizer {Ms(phaseMin[3]):F2}");
        var groups = mins!.GroupBy(e => (e.Name, e.Backward))
            .Select(gr => (gr.Key.Name, gr.Key.Backward, Count: gr.Count(), Ms: gr.Sum(e => Ms(e.Ticks))))
            .OrderByDescending(x => x.Ms);
        Console.WriteLine("| op | pass | uses/step | ms/step (sum of per-use minima) |");
        Console.WriteLine("|---|---|---:|---:|");
        foreach (var (name, bw, count, ms) in groups)
            Console.WriteLine($"| {name} | {(bw ? "backward" : "forward")} | {count} | {ms:F2} |");
        return 0;
    }

    /// <summary>`gpt-gemm`: GFLOP/s of the GPT step's GEMM shapes (min-of-N time each), beside 1024³, in one process.</summary>
    public static unsafe int Gemms(string[] args)
    {
        int reps = Arg(args, "--reps", 30);
        Threads.Count = Arg(args, "--threads", Threads.Count);
        Func<long> clock = args.Contains("--cpu") ? ThreadCpuTicks : Stopwatch.GetTimestamp;
        // (transA, transB, m, n, k, label)
        var shapes = new (bool, bool, int, int, int, string)[]
        {
            (false, true, 2048, 384, 128, "c_attn fwd  x·Wᵀ"), (false, false, 2048, 128, 384, "c_attn dX   dY·W"), (true, false, 384, 128, 2048, "c_attn dW   dYᵀ·X"),
            (false, true, 2048, 128, 128, "c_proj fwd"), (false, false, 2048, 128, 128, "c_proj dX"), (true, false, 128, 128, 2048, "c_proj dW"),
            (false, true, 2048, 512, 128, "c_fc fwd"), (false, false, 2048, 128, 512, "c_fc dX"), (true, false, 512, 128, 2048, "c_fc dW"),
            (false, true, 2048, 128, 512, "mlp_proj fwd"), (false, false, 2048, 512, 128, "mlp_proj dX"), (true, false, 128, 512, 2048, "mlp_proj dW"),
            (false, true, 2048, 65, 128, "head fwd"), (false, false, 2048, 128, 65, "head dX"), (true, false, 65, 128, 2048, "head dW"),
            (false, false, 1024, 1024, 1024, "1024³"),
        };
        var a = new float[1024 * 2048];
        var b = new float[1024 * 2048];
        var c = new float[1024 * 2048];
        var rng = new Random(1);
        for (int i = 0; i < a.Length; i++) { a[i] = (float)rng.NextDouble(); b[i] = (float)rng.NextDouble(); }
        Console.WriteLine($"threads {Threads.Count}; {Backends.Cpu.Gemm.Describe()}");
        Console.WriteLine("| product | m×n×k | min µs | GFLOP/s |");
        Console.WriteLine("|---|---|---:|---:|");
        double total = 0;
        foreach (var (ta, tb, m, n, k, label) in shapes)
        {
            int lda = ta ? m : k, ldb = tb ? k : n;
            double best = double.MaxValue;
            for (int r = 0; r < reps + 5; r++)
            {
                long t0 = clock();
                Backends.Cpu.Gemm.Sgemm(ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, c, n);
                double us = (clock() - t0) * 1e6 / Stopwatch.Frequency;
                if (r >= 5) best = Math.Min(best, us);
            }
            if (m < 1024) total += best;
            Console.WriteLine($"| {label} | {m}×{n}×{k} | {best:F0} | {2.0 * m * n * k / best / 1e3:F0} |");
        }
        Console.WriteLine($"sum of one block's 12 Linear products + head: {total / 1000:F2} ms (×4 blocks ≈ {(total * 4) / 1000:F1} ms)");
        return 0;
    }

    /// <summary>`gpt-micro`: min-of-N time of the GPT step's non-GEMM kernels at its shapes.</summary>
    public static int Micro(string[] args)
    {
        int reps = Arg(args, "--reps", 30);
        Threads.Count = Arg(args, "--threads", Threads.Count);
        Func<long> clock = args.Contains("--cpu") ? ThreadCpuTicks : Stopwatch.GetTimestamp;
        var g = new Generator(1);
        var x512 = Tensor.Randn([2048, 512], g);
        var dy512 = Tensor.Randn([2048, 512], g);
        var x128 = Tensor.Randn([2048, 128], g);
        var dy128 = Tensor.Randn([2048, 128], g);
        var w = Tensor.Randn([128], g);
        var b512 = Tensor.Randn([512], g);
        var y512 = Tensor.Zeros([2048, 512]);
        var acc = Tensor.Zeros([512]);
        var qkv = Tensor.Randn([32, 64, 384], g);
        var att = Tensor.Randn([32, 64, 128], g);
        var cases = new (string, Action)[]
        {
            ("bias copy [2048,512]", () => y512.Backend.Copy(b512.V, y512.V)),
            ("GELU fwd [2048,512]", () => y512.Backend.Unary(Backends.UnaryOp.Gelu, x512.V, y512.V)),
            ("GELU bwd [2048,512]", () => y512.Backend.Binary(Backends.BinaryOp.GeluGrad, dy512.V, x512.V, y512.V)),
            ("row sums [2048,512]", () => y512.Backend.AddRowSums(dy512.V, acc.V)),
            ("add [2048,128]", () => { using var s = Tensor.Scope(); _ = x128 + dy128; }),
            ("LayerNorm fwd+bwd [2048,128]", () =>
            {
                using var s = Tensor.Scope();
                var xr = x128.Detach().RequiresGrad_();
                var wr = w.Detach().RequiresGrad_();
                Functional.LayerNorm(xr, wr, wr).Backward(dy128);
            }),
            ("LayerNorm fwd [2048,128]", () => { using var s = Tensor.Scope(); using var ng = Tensor.NoGrad(); Functional.LayerNorm(x128, w, w); }),
            ("attention fwd [32,64,384]", () => { using var s = Tensor.Scope(); using var ng = Tensor.NoGrad(); Functional.SelfAttention(qkv, 4); }),
            ("attention fwd+bwd [32,64,384]", () =>
            {
                using var s = Tensor.Scope();
                var q = qkv.Detach().RequiresGrad_();
                Functional.SelfAttention(q, 4).Backward(att);
            }),
        };
        Console.WriteLine($"threads {Threads.Count}, clock {(args.Contains("--cpu") ? "thread CPU" : "wall")}");
        Console.WriteLine("| kernel | min µs |");
        Console.WriteLine("|---|---:|");
        foreach (var (label, act) in cases)
        {
            double best = double.MaxValue;
            for (int r = 0; r < reps + 5; r++)
            {
                long t0 = clock();
                act();
                double us = (clock() - t0) * 1e6 / Stopwatch.Frequency;
                if (r >= 5) best = Math.Min(best, us);
            }
            Console.WriteLine($"| {label} | {best:F0} |");
        }
        return 0;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGettime(int clock, out Timespec ts);

    private struct Timespec { public long Sec, Nsec; }

    /// <summary>This thread's CPU time in Stopwatch ticks.</summary>
    private static long ThreadCpuTicks()
    {
        ClockGettime(3, out var ts); // CLOCK_THREAD_CPUTIME_ID
        return (long)((ts.Sec * 1_000_000_000L + ts.Nsec) * (Stopwatch.Frequency / 1e9));
    }

    private static int Arg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }
}
