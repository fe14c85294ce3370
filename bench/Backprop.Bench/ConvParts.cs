using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Backprop.Backends;
using Backprop.Backends.Cpu;

namespace Backprop.Bench;

/// <summary>
/// `conv-parts [--batch B] [--rounds R]`: the CNN preset's second convolution (32→64, 3×3 pad 1,
/// 14×14), one thread: each of im2col, col2im and the three per-sample GEMMs alone (per sample),
/// next to the whole forward, input-gradient and weight-gradient passes of the batch, so what the
/// passes cost beyond their GEMMs shows.
/// </summary>
internal static unsafe class ConvParts
{
    private static void Natural(Action f)
    {
        ConvKernels<float>.TransposeMode = 1;
        try { f(); }
        finally { ConvKernels<float>.TransposeMode = 0; }
    }

    public static int Run(string[] args)
    {
        int batch = 128, rounds = 5;
        for (int i = 0; i < args.Length; i++)
            switch (args[i])
            {
                case "--batch": batch = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"conv-parts: unknown option '{args[i]}'");
            }
        Threads.Count = 1;
        var g = new ConvGeometry(batch, 32, 14, 14, 64, 3, 3, 14, 14, 1, 1, 1, 1, 1, 1, 1);
        int rows = g.Rows, plane = 196;
        var x = Tensor.Randn([batch, 32, 14, 14]);
        var w = Tensor.Randn([64, 32, 3, 3]);
        var bias = Tensor.Randn([64]);
        var y = Tensor.Zeros(batch, 64, 14, 14);
        var dy = Tensor.Randn([batch, 64, 14, 14]);
        var dx = Tensor.Zeros(batch, 32, 14, 14);
        var dw = Tensor.Zeros(64, 32, 3, 3);
        float* col = (float*)NativeMemory.AlignedAlloc((nuint)(rows * plane * 4), 64);
        float* src = (float*)NativeMemory.AlignedAlloc((nuint)(32 * plane * 4), 64);
        float* wt = (float*)NativeMemory.AlignedAlloc((nuint)(64 * rows * 4), 64);
        float* o = (float*)NativeMemory.AlignedAlloc((nuint)(rows * plane * 4), 64);
        var rng = new Random(1);
        for (int i = 0; i < 32 * plane; i++) src[i] = (float)rng.NextDouble();
        for (int i = 0; i < rows * plane; i++) col[i] = (float)rng.NextDouble();
        for (int i = 0; i < 64 * rows; i++) wt[i] = (float)rng.NextDouble();
        var be = CpuBackend.Instance;
        var parts = new (string Name, Action F, int PerSample)[]
        {
            ("im2col (per sample)", () => ConvKernels<float>.Im2Col(src, col, g), 1),
            ("col2im (per sample)", () => ConvKernels<float>.Col2ImForBench(col, src, g), 1),
            ("forward GEMM nn64x196x288", () => Gemm.Sgemm(false, false, 64, plane, rows, 1f, wt, rows, col, plane, 1f, o, plane), 1),
            ("input GEMM tn288x196x64", () => Gemm.Sgemm(true, false, rows, plane, 64, 1f, wt, rows, o, plane, 0f, col, plane), 1),
            ("weight GEMM nt64x288x196", () => Gemm.Sgemm(false, true, 64, rows, plane, 1f, o, plane, col, plane, 1f, wt, rows), 1),
            ("forward pass (batch)", () => be.ConvForward(x.V, w.V, bias.V, true, y.V, g), batch),
            ("input-gradient pass (batch)", () => be.ConvBackwardInput(dy.V, w.V, dx.V, g), batch),
            ("weight-gradient pass (batch)", () => be.ConvBackwardWeight(x.V, dy.V, dw.V, g, false), batch),
            ("weight pass, natural orientation", () => Natural(() => be.ConvBackwardWeight(x.V, dy.V, dw.V, g, false)), batch),
        };
        var res = parts.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < rounds; r++)
            for (int p = 0; p < parts.Length; p++)
            {
                var sw = Stopwatch.StartNew();
                int n = 0;
                while (sw.Elapsed.TotalSeconds < 0.25) { parts[p].F(); n++; }
                if (r > 0) res[p].Add(sw.Elapsed.TotalMicroseconds / n / parts[p].PerSample);
            }
        for (int p = 0; p < parts.Length; p++)
        {
            var v = res[p].Order().ToArray();
            Console.WriteLine($"{parts[p].Name,-32} {v[v.Length / 2],8:F1} µs per sample");
        }
        return 0;
    }
}
