using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>
/// MultiStepLr, LambdaLr, OneCycleLr and ReduceLrOnPlateau against PyTorch's learning-rate sequences
/// (fixtures/schedules_reference.json, written by tools/loss_schedule_fixtures.py), and a state-dict
/// round trip in the middle of each sequence that continues it exactly.
/// </summary>
public class ScheduleReferenceTests
{
    private static readonly Lazy<JsonObject> Fixture = new(() => JsonNode.Parse(File.ReadAllText(FixturePath()))!.AsObject());

    private static string FixturePath([CallerFilePath] string source = "")
    {
        var nearBinary = Path.Combine(AppContext.BaseDirectory, "fixtures", "schedules_reference.json");
        return File.Exists(nearBinary) ? nearBinary : Path.Combine(Path.GetDirectoryName(source)!, "fixtures", "schedules_reference.json");
    }

    public static TheoryData<string> CaseNames()
    {
        var d = new TheoryData<string>();
        foreach (var c in Fixture.Value["cases"]!.AsArray()) d.Add((string)c!["name"]!);
        return d;
    }

    private static JsonObject Case(string name) => Fixture.Value["cases"]!.AsArray().Single(o => (string)o!["name"]! == name)!.AsObject();

    private static double[] Doubles(JsonNode? n) => [.. n!.AsArray().Select(v => (double)v!)];

    /// <summary>The same function as the fixture script's LambdaLR.</summary>
    private static double Lambda(int e) => Math.Pow(0.95, e) / (1 + e % 3);

    private static (Optimizer Opt, LrScheduler Sched) Make(JsonObject c)
    {
        var ps = new[] { new Parameter(Tensor.Zeros(1)) };
        Optimizer opt = (string?)c["optimizer"] switch
        {
            "rmsprop" => new RmsProp(ps, lr: 0.1, momentum: 0.5),
            "adam" => new Adam(ps, lr: 0.1),
            "sgd" => new Sgd(ps, lr: 0.1, momentum: 0.9),
            _ => new Sgd(ps, lr: 0.1),
        };
        string name = (string)c["name"]!;
        LrScheduler s = name switch
        {
            _ when name.StartsWith("multistep", StringComparison.Ordinal) =>
                new MultiStepLr(opt, [.. c["milestones"]!.AsArray().Select(v => (int)v!)], (double)c["gamma"]!),
            "lambda" => new LambdaLr(opt, Lambda),
            _ when name.StartsWith("onecycle", StringComparison.Ordinal) => new OneCycleLr(opt, (double)c["max_lr"]!, (int)c["total_steps"]!,
                pctStart: (double)c["pct_start"]!, annealStrategy: (string)c["anneal"]! == "cos" ? AnnealStrategy.Cos : AnnealStrategy.Linear,
                divFactor: (double)c["div_factor"]!, finalDivFactor: (double)c["final_div_factor"]!, threePhase: (bool)c["three_phase"]!,
                cycleMomentum: c["momenta"] != null, baseMomentum: (double?)c["base_momentum"] ?? 0.85, maxMomentum: (double?)c["max_momentum"] ?? 0.95),
            _ when name.StartsWith("plateau", StringComparison.Ordinal) => new ReduceLrOnPlateau(opt,
                mode: (string)c["mode"]! == "min" ? PlateauMode.Min : PlateauMode.Max, factor: (double)c["factor"]!, patience: (int)c["patience"]!,
                threshold: (double)c["threshold"]!, thresholdMode: (string)c["threshold_mode"]! == "rel" ? ThresholdMode.Rel : ThresholdMode.Abs,
                cooldown: (int)c["cooldown"]!, minLr: (double)c["min_lr"]!),
            _ => throw new ArgumentException($"no Backprop schedule for fixture case {name}"),
        };
        return (opt, s);
    }

    private static void Advance(LrScheduler s, JsonObject c, int step)
    {
        if (s is ReduceLrOnPlateau p) p.Step(Doubles(c["metrics"])[step]);
        else s.Step();
    }

    private static void Near(double expected, double actual, string where) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-12 * Math.Max(1, Math.Abs(expected)), $"{where}: expected {expected}, got {actual}");

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void MatchesPyTorch(string name)
    {
        var c = Case(name);
        var expected = Doubles(c["lrs"]);
        var (opt, s) = Make(c);
        Near(expected[0], opt.ParamGroups[0].Lr, "after construction");
        for (int i = 1; i < expected.Length; i++)
        {
            Advance(s, c, i - 1);
            Near(expected[i], opt.ParamGroups[0].Lr, $"{name} step {i}");
            if (c["momenta"] is JsonNode m)
                Near(Doubles(m)[i], opt switch { Sgd o => o.Momentum, RmsProp o => o.Momentum, AdamBase o => o.Beta1, _ => double.NaN }, $"{name} momentum at step {i}");
            Assert.Equal(opt.ParamGroups[0].Lr, s.LastLr);
            Assert.Equal(i, s.LastEpoch);
        }
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void StateDictRoundTripContinuesTheSequence(string name)
    {
        var c = Case(name);
        var expected = Doubles(c["lrs"]);
        int half = expected.Length / 2 + 1;
        var (opt, s) = Make(c);
        for (int i = 1; i <= half; i++) Advance(s, c, i - 1);
        var saved = RoundTripMeta(s.StateDict());
        var optState = RoundTripMeta(opt.StateDict());

        var (opt2, s2) = Make(c);
        opt2.LoadStateDict(optState);
        s2.LoadStateDict(saved);
        Assert.Equal(half, s2.LastEpoch);
        Assert.Equal(s.LastLrs, s2.LastLrs);
        for (int i = half + 1; i < expected.Length; i++)
        {
            Advance(s2, c, i - 1);
            Near(expected[i], opt2.ParamGroups[0].Lr, $"{name} resumed step {i}");
        }
    }

    private static StateDict RoundTripMeta(StateDict sd)
    {
        var r = new StateDict();
        foreach (var (k, v) in sd.Tensors) r.Add(k, v);
        foreach (var (k, v) in JsonNode.Parse(sd.Meta.ToJsonString())!.AsObject()) r.Meta[k] = v?.DeepClone();
        return r;
    }

    [Fact]
    public void PlateauStateHoldsTheBestMetricAndCounters()
    {
        var opt = new Sgd([new Parameter(Tensor.Zeros(1))], lr: 0.1);
        var s = new ReduceLrOnPlateau(opt, patience: 3, cooldown: 2);
        var fresh = RoundTripMeta(s.StateDict());
        Assert.Null(fresh.Meta["best"]);                       // +∞ before any metric
        foreach (var m in new[] { 1.0, 0.5, 0.6, 0.7 }) s.Step(m);
        var sd = RoundTripMeta(s.StateDict());
        Assert.Equal(0.5, (double)sd.Meta["best"]!);
        Assert.Equal(2, (int)sd.Meta["num_bad_epochs"]!);
        var s2 = new ReduceLrOnPlateau(new Sgd([new Parameter(Tensor.Zeros(1))], lr: 0.1), patience: 3, cooldown: 2);
        s2.LoadStateDict(sd);
        Assert.Equal(0.5, s2.Best);
        Assert.Equal(2, s2.NumBadEpochs);
        s2.LoadStateDict(fresh);
        Assert.Equal(double.PositiveInfinity, s2.Best);
        Assert.Throws<NotSupportedException>(() => s.LrAt(3, 0.1));
        var ex = Assert.Throws<ArgumentException>(() => s2.LoadStateDict(RoundTripMeta(new StepLr(new Sgd([new Parameter(Tensor.Zeros(1))], lr: 0.1), 2).StateDict())));
        Assert.Contains("lacks 'best'", ex.Message);
    }

    [Fact]
    public void LambdaLrStateDictHoldsThePositionNotTheFunction()
    {
        var opt = new Sgd([new Parameter(Tensor.Zeros(1))], lr: 0.1);
        var s = new LambdaLr(opt, e => 1.0 / (e + 1));
        for (int i = 0; i < 4; i++) s.Step();
        var sd = RoundTripMeta(s.StateDict());
        Assert.Equal(["type", "last_epoch", "base_lrs", "last_lrs"], sd.Meta.Select(kv => kv.Key));
        var opt2 = new Sgd([new Parameter(Tensor.Zeros(1))], lr: 0.1);
        var s2 = new LambdaLr(opt2, e => 1.0 / (e + 1));   // the function is given again
        s2.LoadStateDict(sd);
        s2.Step();
        Near(0.1 / 6, opt2.ParamGroups[0].Lr, "resumed");
    }

    [Fact]
    public void OneCycleLrRefusesStepsPastTheCycleAndBadSettings()
    {
        var opt = new Sgd([new Parameter(Tensor.Zeros(1))], lr: 0.1);
        var s = new OneCycleLr(opt, maxLr: 1, totalSteps: 4);
        for (int i = 0; i < 4; i++) s.Step();
        Assert.Contains("past the 4 total steps", Assert.Throws<InvalidOperationException>(s.Step).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new OneCycleLr(opt, maxLr: 1, totalSteps: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReduceLrOnPlateau(opt, factor: 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MultiStepLr(opt, [0, 3]));
        var ada = new AdaGrad([new Parameter(Tensor.Zeros(1))], lr: 0.1);
        Assert.Contains("AdaGrad has none", Assert.Throws<ArgumentException>(() => new OneCycleLr(ada, maxLr: 1, totalSteps: 4, cycleMomentum: true)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new OneCycleLr(opt, maxLr: 1, totalSteps: 4, cycleMomentum: true, maxMomentum: 1.5));
        Assert.Throws<InvalidOperationException>(() => s.MomentumAt(0));
        Assert.Equal(0, opt.Momentum);   // without cycleMomentum the optimizer's momentum is left alone
    }
}
