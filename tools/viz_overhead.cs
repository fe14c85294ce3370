#:package Microsoft.Playwright@1.64.1
#:project ../src/Backprop.Cli/Backprop.Cli.csproj
#:property PublishAot=false
// Steps per second of `backprop viz` training with the page open in headless Chromium against the
// same training with no page connected (docs/visualization.md). Alternates the two, several rounds.
//   dotnet run tools/viz_overhead.cs -- [seconds per round, default 5] [rounds, default 3]
using System.Diagnostics;
using Backprop.Cli.Viz;
using Microsoft.Playwright;

double seconds = args.Length > 0 ? double.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 5;
int rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;
await using var server = await VizServer.StartAsync(0, new VizConfig { Dataset = "spirals", Hidden = [8, 8] });
using var playwright = await Playwright.CreateAsync();
await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = "/usr/bin/chromium", Headless = true, Args = ["--no-sandbox"] });

async Task<double> Measure()
{
    server.Session.Play();
    await Task.Delay(1000); // warm-up
    long s0 = server.Session.Step;
    var sw = Stopwatch.StartNew();
    await Task.Delay(TimeSpan.FromSeconds(seconds));
    double rate = (server.Session.Step - s0) / sw.Elapsed.TotalSeconds;
    server.Session.Pause();
    return rate;
}

var without = new List<double>();
var with = new List<double>();
for (int r = 0; r < rounds; r++)
{
    without.Add(await Measure());
    var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1360, Height = 1000 } });
    await page.GotoAsync(server.Url);
    await page.WaitForSelectorAsync("body[data-ready='1']");
    with.Add(await Measure());
    long frames = await page.EvalOnSelectorAsync<long>("#status", "s => Number(s.dataset.step)");
    await page.CloseAsync();
    Console.WriteLine($"round {r + 1}: no page {without[^1]:F0} steps/s, page open {with[^1]:F0} steps/s (page showed step {frames})");
}
double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
// The publisher's cost per frame (copy under the lock, then the views and the JSON), as CPU time of
// this process with training paused, so that other load on the machine does not count.
var views = new VizViews();
TimeSpan Cpu() { var p = Process.GetCurrentProcess(); p.Refresh(); return p.TotalProcessorTime; }
const int frameCount = 40;
var lockClock = new Stopwatch();
var cpu0 = Cpu();
var frameClock = Stopwatch.StartNew();
for (int i = 0; i < frameCount; i++)
{
    server.Session.StepMany(1);
    lockClock.Start();
    var copy = server.Session.Copy();
    lockClock.Stop();
    _ = views.Build(server.Session, copy).ToJsonString();
}
double frameCpu = (Cpu() - cpu0).TotalMilliseconds / frameCount, frameWall = frameClock.Elapsed.TotalMilliseconds / frameCount;
cpu0 = Cpu();
server.Session.StepMany(1000);
double stepCpu = (Cpu() - cpu0).TotalMilliseconds / 1000;
Console.WriteLine($"one frame: {frameCpu - stepCpu:F2} ms CPU ({frameWall:F1} ms wall), of which the copy under the training lock {lockClock.Elapsed.TotalMilliseconds / frameCount:F3} ms; " +
    $"one training step: {stepCpu:F3} ms CPU; at {VizServer.FramesPerSecond} frames/s the publisher uses {(frameCpu - stepCpu) * VizServer.FramesPerSecond / 10:F1}% of one core");
Console.WriteLine($"median: no page {Median(without):F0} steps/s, page open {Median(with):F0} steps/s, ratio {Median(with) / Median(without):F3}");
