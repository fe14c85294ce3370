using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Backprop.Cli.Viz;
using Backprop.NN;
using Microsoft.Playwright;

namespace Backprop.Tests;

/// <summary>
/// A test that needs Debian's chromium (/usr/bin/chromium): skipped where it is missing, unless
/// BACKPROP_REQUIRE_CHROMIUM=1 (as .ci/run sets), where the missing browser is a failure.
/// </summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    /// <summary>The browser the tests drive.</summary>
    public const string Path = "/usr/bin/chromium";

    /// <summary>Skips when the browser is missing and not required.</summary>
    public ChromiumFactAttribute()
    {
        if (!File.Exists(Path) && Environment.GetEnvironmentVariable("BACKPROP_REQUIRE_CHROMIUM") != "1")
            Skip = $"no Chromium at {Path} (apt-get install chromium; BACKPROP_REQUIRE_CHROMIUM=1 makes this a failure)";
    }
}

/// <summary><c>backprop viz</c>: the token guard, the API, and the page driven in headless Chromium.</summary>
public class VizPageTests
{
    private static async Task<HttpResponseMessage> Get(string url, string? token = null)
    {
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (token != null) request.Headers.Add("X-Backprop-Token", token);
        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    // The message carries what answered (a 200 here was once the test's own "wrong" token that
    // happened to equal the real one; see WrongToken).
    private static async Task AssertRefused(string url)
    {
        using var response = await Get(url);
        if (response.StatusCode == HttpStatusCode.Forbidden) return;
        string body = await response.Content.ReadAsStringAsync();
        Assert.Fail($"{url} answered {(int)response.StatusCode} {response.StatusCode}, headers {string.Join("; ", response.Headers.Concat(response.Content.Headers).Select(h => h.Key + ": " + string.Join(",", h.Value)))}, " +
            $"body {body[..Math.Min(body.Length, 200)]}");
    }

    /// <summary>The token with its last digit changed: always different from the token (a fixed
    /// replacement digit equalled the token whenever the token ended in it, one run in 16).</summary>
    internal static string WrongToken(string token) => token[..^1] + (token[^1] == '0' ? '1' : '0');

    [Fact]
    public void TheWrongTokenDiffersFromTheToken()
    {
        foreach (var t in new[] { "ab0", "ab1", "abf", "e9d4137cce3b517f46b0a7043cbcd050" })
        {
            Assert.NotEqual(t, WrongToken(t));
            Assert.Equal(t.Length, WrongToken(t).Length);
        }
    }

    [Fact]
    public async Task EveryRequestWithoutTheTokenIsRefused()
    {
        await using var server = await VizServer.StartAsync(0);
        var root = $"http://127.0.0.1:{server.Port}";
        Assert.StartsWith(root + "/?t=", server.Url);
        Assert.Equal(32, server.Token.Length);
        foreach (var path in new[] { "/", "/app.js", "/api/config", "/api/points", "/events", "/api/export/checkpoint", "/api/export/command", "/nope" })
        {
            await AssertRefused(root + path);
            await AssertRefused(root + path + "?t=" + WrongToken(server.Token));
        }
        using (var client = new HttpClient())
        {
            var post = await client.PostAsync(root + "/api/control", new StringContent("{\"action\":\"play\"}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Forbidden, post.StatusCode);
            Assert.False(server.Session.Playing);
        }
        // With the token: the page (with the token written into its asset links) and the API answer.
        var page = await (await Get(server.Url)).Content.ReadAsStringAsync();
        Assert.Contains($"app.js?t={server.Token}", page);
        Assert.Equal(HttpStatusCode.OK, (await Get(root + "/api/config", server.Token)).StatusCode);
        var events = await Get(root + "/events", server.Token);
        Assert.Equal(HttpStatusCode.OK, events.StatusCode);
        Assert.Equal("text/event-stream", events.Content.Headers.ContentType?.MediaType);
        events.Dispose();
    }

    [Fact]
    public async Task TheServerListensOnLoopbackOnly()
    {
        await using var server = await VizServer.StartAsync(0);
        var addresses = System.Net.NetworkInformation.IPGlobalProperties.GetIPGlobalProperties().GetActiveTcpListeners()
            .Where(e => e.Port == server.Port).ToList();
        Assert.NotEmpty(addresses);
        Assert.All(addresses, e => Assert.True(IPAddress.IsLoopback(e.Address), $"listening on {e}"));
    }

    [Fact]
    public async Task APortInUseIsAOneLineError()
    {
        using var taken = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var stderr = new StringWriter();
        // On a run that wrongly starts, the command would serve until Ctrl+C: bound the wait.
        var run = Task.Run(() => Cli.Cli.Run(["viz", "--port", port.ToString(CultureInfo.InvariantCulture)], TextWriter.Null, stderr));
        Assert.True(await Task.WhenAny(run, Task.Delay(30000)) == run, "viz started on a port in use");
        Assert.Equal(2, await run);
        Assert.StartsWith($"error: --port {port}: cannot listen on 127.0.0.1:{port} (", stderr.ToString());
    }

    [Fact]
    public void CsvErrorsNameTheLine()
    {
        var c = new VizConfig { Dataset = "csv" };
        var e = Assert.Throws<VizException>(() => VizData.Csv("x,y,label\n0,1,0\n1,oops,1\n", c));
        Assert.Equal("csv line 3: y 'oops' is not a finite number.", e.Message);
        e = Assert.Throws<VizException>(() => VizData.Csv("0,1,0\n1,2\n", c));
        Assert.Equal("csv line 2: expected 3 comma-separated fields x,y,label, got 2.", e.Message);
        var eleven = string.Join("\n", Enumerable.Range(0, 11).Select(i => $"{i},{i},{i}"));
        e = Assert.Throws<VizException>(() => VizData.Csv(eleven, c));
        Assert.Equal("csv line 11: label '10' is an 11th class; at most 10 classes are allowed.", e.Message);
        var ok = VizData.Csv("x,y,c\n" + string.Join("\n", Enumerable.Range(0, 20).Select(i => $"{i},{-i},{(i % 3 == 0 ? "a" : "b")}")), c);
        Assert.Equal(["a", "b"], ok.ClassNames);
        Assert.Equal(20, ok.TrainCount + ok.TestCount);
    }

    /// <summary>The gradient of weight [to, from] of linear layer <paramref name="layer"/> for one train example, computed here with the library directly.</summary>
    private static double LibraryGradient(VizSession session, int layer, int to, int from, int example)
    {
        Sequential model;
        float[] x;
        long y;
        lock (session.Lock)
        {
            var copy = session.Copy();
            model = VizSession.Replica(copy);
            x = session.TrainInputs.AsSpan(example * session.Inputs, session.Inputs).ToArray();
            y = session.Data.TrainY[example];
        }
        var logits = model.Forward(Tensor.FromArray(x, 1, x.Length));
        Loss.CrossEntropy(logits, Tensor.FromArray(new[] { y }, 1)).Backward();
        return model.Layers.OfType<Linear>().ElementAt(layer).Weight.Grad!.GetDouble(to, from);
    }

    [ChromiumFact]
    public async Task ThePageTrainsAndShowsTheGradientOfAClickedEdge()
    {
        Assert.True(File.Exists(ChromiumFactAttribute.Path), $"BACKPROP_REQUIRE_CHROMIUM=1 but no Chromium at {ChromiumFactAttribute.Path}");
        await using var server = await VizServer.StartAsync(0);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumFactAttribute.Path, Headless = true, Args = ["--no-sandbox"] });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1360, Height = 980 } });
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync(server.Url);
        await page.WaitForSelectorAsync("body[data-ready='1']");

        // Through the page's controls: XOR, one hidden layer of 4, then apply.
        await page.SelectOptionAsync("#dataset", "xor");
        await page.FillAsync("#hidden", "4");
        await page.FillAsync("#lr", "0.05");
        await page.ClickAsync("#apply");
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#diagram canvas.neuron').length === 2 + 4 + 2 && document.getElementById('heatmap').dataset.step === '0'");
        Assert.Equal([2, 4, 2], server.Session.Sizes);
        string heat0 = await page.EvalOnSelectorAsync<string>("#heatmap", "c => c.toDataURL()");
        string edges0 = await page.EvalOnSelectorAsync<string>("#diagram svg", "s => [...s.querySelectorAll('line.edge')].map(e => e.getAttribute('stroke-width')).join(',')");

        // Train: play for a moment, pause, then single steps.
        await page.ClickAsync("#play");
        await TrainedSteps(server, 20);
        await page.ClickAsync("#pause");
        await SettledStep(page, server);
        for (int i = 0; i < 3; i++) await page.ClickAsync("#step");
        long step = await SettledStep(page, server);
        Assert.True(step >= 23, $"only {step} steps");
        await page.WaitForFunctionAsync($"() => document.getElementById('heatmap').dataset.step === '{step}' && document.getElementById('diagram').dataset.step === '{step}'");
        string heat1 = await page.EvalOnSelectorAsync<string>("#heatmap", "c => c.toDataURL()");
        string edges1 = await page.EvalOnSelectorAsync<string>("#diagram svg", "s => [...s.querySelectorAll('line.edge')].map(e => e.getAttribute('stroke-width')).join(',')");
        Assert.NotEqual(heat0, heat1);
        Assert.NotEqual(edges0, edges1);

        // Click the edge from hidden neuron 2 to output 1 for train example 7.
        await page.FillAsync("#example", "7");
        await page.DispatchEventAsync("#diagram line.hit[data-layer='1'][data-to='1'][data-from='2']", "click");
        var grad = await page.WaitForSelectorAsync("#inspect-grad");
        double shown = double.Parse((await grad!.GetAttributeAsync("data-value"))!, CultureInfo.InvariantCulture);
        string text = (await grad.TextContentAsync())!;
        double product = double.Parse((await page.GetAttributeAsync("#inspect-product", "data-value"))!, CultureInfo.InvariantCulture);
        double expected = LibraryGradient(server.Session, 1, 1, 2, 7);
        Assert.True(expected != 0, "the chosen weight has a zero gradient: the test would prove little");
        Assert.Equal(expected, shown, 12);
        Assert.Equal(expected, double.Parse(text, CultureInfo.InvariantCulture), Math.Abs(expected) * 1e-5);
        Assert.Equal(expected, product, Math.Abs(expected) * 1e-5 + 1e-9); // the chain-rule product ∂L/∂z · a
        Assert.Contains("w.Grad", await page.TextContentAsync("#inspect"));

        // The exported command line reflects the page's settings.
        await page.ClickAsync("#export-command");
        await page.WaitForFunctionAsync("() => document.getElementById('command').textContent.length > 0");
        Assert.StartsWith("backprop train xor --model mlp:2-4-2", await page.TextContentAsync("#command"));

        await page.Locator("#net-view").ScreenshotAsync(new() { Path = System.IO.Path.Combine(ShotDir(), "viz-network.png") });
        await page.Locator("#inspect-view").ScreenshotAsync(new() { Path = System.IO.Path.Combine(ShotDir(), "viz-inspect.png") });
        var shot = System.IO.Path.Combine(ShotDir(), "viz-page.png");
        await page.ScreenshotAsync(new() { Path = shot, FullPage = true });
        Console.WriteLine($"screenshot: {shot}");

        // One browser for both (a launch costs seconds): the other datasets' views on the same page.
        await OtherViews(page, server);
        Assert.Empty(errors);
    }

    /// <summary>Where the browser tests write their screenshots (BACKPROP_VIZ_SCREENSHOTS, else the temp folder).</summary>
    private static string ShotDir() => Environment.GetEnvironmentVariable("BACKPROP_VIZ_SCREENSHOTS") is { Length: > 0 } d ? d : System.IO.Path.GetTempPath();

    private static async Task ApplyAndStep(IPage page, VizServer server, int steps)
    {
        await page.ClickAsync("#apply");
        await page.WaitForFunctionAsync("() => document.getElementById('status').dataset.step === '0'");
        await page.ClickAsync("#play");
        await TrainedSteps(server, steps);
        await page.ClickAsync("#pause");
        long step = await SettledStep(page, server);
        await page.WaitForFunctionAsync($"() => document.getElementById('status').dataset.step === '{step}'");
    }

    /// <summary>
    /// Waits until the server has trained <paramref name="steps"/> steps (rather than until the page shows
    /// them: while playing, the page gets frames only as often as their cost allows; a pause sends one at once).
    /// </summary>
    private static async Task TrainedSteps(VizServer server, long steps)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (server.Session.Step < steps)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"training reached only step {server.Session.Step} of {steps} (playing: {server.Session.Playing}, error: {server.Session.Error})");
            await Task.Delay(5);
        }
    }

    /// <summary>The step count once the page's requests have been answered (a click returns before its request does).</summary>
    private static async Task<long> SettledStep(IPage page, VizServer server)
    {
        await page.WaitForFunctionAsync("() => document.body.dataset.busy === '0'");
        Assert.False(server.Session.Playing);
        lock (server.Session.Lock) return server.Session.Step; // after the step in progress, if any
    }

    /// <summary>The same page with the other datasets: the map, the lines of a one-input model, digit images, CSV uploads.</summary>
    private static async Task OtherViews(IPage page, VizServer server)
    {
        string dir = ShotDir();

        // Cities on the map of Western Europe: four classes, the outline drawn under the points.
        await page.SelectOptionAsync("#dataset", "cities");
        await page.FillAsync("#hidden", "6");
        await page.FillAsync("#lr", "0.05");
        await ApplyAndStep(page, server, 40);
        Assert.Equal(4, await page.Locator("#legend span").CountAsync());
        Assert.True(server.Session.Data.Map);
        await page.Locator("#heat-view").ScreenshotAsync(new() { Path = System.IO.Path.Combine(dir, "viz-cities.png") });

        // Cities by longitude: one input, no hidden layer: the output lines and the softmax curves.
        await page.SelectOptionAsync("#dataset", "cities-longitude");
        await page.FillAsync("#hidden", "");
        await page.FillAsync("#lr", "0.1");
        await ApplyAndStep(page, server, 30);
        Assert.Equal([1, 3], server.Session.Sizes);
        Assert.True(await page.IsVisibleAsync("#line-view"));
        Assert.False(await page.IsVisibleAsync("#hidden-view"));
        await page.Locator("#line-view").ScreenshotAsync(new() { Path = System.IO.Path.Combine(dir, "viz-lines.png") });

        // Digits: first-layer weights as images and the PCA of the last hidden layer.
        await page.SelectOptionAsync("#dataset", "digits");
        await page.FillAsync("#hidden", "16");
        await page.FillAsync("#lr", "0.01");
        await ApplyAndStep(page, server, 10);
        Assert.Equal([64, 16, 10], server.Session.Sizes);
        Assert.True(await page.IsVisibleAsync("#images-view"));
        Assert.True(await page.IsVisibleAsync("#pca-view"));
        Assert.False(await page.IsVisibleAsync("#heat-view"));
        Assert.Equal(8 * 44, await page.EvalOnSelectorAsync<int>("#weight-images", "c => c.width"));
        await page.Locator("#images-view").ScreenshotAsync(new() { Path = System.IO.Path.Combine(dir, "viz-digit-weights.png") });
        await page.Locator("#pca-view").ScreenshotAsync(new() { Path = System.IO.Path.Combine(dir, "viz-digit-pca.png") });

        // An uploaded CSV: a malformed line is an error naming it; a good file trains with its own classes.
        await page.SelectOptionAsync("#dataset", "csv");
        await page.SetInputFilesAsync("#csv", new FilePayload { Name = "bad.csv", MimeType = "text/csv", Buffer = Encoding.UTF8.GetBytes("x,y,label\n0,1,a\n2,two,b\n") });
        await page.ClickAsync("#apply");
        await page.WaitForFunctionAsync("() => document.getElementById('error').textContent.includes('csv line 3')");
        Assert.Equal("error: csv line 3: y 'two' is not a finite number.", await page.TextContentAsync("#error"));
        var good = string.Join("\n", Enumerable.Range(0, 90).Select(i => $"{Math.Cos(i):R},{Math.Sin(i * 1.3):R},{new[] { "red", "green", "blue" }[i % 3]}"));
        await page.SetInputFilesAsync("#csv", new FilePayload { Name = "good.csv", MimeType = "text/csv", Buffer = Encoding.UTF8.GetBytes(good) });
        await page.FillAsync("#hidden", "5");
        await ApplyAndStep(page, server, 5);
        Assert.Equal("", await page.TextContentAsync("#error"));
        Assert.Equal(["red", "green", "blue"], server.Session.Data.ClassNames);
        Assert.Equal(["x", "y"], server.Session.Config.Features); // y is back after the one-input dataset
        Assert.Equal(3, await page.Locator("#legend span").CountAsync());
    }

    [Fact]
    public async Task TheExportedCheckpointRestoresTheModelAndRecordsTheConfig()
    {
        await using var server = await VizServer.StartAsync(0, new VizConfig { Dataset = "xor", Hidden = [3], Seed = 2 });
        server.Session.StepMany(4);
        using var client = new HttpClient();
        client.DefaultRequestHeaders.Add("X-Backprop-Token", server.Token);
        var bytes = await client.GetByteArrayAsync($"http://127.0.0.1:{server.Port}/api/export/checkpoint");
        var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"viz-export-{Guid.NewGuid():N}.safetensors");
        try
        {
            await File.WriteAllBytesAsync(path, bytes);
            var model = new Sequential(new Linear(2, 3), new Tanh(), new Linear(3, 2));
            var content = Backprop.IO.Checkpoint.Load(path, model);
            Assert.Equal(4, content.Step);
            Assert.Equal("xor", content.Extra["viz"]!["dataset"]!.GetValue<string>());
            Assert.StartsWith("backprop train xor --model mlp:2-3-2 --activation tanh", content.Extra["command"]!.GetValue<string>());
            lock (server.Session.Lock)
                Assert.Equal(server.Session.Layers[1].Weight.ToArray(), ((Linear)model.Layers.ElementAt(2)).Weight.ToArray());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task InspectReportsTheLibraryGradientAndTheChainRuleProduct()
    {
        await using var server = await VizServer.StartAsync(0, new VizConfig { Dataset = "circles", Hidden = [3], Seed = 3 });
        server.Session.StepMany(5);
        var json = VizInspect.Run(server.Session.Copy(), "edge", 0, 1, 0, 4, false);
        double expected = LibraryGradient(server.Session, 0, 1, 0, 4);
        Assert.Equal(expected, json["grad"]!.GetValue<double>(), 12);
        // ∂L/∂w = ∂L/∂z · x, and ∂L/∂z = ∂L/∂a · σ'(z) = (Σ_k w_k ∂L/∂z_k) · (1 − tanh²(z)) for tanh
        Assert.Equal(expected, json["product"]!.GetValue<double>(), 1e-6);
        double slope = json["slope"]!.GetValue<double>(), dLda = json["dLda"]!.GetValue<double>(), dLdz = json["dLdz"]!.GetValue<double>();
        Assert.Equal(dLdz, dLda * slope, 1e-6);
        var neuron = VizInspect.Run(server.Session.Copy(), "neuron", 0, 1, 0, 4, false);
        double z = neuron["z"]!.GetValue<double>();
        Assert.Equal(1 - Math.Tanh(z) * Math.Tanh(z), neuron["slope"]!.GetValue<double>(), 1e-6);
        Assert.Equal(Math.Tanh(z), neuron["value"]!.GetValue<double>(), 1e-6);
    }
}
