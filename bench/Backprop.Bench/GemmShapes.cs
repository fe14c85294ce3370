using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Backprop.Backends.Cpu;

namespace Backprop.Bench;

/// <summary>
/// GFLOP/s of given GEMM shapes, taking turns in one process:
/// `gemm-shapes [--threads T] [--rounds R] SHAPE...` where SHAPE is `[t|n][t|n]MxNxK`
/// (A then B transposed or not), e.g. `nn64x196x288 tn288x196x64 nt64x288x196` (the second
/// convolution of the CNN preset per sample: forward, input gradient, weight gradient).
/// Each round times every shape for ~0.2 s; it prints the median GFLOP/s per shape.
/// </summary>
internal static unsafe class GemmShapes
{
    public static int Run(string[] args)
    {
        int threads = 1, rounds = 7;
        var shapes = new List<(bool Ta, bool Tb, int M, int N, int K)>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default:
                    var s = args[i];
                    if (s.Length < 3 || "tn".IndexOf(s[0]) < 0 || "tn".IndexOf(s[1]) < 0)
                        throw new ArgumentException($"gemm-shapes: '{s}' is not [t|n][t|n]MxNxK");
                    var d = s[2..].Split('x').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray();
                    if (d.Length != 3) throw new ArgumentException($"gemm-shapes: '{s}' is not [t|n][t|n]MxNxK");
                    shapes.Add((s[0] == 't', s[1] == 't', d[0], d[1], d[2]));
                    break;
            }
        }
        Threads.Count = threads;
        long most = shapes.Max(s => (long)Math.Max(s.M, s.K) * Math.Max(s.N, s.K)) + 64;
        float* a = (float*)NativeMemory.AlignedAlloc((nuint)(most * 4), 64);
        float* b = (float*)NativeMemory.AlignedAlloc((nuint)(most * 4), 64);
        float* c = (float*)NativeMemory.AlignedAlloc((nuint)(most * 4), 64);
        var rng = new Random(1);
        for (long i = 0; i < most; i++) { a[i] = (float)rng.NextDouble(); b[i] = (float)rng.NextDouble(); c[i] = 0; }
        var results = shapes.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < rounds; r++)
            for (int s = 0; s < shapes.Count; s++)
            {
                var (ta, tb, m, n, k) = shapes[s];
                int lda = ta ? m : k, ldb = tb ? k : n;
                double flops = 2.0 * m * n * k;
                int reps = Math.Max(10, (int)(2e10 * 0.01 / flops));
                var sw = Stopwatch.StartNew();
                int done = 0;
                while (sw.Elapsed.TotalSeconds < 0.2)
                {
                    for (int i = 0; i < reps; i++) Gemm.Sgemm(ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, c, n);
                    done += reps;
                }
                if (r > 0) results[s].Add(flops * done / sw.Elapsed.TotalSeconds / 1e9);
            }
        for (int s = 0; s < shapes.Count; s++)
        {
            var v = results[s].Order().ToArray();
            Console.WriteLine($"{args.Where(x => !x.StartsWith("--", StringComparison.Ordinal) && !char.IsDigit(x[0])).ElementAt(s),-16} {v[v.Length / 2],7:F1} GFLOP/s (min {v[0]:F1}, max {v[^1]:F1})");
        }
        return 0;
    }
}
