using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using Backprop.Backends.Cpu;

namespace Backprop.Bench;

/// <summary>
/// In-process A/B comparison of GEMM variants: `gemm-ab --size N [--threads T] [--blocks B] CONFIG...`
/// where each CONFIG is `-` (as is) or comma-separated settings: `Field=true|false` for one of
/// Gemm's internal switches (FuseAPacking, PackBOnFirstUse, DynamicRows) or `offset=F` to start A, B and C
/// F floats past a 64-byte boundary (as a managed array's data may). The configurations take
/// turns, a block of ~20 GFLOP each, B blocks per configuration; it prints each one's median
/// GFLOP/s, its ratio to the first and the quartiles. With `--openblas LIB` (the path of an
/// OpenBLAS shared library), the configuration `openblas` is that library's cblas_sgemm on the same
/// buffers and thread count, taking its turns like the others: a comparison with OpenBLAS that no
/// difference between processes can tilt (set OPENBLAS_CORETYPE, e.g. Haswell, to choose its kernels).
/// </summary>
/// <remarks>
/// Taking turns inside one process cancels what makes separate runs on a shared VM differ by
/// 2-4% (other tenants, where the buffers land); a ratio within about ±1% is noise.
/// </remarks>
internal static unsafe class GemmAb
{
    public static int Run(string[] args)
    {
        int n = 1024, threads = Threads.Count, blocks = 30;
        string? openBlasPath = null;
        var configs = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--size": n = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--blocks": blocks = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--openblas": openBlasPath = args[++i]; break;
                default: configs.Add(args[i]); break;
            }
        }
        if (configs.Count == 0) configs.Add("-");
        long floats = (long)n * n + 64;
        float* a0 = (float*)NativeMemory.AlignedAlloc((nuint)(floats * 4), 64);
        float* b0 = (float*)NativeMemory.AlignedAlloc((nuint)(floats * 4), 64);
        float* c0 = (float*)NativeMemory.AlignedAlloc((nuint)(floats * 4), 64);
        var rng = new Random(1);
        for (long i = 0; i < floats; i++)
        {
            a0[i] = (float)rng.NextDouble();
            b0[i] = (float)rng.NextDouble();
        }
        float* a = a0, b = b0, c = c0;
        Threads.Count = threads;
        // cblas_sgemm(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) with
        // 32-bit integers (Debian's build); 101 is row-major, 111 no transpose.
        delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> openBlas = null;
        if (openBlasPath != null)
        {
            var lib = NativeLibrary.Load(openBlasPath);
            openBlas = (delegate* unmanaged<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)
                NativeLibrary.GetExport(lib, "cblas_sgemm");
            ((delegate* unmanaged<int, void>)NativeLibrary.GetExport(lib, "openblas_set_num_threads"))(threads);
            var core = ((delegate* unmanaged<byte*>)NativeLibrary.GetExport(lib, "openblas_get_corename"))();
            Console.WriteLine($"OpenBLAS {openBlasPath}: kernels for {Marshal.PtrToStringAnsi((nint)core)}, {threads} threads");
        }
        bool useOpenBlas = false;

        void Apply(string config)
        {
            Gemm.FuseAPacking = Gemm.PackBOnFirstUse = Gemm.DynamicRows = true;
            a = a0;
            b = b0;
            c = c0;
            useOpenBlas = config == "openblas";
            if (useOpenBlas && openBlas == null) throw new ArgumentException("gemm-ab: the configuration 'openblas' needs --openblas LIB");
            if (config is "-" or "openblas") return;
            foreach (var setting in config.Split(','))
            {
                var parts = setting.Split('=');
                if (parts.Length != 2) throw new ArgumentException($"gemm-ab: '{setting}' is not Name=value");
                if (parts[0] == "offset")
                {
                    int o = int.Parse(parts[1], CultureInfo.InvariantCulture);
                    if (o is < 0 or > 63) throw new ArgumentException($"gemm-ab: offset {o} is outside 0-63 floats");
                    a = a0 + o;
                    b = b0 + o;
                    c = c0 + o;
                    continue;
                }
                var field = typeof(Gemm).GetField(parts[0], BindingFlags.NonPublic | BindingFlags.Static);
                if (field == null || field.FieldType != typeof(bool) || field.IsInitOnly)
                    throw new ArgumentException($"gemm-ab: Gemm has no settable switch '{parts[0]}'");
                field.SetValue(null, bool.Parse(parts[1]));
            }
        }

        void Product()
        {
            if (useOpenBlas) openBlas(101, 111, 111, n, n, n, 1f, a, n, b, n, 0f, c, n);
            else Gemm.Sgemm(false, false, n, n, n, 1f, a, n, b, n, 0f, c, n);
        }
        double flops = 2.0 * n * n * n;
        int perBlock = Math.Max(3, (int)(2e10 / flops));
        var rates = configs.Select(_ => new List<double>()).ToArray();
        for (int w = 0; w < 4; w++)
            foreach (var config in configs) { Apply(config); Product(); }
        for (int blk = 0; blk < blocks; blk++)
        {
            for (int v = 0; v < configs.Count; v++)
            {
                Apply(configs[v]);
                var sw = Stopwatch.StartNew();
                for (int r = 0; r < perBlock; r++) Product();
                rates[v].Add(flops * perBlock / sw.Elapsed.TotalSeconds / 1e9);
            }
        }
        Apply("-");
        double first = 0;
        Console.WriteLine($"gemm-ab n={n} threads={threads}, {blocks} blocks of {perBlock} products per configuration");
        for (int v = 0; v < configs.Count; v++)
        {
            var r = rates[v];
            r.Sort();
            double median = r[r.Count / 2];
            if (v == 0) first = median;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {configs[v],-44} {median,7:F1} GFLOP/s  x{median / first:F3}  (quartiles {r[r.Count / 4]:F1} / {r[3 * r.Count / 4]:F1})"));
        }
        NativeMemory.AlignedFree(a0);
        NativeMemory.AlignedFree(b0);
        NativeMemory.AlignedFree(c0);
        return 0;
    }
}
