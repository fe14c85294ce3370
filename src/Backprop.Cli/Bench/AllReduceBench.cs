using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Backprop.Distributed;

namespace Backprop.Cli.Bench;

/// <summary>
/// <c>mpirun -np N backprop bench allreduce</c>: the time of an all-reduce of float32 buffers from 8
/// bytes to --max-mb MiB, and the bandwidth it reaches (docs/distributed.md). Only rank 0 prints.
/// </summary>
internal static class AllReduceBench
{
    public static Command Create(Option<bool> json)
    {
        var maxMb = CliOptions.Int("--max-mb", "largest buffer in MiB (default 64)", 1, 4096, "M");
        var command = new Command("allreduce", "under mpirun: all-reduce time and bandwidth of float32 buffers from 8 bytes to --max-mb MiB");
        var blocking = CliOptions.Flag("--blocking", "time the blocking MPI_Allreduce instead of MPI_Iallreduce + wait (what training uses)");
        command.Add(maxMb);
        command.Add(blocking);
        command.SetAction(r => Run(r.GetValue(maxMb) ?? 64, r.GetValue(blocking), r.GetValue(json), r.InvocationConfiguration.Output));
        return command;
    }

    private static unsafe int Run(int maxMb, bool blocking, bool json, TextWriter stdout)
    {
        MpiCommunicator comm;
        try { comm = new MpiCommunicator(); }
        catch (MpiException e) { throw new CliException(e.Message.Replace("--distributed", "bench allreduce", StringComparison.Ordinal)); }
        using var _ = comm;
        int n = comm.Size;
        var rows = new JsonArray();
        var buffer = GC.AllocateArray<float>(maxMb * (1 << 18), pinned: true);
        void Once(int count)
        {
            if (!blocking) { comm.StartAllReduceSum(buffer, 0, count).Wait(); return; }
            fixed (float* p = buffer) Mpi.AllReduce(p, count, Mpi.Float, Mpi.OpSum);
        }
        for (long bytes = 8; bytes <= (long)maxMb << 20; bytes *= 4)
        {
            int count = (int)(bytes / 4);
            // One warm-up decides the repeats (about 0.2 s, 3 to 200); every rank must run the same
            // number, so the largest count any rank asks for is used.
            var w = Stopwatch.GetTimestamp();
            Once(count);
            Span<double> reps = [Math.Clamp(0.2 / Math.Max(Stopwatch.GetElapsedTime(w).TotalSeconds, 1e-7), 3, 200)];
            comm.AllReduceMax(reps);
            var times = new List<double>();
            for (int i = 0; i < (int)reps[0]; i++)
            {
                var t0 = Stopwatch.GetTimestamp();
                Once(count);
                times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
            times.Sort();
            double t = times[times.Count / 2];
            rows.Add(new JsonObject
            {
                ["bytes"] = bytes,
                ["seconds"] = t,
                ["algorithm_gbit_s"] = Math.Round(bytes * 8 / t / 1e9, 3),
                // What each rank's link carries in a ring all-reduce: 2 (N-1)/N of the buffer.
                ["bus_gbit_s"] = Math.Round(2.0 * (n - 1) / n * bytes * 8 / t / 1e9, 3),
            });
        }
        if (comm.Rank == 0)
        {
            var result = new JsonObject { ["benchmark"] = "allreduce", ["ranks"] = n, ["call"] = blocking ? "MPI_Allreduce" : "MPI_Iallreduce + MPI_Test", ["sizes"] = rows };
            if (json) stdout.WriteLine(result.ToJsonString());
            else
            {
                stdout.WriteLine($"{(blocking ? "MPI_Allreduce" : "MPI_Iallreduce + MPI_Test")} (sum, float32) over {n} ranks; median time; bus bandwidth = 2 (N-1)/N x bytes / time");
                foreach (var row in rows)
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{(long)row!["bytes"]!,12} bytes  {1e6 * (double)row["seconds"]!,12:F1} us  {(double)row["algorithm_gbit_s"]!,8:F3} Gbit/s  bus {(double)row["bus_gbit_s"]!,8:F3} Gbit/s"));
            }
        }
        return 0;
    }
}
