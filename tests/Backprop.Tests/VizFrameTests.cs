using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Backprop.Cli.Viz;
using Backprop.NN;

namespace Backprop.Tests;

/// <summary>The frames of <c>backprop viz</c> without a browser: their numbers, their encoding, and how far apart they are.</summary>
public class VizFrameTests
{
    private static float[] F32(JsonNode? b64) => MemoryMarshal.Cast<byte, float>(Convert.FromBase64String(b64!.GetValue<string>())).ToArray();

    private static byte[] U8(JsonNode? b64) => Convert.FromBase64String(b64!.GetValue<string>());

    [Fact]
    public void FramesAreSpacedToKeepTheirCostWithinTheBudget()
    {
        double min = 1000.0 / VizServer.FramesPerSecond;
        Assert.Equal(min, VizServer.IntervalFor(0.5, 0));
        // Costs large enough that the budget, not the frame-rate cap, sets the interval.
        Assert.True(40 / VizServer.CpuBudget > min && (2 + VizServer.PageFactor * 20) / VizServer.CpuBudget > min);
        Assert.Equal(40 / VizServer.CpuBudget, VizServer.IntervalFor(40, 0), 9);
        Assert.Equal((2 + VizServer.PageFactor * 20) / VizServer.CpuBudget, VizServer.IntervalFor(2, 20), 9);
        Assert.Equal(VizServer.MaxIntervalMs, VizServer.IntervalFor(1e6, 0));
        foreach (var cost in new[] { 0.1, 1, 3, 7.5, 12, 40, 150 })
            foreach (var draw in new[] { 0, 0.5, 4, 20 })
            {
                double interval = VizServer.IntervalFor(cost, draw);
                Assert.True(interval >= min);
                if (interval < VizServer.MaxIntervalMs)
                    Assert.True((cost + VizServer.PageFactor * draw) / interval <= VizServer.CpuBudget + 1e-12, $"cost {cost} ms + draw {draw} ms every {interval} ms");
            }
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "timed out waiting for " + what);
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task NoFramesForAHiddenPageAndTrainingGoesOnBesideAPageThatDoesNotRead()
    {
        await using var server = await VizServer.StartAsync(0, new VizConfig { Dataset = "xor", Hidden = [4] });
        var root = $"http://127.0.0.1:{server.Port}";
        using var client = new HttpClient();
        client.DefaultRequestHeaders.Add("X-Backprop-Token", server.Token);
        // A page that connects to the event stream and never reads it.
        using var stalled = await client.GetAsync(root + "/events?c=p1", HttpCompletionOption.ResponseHeadersRead);
        server.Session.Play();
        await Until(() => server.Stats.Frames >= 1, "the first frame for a new page");
        long s0 = server.Session.Step;
        await Until(() => server.Session.Step >= s0 + 200, "training to go on");

        // The page says it is hidden: no more frames, though training goes on.
        async Task Visible(bool visible) => (await client.PostAsync(root + "/api/viewer",
            new StringContent($"{{\"client\":\"p1\",\"visible\":{(visible ? "true" : "false")},\"drawMs\":1}}", System.Text.Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
        await Visible(false);
        await Task.Delay(300); // a frame in progress
        long f0 = server.Stats.Frames;
        s0 = server.Session.Step;
        await Task.Delay(1200);
        Assert.Equal(f0, server.Stats.Frames);
        Assert.True(server.Session.Step > s0, "training stopped");

        // Shown again: a frame at once.
        await Visible(true);
        await Until(() => server.Stats.Frames > f0, "a frame for the page shown again");
        server.Session.Pause();
    }

    [Fact]
    public void TheFrameCostIsMeasuredInCpuTimeOnLinux()
    {
        if (!OperatingSystem.IsLinux()) return; // elsewhere it is wall time, by design
        double c0 = ThreadCpu.Milliseconds();
        Thread.Sleep(300);
        double asleep = ThreadCpu.Milliseconds() - c0;
        Assert.True(asleep < 50, $"300 ms asleep counted {asleep} ms: wall time, not this thread's CPU");
        c0 = ThreadCpu.Milliseconds();
        var wall = System.Diagnostics.Stopwatch.StartNew();
        double busy = 0;
        while (busy < 10 && wall.ElapsedMilliseconds < 10_000) busy = ThreadCpu.Milliseconds() - c0;
        Assert.True(busy >= 10, $"busy for {wall.ElapsedMilliseconds} ms, counted {busy} ms");
    }

    [Fact]
    public void AFrameCarriesTheModelsNumbers()
    {
        using var session = new VizSession(new VizConfig { Dataset = "circles", Hidden = [3], Seed = 3 });
        session.StepMany(5);
        var before = session.Layers.Select(l => l.Weight.ToArray()).ToArray();
        session.StepMany(1);
        var snapshot = new VizSession.Snapshot();
        session.CopyInto(snapshot);
        var views = new VizViews();
        var frame = JsonNode.Parse(views.Build(session, snapshot))!;
        Assert.Equal(6, frame["step"]!.GetValue<long>());
        Assert.Equal([2, 3, 2], frame["sizes"]!.AsArray().Select(n => n!.GetValue<int>()));

        // Edges: weight, gradient and last update (the optimizer's change in the last step) of each layer.
        for (int l = 0; l < 2; l++)
        {
            var e = frame["edges"]![l]!;
            var w = session.Layers[l].Weight.ToArray();
            Assert.Equal(w, F32(e["weight"]));
            Assert.Equal(session.Layers[l].Weight.Grad!.ToArray(), F32(e["grad"]));
            Assert.Equal(w.Zip(before[l], (a, b) => a - b), F32(e["update"]), (a, b) => Math.Abs(a - b) <= 1e-7f);
            Assert.Equal(w.Max(Math.Abs), e["weightMax"]!.GetValue<float>());
        }

        // The heat map: each cell's class and probability are the model's at the cell's centre.
        var data = session.Data;
        var cls = U8(frame["heat"]!["cls"]);
        var p = U8(frame["heat"]!["p"]);
        int g = VizViews.Grid;
        Assert.Equal(g * g, cls.Length);
        foreach (var (r, c) in new[] { (0, 0), (10, 37), (24, 24), (47, 5) })
        {
            float x = (float)(data.Box[0] + (c + 0.5) / g * (data.Box[1] - data.Box[0]));
            float y = (float)(data.Box[3] - (r + 0.5) / g * (data.Box[3] - data.Box[2]));
            var input = Tensor.FromArray(data.Features([x, y], 1, session.Config.Features), 1, 2);
            float[] probs;
            lock (session.Lock)
                using (Tensor.NoGrad())
                    probs = session.Model.Forward(input).Softmax(1).ToArray();
            int best = probs[1] > probs[0] ? 1 : 0;
            Assert.Equal(best, cls[r * g + c]);
            Assert.Equal((int)Math.Round(100 * probs[best]), p[r * g + c]);
        }

        // Thumbnails: inputs, the hidden layer, the logits; int8 of each neuron's output over its largest magnitude.
        var neurons = frame["neurons"]!.AsArray();
        Assert.Equal(3, neurons.Count);
        Assert.Equal(2, F32(neurons[0]!["max"]).Length);
        Assert.Equal(3, F32(neurons[1]!["max"]).Length);
        var inputThumb = MemoryMarshal.Cast<byte, sbyte>(U8(neurons[0]!["v"]));
        float x0 = (float)(data.Box[0] + 1.5 / g * (data.Box[1] - data.Box[0])); // cell (1, 1), the first sampled
        float maxX = F32(neurons[0]!["max"])[0];
        Assert.Equal((int)Math.Round(100 * data.Features([x0, 0], 1, session.Config.Features)[0] / maxX), inputThumb[0]);
        float x1 = (float)(data.Box[0] + 4.5 / g * (data.Box[1] - data.Box[0])); // cell (1, 4), the second: along the row
        Assert.Equal((int)Math.Round(100 * data.Features([x1, 0], 1, session.Config.Features)[0] / maxX), inputThumb[1]);

        // The curves: one point, the loss of the train points as the library computes it.
        var history = frame["history"]!;
        Assert.Equal([6L], history["step"]!.AsArray().Select(n => n!.GetValue<long>()));
        int n = Math.Min(VizViews.EvalPoints, data.TrainCount);
        double loss;
        lock (session.Lock)
            using (Tensor.NoGrad())
                loss = Loss.CrossEntropy(session.Model.Forward(Tensor.FromArray(session.TrainInputs.AsSpan(0, 2 * n).ToArray(), n, 2)),
                    Tensor.FromArray(data.TrainY.AsSpan(0, n).ToArray(), n)).ItemDouble();
        Assert.Equal(loss, F32(history["trainLoss"])[0], 1e-5);

        // The hidden view: the first hidden layer has 3 neurons, so its activations themselves.
        Assert.Equal(3, frame["hidden"]!["dims"]!.GetValue<int>());
        Assert.Equal(3 * Math.Min(300, data.TrainCount), F32(frame["hidden"]!["pts"]).Length);

        // Another step: the same builder and snapshot (reused buffers) carry the new numbers, and a second curve point.
        session.StepMany(1);
        session.CopyInto(snapshot);
        frame = JsonNode.Parse(views.Build(session, snapshot))!;
        Assert.Equal(session.Layers[0].Weight.ToArray(), F32(frame["edges"]![0]!["weight"]));
        Assert.Equal(2, frame["history"]!["step"]!.AsArray().Count);
    }

    [Fact]
    public void TheSnapshotIsCopiedWithoutAllocatingOnceSized()
    {
        using var session = new VizSession(new VizConfig { Dataset = "spirals", Hidden = [8, 8] });
        session.StepMany(2);
        var snapshot = new VizSession.Snapshot();
        session.CopyInto(snapshot);
        session.CopyInto(snapshot);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) session.CopyInto(snapshot);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 1024, $"10 copies allocated {allocated} bytes");
        Assert.Equal(session.Layers[2].Bias!.ToArray(), snapshot.Biases[2]);
    }

    [Fact]
    public void AWideLayerSendsOnlyTheDrawnEdgesAndNeurons()
    {
        using var session = new VizSession(new VizConfig { Dataset = "xor", Hidden = [40], Seed = 2 });
        session.StepMany(1);
        var snapshot = new VizSession.Snapshot();
        session.CopyInto(snapshot);
        var frame = JsonNode.Parse(new VizViews().Build(session, snapshot))!;
        var e = frame["edges"]![1]!; // 40 -> 2
        Assert.Equal(2, e["rows"]!.GetValue<int>());
        Assert.Equal(VizViews.MaxNodes, e["cols"]!.GetValue<int>());
        var w = session.Layers[1].Weight.ToArray();
        var sent = F32(e["weight"]);
        Assert.Equal(2 * VizViews.MaxNodes, sent.Length);
        Assert.Equal(w[40 + 5], sent[VizViews.MaxNodes + 5]); // row 1, column 5
        Assert.Equal(w.Max(Math.Abs), e["weightMax"]!.GetValue<float>()); // the scale is the whole layer's
        Assert.Equal(VizViews.MaxNodes, F32(frame["neurons"]![1]!["max"]).Length);
    }
}
