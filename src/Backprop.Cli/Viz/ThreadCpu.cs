using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Backprop.Cli.Viz;

/// <summary>
/// CPU time of the calling thread, so that the page's publisher can measure what a frame costs in
/// CPU whatever else the machine runs: <c>clock_gettime(CLOCK_THREAD_CPUTIME_ID)</c> on Linux, wall
/// time elsewhere (an overestimate on a busy machine, which only spaces the frames further).
/// </summary>
internal static partial class ThreadCpu
{
    private const int ClockThreadCpuTime = 3;
    private static bool _native = OperatingSystem.IsLinux();

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>Milliseconds of CPU this thread has used (or of wall time where that is not available).</summary>
    public static double Milliseconds()
    {
        if (_native)
        {
            try
            {
                if (ClockGetTime(ClockThreadCpuTime, out var t) == 0) return t.Seconds * 1e3 + t.Nanoseconds / 1e6;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
            }
            _native = false;
        }
        return Stopwatch.GetTimestamp() * 1000.0 / Stopwatch.Frequency;
    }
}
