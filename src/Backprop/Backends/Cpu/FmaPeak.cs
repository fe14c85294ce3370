using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Backprop.Backends.Cpu;

/// <summary>Measures the machine's single-precision fused multiply-add peak, the yardstick for GEMM efficiency.</summary>
public static class FmaPeak
{
    // FMA latency (4-5 cycles) times throughput (2 per cycle) needs at least 8-10 independent
    // chains in flight; 16 leaves slack and still fits the 32 (or 16) vector registers.
    private const int Chains = 16;
    private const long ItersPerSlice = 1 << 16;

    // Written once per run so the JIT has to keep every chain's result alive.
    private static volatile float _sink;

    /// <summary>Runs independent FMA chains on <paramref name="threads"/> threads at once and returns total GFLOP/s (best of several repeats).</summary>
    public static double MeasureGflops(int threads, TimeSpan duration)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        if (duration <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(duration), duration, "Duration must be positive.");
        if (Threads.InParallelRegion)
            throw new InvalidOperationException("FmaPeak cannot run inside a parallel region: its threads would run one after another.");

        // The first repeat also absorbs tiering and clock ramp-up; later repeats are the real ones.
        const int repeats = 5;
        var job = new Job(Math.Max(1, (long)(duration.TotalSeconds / repeats * Stopwatch.Frequency)));
        Burn(ItersPerSlice, out _); // Let the JIT produce optimized code before timing anything.
        double best = 0;
        for (int r = 0; r < repeats; r++)
        {
            job.Reset();
            long start = Stopwatch.GetTimestamp();
            Threads.For(threads, job);
            double seconds = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
            double flops = job.TotalIterations * (double)FlopsPerIteration;
            best = Math.Max(best, flops / seconds / 1e9);
        }
        return best;
    }

    private static int FlopsPerIteration =>
        Chains * 2 * (Vector512.IsHardwareAccelerated ? Vector512<float>.Count
            : Vector256.IsHardwareAccelerated ? Vector256<float>.Count : Vector128<float>.Count);

    private sealed class Job(long ticks) : IParallelWork
    {
        private long _total;
        public long TotalIterations => Interlocked.Read(ref _total);

        public void Reset() => _total = 0;

        public void Run(int chunk, int chunks)
        {
            long end = Stopwatch.GetTimestamp() + ticks;
            long iters = 0;
            float sink = 0;
            do
            {
                Burn(ItersPerSlice, out float s);
                sink += s;
                iters += ItersPerSlice;
            } while (Stopwatch.GetTimestamp() < end);
            _sink = sink;
            Interlocked.Add(ref _total, iters);
        }
    }

    private static void Burn(long iters, out float result)
    {
        if (Vector512.IsHardwareAccelerated) result = Burn512(iters);
        else if (Vector256.IsHardwareAccelerated) result = Burn256(iters);
        else result = Burn128(iters);
    }

    // Multiplier just below 1 and a tiny addend keep every chain near a fixed point: no overflow,
    // no denormals, and no value the JIT can predict.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Burn512(long iters)
    {
        var m = Vector512.Create(0.999999f);
        var d = Vector512.Create(1e-7f);
        Vector512<float> a0 = Vector512.Create(1.00f), a1 = Vector512.Create(1.01f), a2 = Vector512.Create(1.02f), a3 = Vector512.Create(1.03f);
        Vector512<float> a4 = Vector512.Create(1.04f), a5 = Vector512.Create(1.05f), a6 = Vector512.Create(1.06f), a7 = Vector512.Create(1.07f);
        Vector512<float> a8 = Vector512.Create(1.08f), a9 = Vector512.Create(1.09f), a10 = Vector512.Create(1.10f), a11 = Vector512.Create(1.11f);
        Vector512<float> a12 = Vector512.Create(1.12f), a13 = Vector512.Create(1.13f), a14 = Vector512.Create(1.14f), a15 = Vector512.Create(1.15f);
        for (long i = 0; i < iters; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, d); a1 = Vector512.FusedMultiplyAdd(a1, m, d);
            a2 = Vector512.FusedMultiplyAdd(a2, m, d); a3 = Vector512.FusedMultiplyAdd(a3, m, d);
            a4 = Vector512.FusedMultiplyAdd(a4, m, d); a5 = Vector512.FusedMultiplyAdd(a5, m, d);
            a6 = Vector512.FusedMultiplyAdd(a6, m, d); a7 = Vector512.FusedMultiplyAdd(a7, m, d);
            a8 = Vector512.FusedMultiplyAdd(a8, m, d); a9 = Vector512.FusedMultiplyAdd(a9, m, d);
            a10 = Vector512.FusedMultiplyAdd(a10, m, d); a11 = Vector512.FusedMultiplyAdd(a11, m, d);
            a12 = Vector512.FusedMultiplyAdd(a12, m, d); a13 = Vector512.FusedMultiplyAdd(a13, m, d);
            a14 = Vector512.FusedMultiplyAdd(a14, m, d); a15 = Vector512.FusedMultiplyAdd(a15, m, d);
        }
        var s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11)) + ((a12 + a13) + (a14 + a15));
        return Vector512.Sum(s);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Burn256(long iters)
    {
        // Only 16 ymm registers without AVX-512: 12 chains plus the two constants fit without spills.
        var m = Vector256.Create(0.999999f);
        var d = Vector256.Create(1e-7f);
        Vector256<float> a0 = Vector256.Create(1.00f), a1 = Vector256.Create(1.01f), a2 = Vector256.Create(1.02f), a3 = Vector256.Create(1.03f);
        Vector256<float> a4 = Vector256.Create(1.04f), a5 = Vector256.Create(1.05f), a6 = Vector256.Create(1.06f), a7 = Vector256.Create(1.07f);
        Vector256<float> a8 = Vector256.Create(1.08f), a9 = Vector256.Create(1.09f), a10 = Vector256.Create(1.10f), a11 = Vector256.Create(1.11f);
        for (long i = 0; i < iters; i++)
        {
            // Each iteration counts as Chains FMAs; do 16 by running four chains twice.
            a0 = Vector256.MultiplyAddEstimate(a0, m, d); a1 = Vector256.MultiplyAddEstimate(a1, m, d);
            a2 = Vector256.MultiplyAddEstimate(a2, m, d); a3 = Vector256.MultiplyAddEstimate(a3, m, d);
            a4 = Vector256.MultiplyAddEstimate(a4, m, d); a5 = Vector256.MultiplyAddEstimate(a5, m, d);
            a6 = Vector256.MultiplyAddEstimate(a6, m, d); a7 = Vector256.MultiplyAddEstimate(a7, m, d);
            a8 = Vector256.MultiplyAddEstimate(a8, m, d); a9 = Vector256.MultiplyAddEstimate(a9, m, d);
            a10 = Vector256.MultiplyAddEstimate(a10, m, d); a11 = Vector256.MultiplyAddEstimate(a11, m, d);
            a0 = Vector256.MultiplyAddEstimate(a0, m, d); a1 = Vector256.MultiplyAddEstimate(a1, m, d);
            a2 = Vector256.MultiplyAddEstimate(a2, m, d); a3 = Vector256.MultiplyAddEstimate(a3, m, d);
        }
        var s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
        return Vector256.Sum(s);
    }

    // Without FMA hardware FusedMultiplyAdd is emulated in software; MultiplyAddEstimate
    // fuses where it can and otherwise measures the separate multiply and add, which is the peak
    // such a machine's GEMM could reach.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Burn128(long iters)
    {
        var m = Vector128.Create(0.999999f);
        var d = Vector128.Create(1e-7f);
        Vector128<float> a0 = Vector128.Create(1.00f), a1 = Vector128.Create(1.01f), a2 = Vector128.Create(1.02f), a3 = Vector128.Create(1.03f);
        Vector128<float> a4 = Vector128.Create(1.04f), a5 = Vector128.Create(1.05f), a6 = Vector128.Create(1.06f), a7 = Vector128.Create(1.07f);
        for (long i = 0; i < iters; i++)
        {
            a0 = Vector128.MultiplyAddEstimate(a0, m, d); a1 = Vector128.MultiplyAddEstimate(a1, m, d);
            a2 = Vector128.MultiplyAddEstimate(a2, m, d); a3 = Vector128.MultiplyAddEstimate(a3, m, d);
            a4 = Vector128.MultiplyAddEstimate(a4, m, d); a5 = Vector128.MultiplyAddEstimate(a5, m, d);
            a6 = Vector128.MultiplyAddEstimate(a6, m, d); a7 = Vector128.MultiplyAddEstimate(a7, m, d);
            a0 = Vector128.MultiplyAddEstimate(a0, m, d); a1 = Vector128.MultiplyAddEstimate(a1, m, d);
            a2 = Vector128.MultiplyAddEstimate(a2, m, d); a3 = Vector128.MultiplyAddEstimate(a3, m, d);
            a4 = Vector128.MultiplyAddEstimate(a4, m, d); a5 = Vector128.MultiplyAddEstimate(a5, m, d);
            a6 = Vector128.MultiplyAddEstimate(a6, m, d); a7 = Vector128.MultiplyAddEstimate(a7, m, d);
        }
        var s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
        return Vector128.Sum(s);
    }
}
