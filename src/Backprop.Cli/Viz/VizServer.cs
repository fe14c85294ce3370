using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Backprop.Cli.Viz;

/// <summary>
/// The page of <c>backprop viz</c>: Kestrel on 127.0.0.1 only, every request (page, assets, API
/// and the Server-Sent Events stream) must carry the random token of the printed URL (query
/// <c>t</c> or header <c>X-Backprop-Token</c>), else 403. Training runs on the session's thread;
/// a publisher thread turns snapshots of the model into the page's state, only while a visible page
/// is connected and the model changed, at most <see cref="FramesPerSecond"/> times a second and
/// further apart when a frame costs more: the interval is the frame's CPU (its own, measured, plus
/// what the page reports its drawing takes) divided by <see cref="CpuBudget"/>. Each page has a
/// bounded channel of one frame that drops the stale one, so a slow page never holds up training.
/// </summary>
public sealed class VizServer : IAsyncDisposable
{
    /// <summary>Most frames a second sent to the page.</summary>
    public const int FramesPerSecond = 4;

    /// <summary>The share of one core that making and drawing frames may take (frames are spaced to keep within it).</summary>
    public const double CpuBudget = 0.10;

    /// <summary>
    /// What a page's drawing costs in all per millisecond it reports: the page times its main thread
    /// (script, style, layout, paint); Chromium's compositor and GPU process add about as much again
    /// (headless Chromium on 2 cores, software rendering: 33 ms of CPU per frame in all for 16.5 ms on
    /// the renderer's main thread).
    /// </summary>
    public const double PageFactor = 2;

    /// <summary>The longest wait between two frames while the model changes.</summary>
    public const double MaxIntervalMs = 10_000;

    /// <summary>One connected page: its channel, whether it is visible, and its drawing cost per frame.</summary>
    private sealed class Client(Channel<byte[]> channel, double drawMs)
    {
        public Channel<byte[]> Channel { get; } = channel;
        public volatile bool Visible = true;
        public double DrawMs = drawMs;
    }

    /// <summary>A new page's drawing cost per frame until it reports its own: the last reported, or this guess.</summary>
    private double _pageDrawMs = 10;

    private readonly WebApplication _app;
    private readonly Dictionary<string, Client> _clients = [];
    private readonly VizViews _views = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly AutoResetEvent _wake = new(false);
    private Thread? _publisher;
    private volatile bool _forceFrame = true;
    private readonly object _statsGate = new();
    private long _frames;
    private double _frameCpuMs, _lastIntervalMs;
    private readonly double[] _recentCost = new double[5];

    private VizServer(WebApplication app, VizSession session, string token)
    {
        _app = app;
        Session = session;
        Token = token;
    }

    /// <summary>The training session.</summary>
    public VizSession Session { get; }

    /// <summary>The secret every request must present.</summary>
    public string Token { get; }

    /// <summary>The page's address, with the token.</summary>
    public string Url { get; private set; } = "";

    /// <summary>The port listened on.</summary>
    public int Port { get; private set; }

    /// <summary>What the publisher has done: frames built, their CPU in all, the last interval chosen.</summary>
    public (long Frames, double CpuMs, double LastIntervalMs) Stats
    {
        get { lock (_statsGate) return (_frames, _frameCpuMs, _lastIntervalMs); }
    }

    /// <summary>
    /// The wait before the next frame, in milliseconds: at least 1000 / <see cref="FramesPerSecond"/>,
    /// and long enough that a frame costing <paramref name="frameCpuMs"/> on the server plus
    /// <see cref="PageFactor"/> × <paramref name="drawMs"/> (the page's main thread) in the browser
    /// stays within <see cref="CpuBudget"/> of one core; at most <see cref="MaxIntervalMs"/>.
    /// </summary>
    public static double IntervalFor(double frameCpuMs, double drawMs) =>
        Math.Clamp((Math.Max(0, frameCpuMs) + PageFactor * Math.Max(0, drawMs)) / CpuBudget, 1000.0 / FramesPerSecond, MaxIntervalMs);

    /// <summary>Starts the server on 127.0.0.1:<paramref name="port"/> (0: any free port).</summary>
    public static async Task<VizServer> StartAsync(int port, VizConfig? config = null)
    {
        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "Backprop.Cli", ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, port);
            k.AddServerHeader = false;
        });
        builder.Services.Configure<KestrelServerOptions>(o => o.Limits.MaxRequestBodySize = 16 << 20);
        var app = builder.Build();
        var server = new VizServer(app, new VizSession(config ?? new VizConfig()), token);
        server.Map();
        try
        {
            await app.StartAsync();
        }
        catch
        {
            server.Session.Dispose();
            await app.DisposeAsync();
            throw;
        }
        var address = app.Urls.First();
        server.Port = new Uri(address).Port;
        server.Url = $"http://127.0.0.1:{server.Port}/?t={token}";
        server._publisher = new Thread(server.Publish) { IsBackground = true, Name = "backprop viz publisher" };
        server._publisher.Start();
        return server;
    }

    private bool Authorized(HttpContext c)
    {
        string? given = c.Request.Query["t"];
        if (string.IsNullOrEmpty(given)) given = c.Request.Headers["X-Backprop-Token"];
        return given != null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(Token));
    }

    private void Map()
    {
        _app.Use(async (c, next) =>
        {
            if (!Authorized(c))
            {
                c.Response.StatusCode = 403;
                await c.Response.WriteAsync("403: this page needs the token of the URL that 'backprop viz' printed.\n");
                return;
            }
            c.Response.Headers.CacheControl = "no-store";
            c.Response.Headers["X-Content-Type-Options"] = "nosniff";
            await next();
        });
        _app.MapGet("/", () => Results.Text(Asset("index.html").Replace("{{TOKEN}}", Token, StringComparison.Ordinal), "text/html; charset=utf-8"));
        _app.MapGet("/app.js", () => Results.Text(Asset("app.js"), "text/javascript; charset=utf-8"));
        _app.MapGet("/app.css", () => Results.Text(Asset("app.css"), "text/css; charset=utf-8"));
        _app.MapGet("/europe.js", () => Results.Text(Asset("europe.js"), "text/javascript; charset=utf-8"));
        _app.MapGet("/api/config", () => Results.Text(ConfigJson().ToJsonString(), "application/json"));
        _app.MapPost("/api/config", async (HttpContext c) =>
        {
            var body = await JsonNode.ParseAsync(c.Request.Body) as JsonObject ?? throw new VizException("expected a JSON object.");
            return Guard(() =>
            {
                var config = body["config"].Deserialize<VizConfig>(JsonOptions) ?? throw new VizException("no config given.");
                string? csv = body["csv"]?.GetValue<string>() ?? (config.Dataset == "csv" ? Session.Csv : null);
                Session.Reset(config, csv);
                Session.Error = null;
                _views.Clear();
                Wake();
                return ConfigJson();
            });
        });
        _app.MapPost("/api/control", async (HttpContext c) =>
        {
            var body = await JsonNode.ParseAsync(c.Request.Body) as JsonObject ?? throw new VizException("expected a JSON object.");
            return Guard(() =>
            {
                string action = body["action"]?.GetValue<string>() ?? "";
                switch (action)
                {
                    case "play": Session.Play(); break;
                    case "pause": Session.Pause(); break;
                    case "step":
                        Session.Pause();
                        Session.StepMany(Math.Clamp(body["steps"]?.GetValue<int>() ?? 1, 1, 1000));
                        break;
                    case "reset":
                        Session.Reset(Session.Config, Session.Csv);
                        _views.Clear();
                        break;
                    default: throw new VizException($"unknown action '{action}'; expected play, pause, step or reset.");
                }
                Wake();
                return new JsonObject { ["step"] = Session.Step, ["playing"] = Session.Playing };
            });
        });
        _app.MapPost("/api/inspect", async (HttpContext c) =>
        {
            var b = await JsonNode.ParseAsync(c.Request.Body) as JsonObject ?? throw new VizException("expected a JSON object.");
            return Guard(() => VizInspect.Run(Session.Copy(), b["kind"]?.GetValue<string>() ?? "edge", Int(b, "layer"), Int(b, "to"), Int(b, "from"),
                Int(b, "example"), b["split"]?.GetValue<string>() == "test"));
        });
        _app.MapGet("/api/points", () => Results.Text(PointsJson().ToJsonString(), "application/json"));
        _app.MapGet("/api/export/command", () => Results.Text(Session.TrainCommandLine() + "\n", "text/plain; charset=utf-8"));
        _app.MapGet("/api/export/checkpoint", () =>
        {
            var path = Path.Combine(Path.GetTempPath(), $"backprop-viz-{Guid.NewGuid():N}.safetensors");
            try
            {
                Session.SaveCheckpoint(path);
                var bytes = File.ReadAllBytes(path);
                return Results.File(bytes, "application/octet-stream", $"viz-{Session.Config.Dataset}-step{Session.Step}.safetensors");
            }
            finally
            {
                File.Delete(path);
            }
        });
        _app.MapPost("/api/viewer", async (HttpContext c) =>
        {
            // The page says whether it is visible and what drawing a frame costs it (milliseconds of script).
            var b = await JsonNode.ParseAsync(c.Request.Body) as JsonObject ?? throw new VizException("expected a JSON object.");
            return Guard(() =>
            {
                string id = b["client"]?.GetValue<string>() ?? "";
                bool visible = b["visible"]?.GetValue<bool>() ?? true;
                double draw = b["drawMs"]?.GetValue<double>() ?? 0;
                lock (_clients)
                    if (_clients.TryGetValue(id, out var client))
                    {
                        bool shown = visible && !client.Visible;
                        client.Visible = visible;
                        client.DrawMs = _pageDrawMs = double.IsFinite(draw) ? Math.Clamp(draw, 0, 10_000) : 0;
                        if (shown) Wake();
                    }
                return new JsonObject { ["ok"] = true };
            });
        });
        _app.MapGet("/events", async (HttpContext c) =>
        {
            c.Response.ContentType = "text/event-stream";
            c.Response.Headers["X-Accel-Buffering"] = "no";
            string id = c.Request.Query["c"].ToString();
            if (id.Length == 0 || id.Length > 64) id = Guid.NewGuid().ToString("N");
            var client = new Client(Channel.CreateBounded<byte[]>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true }), _pageDrawMs);
            lock (_clients) _clients[id] = client;
            Wake();
            try
            {
                await c.Response.WriteAsync(": connected\n\n", c.RequestAborted);
                await c.Response.Body.FlushAsync(c.RequestAborted);
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(c.RequestAborted, _stop.Token);
                await foreach (var frame in client.Channel.Reader.ReadAllAsync(stop.Token))
                {
                    await c.Response.Body.WriteAsync(DataPrefix, stop.Token);
                    await c.Response.Body.WriteAsync(frame, stop.Token);
                    await c.Response.Body.WriteAsync(EventEnd, stop.Token);
                    await c.Response.Body.FlushAsync(stop.Token);
                }
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                lock (_clients)
                    if (_clients.TryGetValue(id, out var current) && current == client) _clients.Remove(id);
            }
        });
    }

    private static readonly byte[] DataPrefix = "data: "u8.ToArray(), EventEnd = "\n\n"u8.ToArray();

    /// <summary>Asks for a frame now (after a control, a new page, a page shown again).</summary>
    private void Wake()
    {
        _forceFrame = true;
        _wake.Set();
    }

    private static int Int(JsonObject b, string name) => b[name]?.GetValue<int>() ?? 0;

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    private static IResult Guard(Func<JsonObject> f)
    {
        try
        {
            return Results.Text(f().ToJsonString(), "application/json");
        }
        catch (Exception e) when (e is VizException or Data.DataFormatException or FileNotFoundException or DirectoryNotFoundException or InvalidOperationException or FormatException or JsonException or ArgumentException)
        {
            return Results.Text(new JsonObject { ["error"] = Cli.OneLine(e.Message) }.ToJsonString(), "application/json", statusCode: 400);
        }
    }

    private JsonObject ConfigJson() => new()
    {
        ["config"] = JsonSerializer.SerializeToNode(Session.Config, JsonOptions),
        ["datasets"] = new JsonArray([.. VizData.Names.Select(n => (JsonNode)n)]),
        ["features"] = new JsonArray([.. VizData.FeatureNames.Select(n => (JsonNode)n)]),
        ["activations"] = new JsonArray([.. NN.Activation.Names.Select(n => (JsonNode)n)]),
        ["optimizers"] = new JsonArray([.. Training.OptimizerFactory.Names.Select(n => (JsonNode)n)]),
        ["losses"] = new JsonArray("cross-entropy", "mse"),
        ["command"] = Session.TrainCommandLine(),
    };

    private JsonObject PointsJson()
    {
        var d = Session.Data;
        int show = d.Kind == VizKind.Image ? 0 : 2000;
        return new JsonObject
        {
            ["version"] = Session.Version,
            ["kind"] = d.Kind.ToString().ToLowerInvariant(),
            ["dims"] = d.Dims,
            ["box"] = new JsonArray([.. d.Box.Select(v => (JsonNode)v)]),
            ["map"] = d.Map,
            ["classes"] = new JsonArray([.. d.ClassNames.Select(n => (JsonNode)n)]),
            ["features"] = new JsonArray([.. (d.Kind == VizKind.Image ? [] : Session.Config.Features).Select(n => (JsonNode)n)]),
            ["train"] = new JsonArray([.. d.TrainX.Take(show * d.Dims).Select(v => (JsonNode)v)]),
            ["trainY"] = new JsonArray([.. d.TrainY.Take(show).Select(v => (JsonNode)v)]),
            ["test"] = new JsonArray([.. d.TestX.Take(show * d.Dims).Select(v => (JsonNode)v)]),
            ["testY"] = new JsonArray([.. d.TestY.Take(show).Select(v => (JsonNode)v)]),
            ["trainCount"] = d.TrainCount,
            ["testCount"] = d.TestCount,
        };
    }

    /// <summary>
    /// The publisher: a frame when the model changed (or a page asked), only while a visible page
    /// listens, spaced by <see cref="IntervalFor"/> of the recent frames' CPU (the median of the last
    /// five, so that one slow frame, such as the first one's compilation, does not stall the page).
    /// </summary>
    private void Publish()
    {
        long sent = -1;
        var snapshot = new VizSession.Snapshot();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double due = 0;
        int costs = 0;
        while (!_stop.IsCancellationRequested)
        {
            Client[] clients;
            lock (_clients) clients = [.. _clients.Values.Where(c => c.Visible)];
            if (clients.Length == 0)
            {
                _wake.WaitOne(1000); // a new page, or one shown again, wakes it
                continue;
            }
            double now = clock.Elapsed.TotalMilliseconds;
            if (!_forceFrame && (Session.Version == sent || now < due))
            {
                // Until the next frame is due (polling for a changed model); a control or a new page wakes it at once.
                _wake.WaitOne(TimeSpan.FromMilliseconds(Math.Clamp(due - now, 20, 100)));
                continue;
            }
            _forceFrame = false;
            double start = clock.Elapsed.TotalMilliseconds, cpu0 = ThreadCpu.Milliseconds();
            byte[] frame;
            try
            {
                Session.CopyInto(snapshot);
                sent = snapshot.Version;
                frame = _views.Build(Session, snapshot);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                frame = Encoding.UTF8.GetBytes(new JsonObject { ["type"] = "error", ["error"] = Cli.OneLine(e.Message) }.ToJsonString());
            }
            foreach (var c in clients) c.Channel.Writer.TryWrite(frame);
            double cost = ThreadCpu.Milliseconds() - cpu0;
            _recentCost[costs++ % _recentCost.Length] = cost;
            double typical = _recentCost.Take(Math.Min(costs, _recentCost.Length)).Order().ElementAt(Math.Min(costs, _recentCost.Length) / 2);
            double interval = IntervalFor(typical, clients.Max(c => c.DrawMs));
            due = start + interval;
            lock (_statsGate)
            {
                _frames++;
                _frameCpuMs += cost;
                _lastIntervalMs = interval;
            }
        }
    }

    private static string Asset(string name)
    {
        using var s = typeof(VizServer).Assembly.GetManifestResourceStream("Backprop.Cli.Viz.Assets." + name)
            ?? throw new InvalidOperationException($"viz asset {name} is missing from the assembly (build problem).");
        using var r = new StreamReader(s, Encoding.UTF8);
        return r.ReadToEnd();
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        lock (_clients) foreach (var c in _clients.Values) c.Channel.Writer.TryComplete();
        _wake.Set();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _publisher?.Join(2000);
        Session.Dispose();
    }
}
