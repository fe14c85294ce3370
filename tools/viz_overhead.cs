#:package Microsoft.Playwright@1.64.1
#:project ../src/Backprop.Cli/Backprop.Cli.csproj
#:property PublishAot=false
// Does the page of `backprop viz` slow training down? (docs/visualization.md)
//   dotnet run -c Release tools/viz_overhead.cs -- [seconds per half-round, default 3] [rounds, default 9]
// Trains spirals (2-8-8-2, Adam, batch 16) on the server's thread and measures steps per second with
// the page open in headless Chromium (/usr/bin/chromium) and with no page, alternating within each
// round (the order flips every round, so that a trend such as the JIT's tiering or another job's load
// falls on both sides alike). Each round gives a ratio (page open / no page); the result is their
// median, on the last line. Beside it, the CPU the page's work took while it was open, as shares of
// one core: the publisher thread (building frames, measured by the server), Chromium's processes and
// the trainer thread itself (from /proc, Linux only), and the page's extra CPU in all (this process's
// threads but the trainer, and Chromium, page open minus no page) as a share of the trainer's: a
// figure that other load on the machine does not move, where the ratio of rates moves with it.
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Backprop.Cli.Viz;
using Microsoft.Playwright;

var inv = CultureInfo.InvariantCulture;
double seconds = args.Length > 0 ? double.Parse(args[0], inv) : 3;
int rounds = args.Length > 1 ? int.Parse(args[1], inv) : 9;
if (typeof(VizServer).Assembly.GetCustomAttribute<DebuggableAttribute>()?.IsJITOptimizerDisabled == true)
    Console.WriteLine("warning: a Debug build of backprop (no JIT optimization): run with -c Release for figures worth quoting");

await using var server = await VizServer.StartAsync(0, new VizConfig { Dataset = "spirals", Hidden = [8, 8] });
using var playwright = await Playwright.CreateAsync();
await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = "/usr/bin/chromium", Headless = true, Args = ["--no-sandbox"] });

// CPU seconds from /proc: this process's trainer thread, and Chromium (every descendant of this process but Playwright's node driver).
double Ticks(string statPath)
{
    try
    {
        var stat = File.ReadAllText(statPath);
        var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (double.Parse(f[11], inv) + double.Parse(f[12], inv)) / 100.0; // utime + stime, in clock ticks of 1/100 s
    }
    catch (IOException) { return 0; }
}
string? trainerTask = Directory.Exists("/proc/self/task")
    ? Directory.GetDirectories("/proc/self/task").FirstOrDefault(t => File.ReadAllText(Path.Combine(t, "comm")).Trim().StartsWith("backprop viz tr", StringComparison.Ordinal))
    : null;
double TrainerCpu() => trainerTask == null ? double.NaN : Ticks(Path.Combine(trainerTask, "stat"));
double ProcessCpu() => Ticks("/proc/self/stat");
// Per process, so that a process that exits during a window (a closed page's renderer) takes its whole past out of nothing.
Dictionary<int, double> ChromiumCpu()
{
    if (!Directory.Exists("/proc")) return [];
    var parent = new Dictionary<int, int>();
    var comm = new Dictionary<int, string>();
    foreach (var dir in Directory.GetDirectories("/proc"))
    {
        if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
        try
        {
            var stat = File.ReadAllText(Path.Combine(dir, "stat"));
            int close = stat.LastIndexOf(')');
            comm[pid] = stat[(stat.IndexOf('(') + 1)..close];
            parent[pid] = int.Parse(stat[(close + 2)..].Split(' ')[1], inv);
        }
        catch (IOException) { }
    }
    bool Descends(int pid)
    {
        for (int p = pid, hops = 0; p > 1 && hops < 64; hops++)
            if (!parent.TryGetValue(p, out p)) return false;
            else if (p == Environment.ProcessId) return true;
        return false;
    }
    return parent.Keys.Where(p => p != Environment.ProcessId && Descends(p) && comm[p] != "node").ToDictionary(p => p, p => Ticks($"/proc/{p}/stat"));
}
static double Since(Dictionary<int, double> before, Dictionary<int, double> after) => after.Sum(kv => kv.Value - before.GetValueOrDefault(kv.Key));

async Task<Sample> Measure()
{
    long s0 = server.Session.Step;
    var stats0 = server.Stats;
    double t0 = TrainerCpu(), p0 = ProcessCpu();
    var c0 = ChromiumCpu();
    var sw = Stopwatch.StartNew();
    await Task.Delay(TimeSpan.FromSeconds(seconds));
    double wall = sw.Elapsed.TotalSeconds;
    long steps = server.Session.Step - s0;
    var stats1 = server.Stats;
    double trainer = TrainerCpu() - t0;
    return new Sample(steps / wall, wall, trainer, (stats1.CpuMs - stats0.CpuMs) / 1000, Since(c0, ChromiumCpu()), ProcessCpu() - p0 - trainer, stats1.Frames - stats0.Frames);
}

async Task<IPage> OpenPage()
{
    var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1360, Height = 1000 } });
    await page.GotoAsync(server.Url);
    await page.WaitForSelectorAsync("body[data-ready='1']");
    await page.WaitForFunctionAsync("() => Number(document.getElementById('heatmap').dataset.step) > 0"); // drawing frames
    await Task.Delay(1000); // the page's loading settles
    return page;
}

server.Session.Play();
// Warm-up: the JIT's tiers (at least 6 s, then until two windows agree within 15%; at most 30 s), the page's first frames.
for (double last = 0, rate = 0, t = 0; t < 30; last = rate, t += 1.5)
{
    long s0 = server.Session.Step;
    await Task.Delay(1500);
    rate = (server.Session.Step - s0) / 1.5;
    if (t >= 4.5 && Math.Abs(rate - last) <= 0.15 * last) break;
}
await (await OpenPage()).CloseAsync();
await Task.Delay(1000);

var ratios = new List<double>();
var open = new List<Sample>();
var closed = new List<Sample>();
for (int r = 0; r < rounds; r++)
{
    Sample without = default, with = default;
    foreach (bool withPage in r % 2 == 0 ? new[] { false, true } : [true, false])
    {
        if (!withPage) { without = await Measure(); continue; }
        var page = await OpenPage();
        with = await Measure();
        await page.CloseAsync();
    }
    ratios.Add(with.StepsPerSecond / without.StepsPerSecond);
    open.Add(with);
    closed.Add(without);
    Console.WriteLine(string.Create(inv, $"round {r + 1}: no page {without.StepsPerSecond:F0} steps/s, page open {with.StepsPerSecond:F0} steps/s, ratio {ratios[^1]:F3} " +
        $"({with.Frames / with.Wall:F1} frames/s; page open: publisher {100 * with.Publisher / with.Wall:F1}%, chromium {100 * with.Chromium / with.Wall:F1}%, other threads {100 * with.Others / with.Wall:F1}% (no page {100 * without.Others / without.Wall:F1}%), trainer {100 * with.Trainer / with.Wall:F0}% of a core; no page: trainer {100 * without.Trainer / without.Wall:F0}%)"));
}
server.Session.Pause();

static double Median(IEnumerable<double> v)
{
    var a = v.Order().ToArray();
    return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
}
double wallOpen = open.Sum(s => s.Wall), wallClosed = closed.Sum(s => s.Wall);
var (frames, cpuMs, interval) = server.Stats;
string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
double ratio = Median(ratios);
// The page's extra CPU per second: everything but the trainer, page open minus no page.
double extra = open.Sum(s => s.Others + s.Chromium) / wallOpen - closed.Sum(s => s.Others + s.Chromium) / wallClosed;
double share = extra / (open.Sum(s => s.Trainer) / wallOpen);
Console.WriteLine(string.Create(inv, $"frames: {frames} built, {cpuMs / Math.Max(1, frames):F2} ms CPU each, last interval {interval:F0} ms; " +
    $"while the page was open: publisher {100 * open.Sum(s => s.Publisher) / wallOpen:F2}%, chromium {100 * open.Sum(s => s.Chromium) / wallOpen:F1}%, trainer {100 * open.Sum(s => s.Trainer) / wallOpen:F0}% of one core; " +
    $"{Environment.ProcessorCount} cores, load average {load}"));
Console.WriteLine(string.Create(inv, $"RESULT viz overhead: steps/s with the page open / without = {ratio:F3} (median of {rounds} alternating rounds of {seconds:G} s each way; " +
    $"min {ratios.Min():F3}, max {ratios.Max():F3}; no page {Median(closed.Select(s => s.StepsPerSecond)):F0} steps/s) => {(ratio >= 0.9 ? "within" : "NOT within")} 10%; " +
    $"the page's extra CPU = {100 * extra:F1}% of one core ({100 * share:F1}% of what the trainer got)"));

record struct Sample(double StepsPerSecond, double Wall, double Trainer, double Publisher, double Chromium, double Others, long Frames);
