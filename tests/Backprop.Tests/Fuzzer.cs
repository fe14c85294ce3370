using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Backprop.Tests;

/// <summary>
/// A small seeded, time-bounded fuzzer: mutates valid inputs (bit flips, truncation, random bytes,
/// huge integers, splices), runs each case on a worker thread under a watchdog, and fails on an
/// exception of an undocumented type, a case that runs past its timeout (a hang), or a case that
/// allocates more than a multiple of its input size plus a constant.
/// </summary>
/// <remarks>
/// BACKPROP_FUZZ_SECONDS sets the time per target (default 2.5 s; .ci/run uses longer),
/// BACKPROP_FUZZ_SEED the seed (default fixed, so a plain <c>dotnet test</c> is reproducible). Case i
/// of a run draws from <c>new Random(seed * 1_000_003 + i)</c>, so a failure names the case that
/// reproduces it, and its input is written to a file named in the message.
/// </remarks>
internal static class Fuzzer
{
    public static double Seconds => double.TryParse(Environment.GetEnvironmentVariable("BACKPROP_FUZZ_SECONDS"), NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 2.5;

    public static int Seed => int.TryParse(Environment.GetEnvironmentVariable("BACKPROP_FUZZ_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : 20240607;

    public sealed record Report(string Target, long Cases, long Accepted, long Rejected, double Seconds, long MaxAllocated, long MaxInput)
    {
        public override string ToString() =>
            $"{Target}: {Cases} cases in {Seconds:F1} s ({Cases / Math.Max(Seconds, 1e-9):F0}/s), {Accepted} accepted, {Rejected} rejected (a documented exception or an error exit); " +
            $"largest allocation {MaxAllocated} bytes (largest input {MaxInput} bytes)";
    }

    /// <summary>
    /// Runs cases until the time is up. <paramref name="make"/> builds case i's input from its
    /// generator; <paramref name="run"/> processes it and returns true when it was accepted (false or a
    /// documented exception: rejected). <paramref name="describe"/> renders an input for the failure message.
    /// </summary>
    public static Report Run<T>(string target, Func<Random, T> make, Func<T, bool> run, Func<T, long> size, Func<T, byte[]> dump,
        Type[] documented, double allocFactor, long allocSlack, double? seconds = null, double caseTimeout = 10, Action<T, Exception>? checkException = null)
    {
        double budget = seconds ?? Seconds;
        int seed = Seed;
        long cases = 0, accepted = 0, rejected = 0, maxAlloc = 0, maxInput = 0;
        long caseStart = 0;           // Stopwatch ticks when the current case began; 0 between cases
        long current = -1;
        T? currentInput = default;
        string? failure = null;
        var clock = Stopwatch.StartNew();

        var worker = new Thread(() =>
        {
            try
            {
                for (long i = 0; clock.Elapsed.TotalSeconds < budget; i++)
                {
                    var input = make(new Random(unchecked(seed * 1_000_003 + (int)i)));
                    currentInput = input;
                    Volatile.Write(ref current, i);
                    Volatile.Write(ref caseStart, Math.Max(1, clock.ElapsedTicks));
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    try
                    {
                        if (run(input)) accepted++;
                        else rejected++;
                    }
                    catch (Exception e) when (documented.Any(t => t.IsInstanceOfType(e)))
                    {
                        if (string.IsNullOrWhiteSpace(e.Message))
                        {
                            failure = Fail(target, seed, i, input, dump, $"{e.GetType().Name} with an empty message");
                            return;
                        }
                        try
                        {
                            checkException?.Invoke(input, e);
                        }
                        catch (Exception check)
                        {
                            failure = Fail(target, seed, i, input, dump, $"{e.GetType().Name}: {e.Message}\n  fails the check: {check.Message}");
                            return;
                        }
                        rejected++;
                    }
                    catch (Exception e)
                    {
                        failure = Fail(target, seed, i, input, dump, $"undocumented exception {e}");
                        return;
                    }
                    long alloc = GC.GetAllocatedBytesForCurrentThread() - before;
                    long n = size(input);
                    maxAlloc = Math.Max(maxAlloc, alloc);
                    maxInput = Math.Max(maxInput, n);
                    if (alloc > allocFactor * n + allocSlack)
                    {
                        failure = Fail(target, seed, i, input, dump, $"allocated {alloc} bytes for an input of {n} bytes (limit {allocFactor} x input + {allocSlack})");
                        return;
                    }
                    Volatile.Write(ref caseStart, 0);
                    cases++;
                }
            }
            catch (Exception e)
            {
                failure = $"{target}: the fuzzer itself failed: {e}";
            }
        }, 16 << 20)
        { IsBackground = true, Name = $"fuzz {target}" };
        worker.Start();
        while (!worker.Join(50))
        {
            long start = Volatile.Read(ref caseStart);
            if (start != 0 && (clock.ElapsedTicks - start) / (double)Stopwatch.Frequency > caseTimeout)
            {
                var input = currentInput!;
                Assert.Fail(Fail(target, seed, Volatile.Read(ref current), input, dump, $"still running after {caseTimeout} s: a hang"));
            }
        }
        if (failure != null) Assert.Fail(failure);
        return new Report(target, cases, accepted, rejected, clock.Elapsed.TotalSeconds, maxAlloc, maxInput);
    }

    private static string Fail<T>(string target, int seed, long i, T input, Func<T, byte[]> dump, string what)
    {
        string file = Path.Combine(Path.GetTempPath(), $"backprop-fuzz-{target}-{seed}-{i}.bin");
        try { File.WriteAllBytes(file, dump(input)); } catch (IOException) { file = "(could not be written)"; }
        return $"fuzz {target}, seed {seed} (BACKPROP_FUZZ_SEED), case {i}: {what}\n  input: {file}";
    }

    // ------------------------------------------------------------------ mutations

    private static readonly byte[] Interesting = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, (byte)'{', (byte)'}', (byte)'"', (byte)'[', (byte)',', (byte)'-', (byte)'9', 0xC3, 0xE2, 0xF0];

    /// <summary>One to four random mutations of <paramref name="input"/>.</summary>
    public static byte[] Mutate(Random r, byte[] input)
    {
        var b = new List<byte>(input);
        int n = 1 + r.Next(4);
        for (int k = 0; k < n; k++)
        {
            switch (r.Next(9))
            {
                case 0 when b.Count > 0: // flip one to eight bits
                    for (int j = 1 + r.Next(8); j > 0; j--) { int i = r.Next(b.Count); b[i] ^= (byte)(1 << r.Next(8)); }
                    break;
                case 1 when b.Count > 0: // truncate
                    {
                        int keep = r.Next(b.Count);
                        b.RemoveRange(keep, b.Count - keep);
                        break;
                    }
                case 2: // append random bytes
                    for (int j = r.Next(1, 64); j > 0; j--) b.Add((byte)r.Next(256));
                    break;
                case 3 when b.Count > 0: // interesting bytes
                    for (int j = 1 + r.Next(4); j > 0; j--) b[r.Next(b.Count)] = Interesting[r.Next(Interesting.Length)];
                    break;
                case 4 when b.Count >= 4: // a big-endian or little-endian huge 32-bit integer
                    {
                        int at = r.Next(b.Count - 3);
                        uint v = HugeU32(r);
                        bool big = r.Next(2) == 0;
                        for (int j = 0; j < 4; j++) b[at + j] = (byte)(v >> (8 * (big ? 3 - j : j)));
                        break;
                    }
                case 5 when b.Count >= 8: // a huge 64-bit little-endian integer (safetensors header length)
                    {
                        int at = r.Next(2) == 0 ? 0 : r.Next(b.Count - 7);
                        ulong v = r.Next(3) switch { 0 => ulong.MaxValue - (ulong)r.Next(1000), 1 => (ulong)r.NextInt64(), _ => (ulong)r.Next(0, 4096) };
                        for (int j = 0; j < 8; j++) b[at + j] = (byte)(v >> (8 * j));
                        break;
                    }
                case 6 when b.Count > 2: // duplicate or delete a chunk
                    {
                        int at = r.Next(b.Count), len = Math.Min(b.Count - at, r.Next(1, 32));
                        var chunk = b.GetRange(at, len);
                        if (r.Next(2) == 0) b.InsertRange(r.Next(b.Count), chunk);
                        else b.RemoveRange(at, len);
                        break;
                    }
                case 7: // replace a run of ASCII digits by a huge or negative number (JSON headers)
                    ReplaceNumber(r, b);
                    break;
                case 8 when r.Next(20) == 0: // sometimes: all random
                    b = [.. Enumerable.Range(0, r.Next(0, 256)).Select(_ => (byte)r.Next(256))];
                    break;
            }
        }
        return [.. b];
    }

    private static uint HugeU32(Random r) => r.Next(4) switch
    {
        0 => uint.MaxValue,
        1 => 0x7FFFFFFF,
        2 => 0x80000000,
        _ => (uint)r.Next() | 0x01000000,
    };

    private static readonly string[] Numbers =
        ["-1", "0", "4294967296", "2147483648", "9223372036854775807", "9223372036854775808", "18446744073709551616", "1e309", "1.5", "-0", "99999999999999999999999", "65536"];

    private static void ReplaceNumber(Random r, List<byte> b)
    {
        var starts = new List<int>();
        for (int i = 0; i < b.Count; i++)
            if (b[i] is >= (byte)'0' and <= (byte)'9' && (i == 0 || b[i - 1] is < (byte)'0' or > (byte)'9')) starts.Add(i);
        if (starts.Count == 0) return;
        int s = starts[r.Next(starts.Count)], e = s;
        while (e < b.Count && b[e] is >= (byte)'0' and <= (byte)'9') e++;
        b.RemoveRange(s, e - s);
        b.InsertRange(s, Encoding.ASCII.GetBytes(Numbers[r.Next(Numbers.Length)]));
    }
}
