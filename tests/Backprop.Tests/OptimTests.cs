using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Backprop.Backends.Cpu;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>
/// Optimizers, schedules and clipping against PyTorch 1.13 reference values
/// (fixtures/optim_reference.json, written by tools/optim_reference.py), plus state, allocation
/// and argument checks.
/// </summary>
public class OptimTests
{
    // ------------------------------------------------------------------ fixture

    private static readonly Lazy<JsonObject> Fixture = new(() => JsonNode.Parse(File.ReadAllText(FixturePath()))!.AsObject());

    private static string FixturePath([CallerFilePath] string source = "")
    {
        // Next to the test binaries when copied there, else beside this source file.
        var nearBinary = Path.Combine(AppContext.BaseDirectory, "fixtures", "optim_reference.json");
        return File.Exists(nearBinary) ? nearBinary : Path.Combine(Path.GetDirectoryName(source)!, "fixtures", "optim_reference.json");
    }

    private static double[] Doubles(JsonNode? n) => [.. n!.AsArray().Select(v => (double)v!)];

    private static int[] Ints(JsonNode? n) => [.. n!.AsArray().Select(v => (int)v!)];

    private static JsonObject OptimizerCase(string name) =>
        Fixture.Value["optimizers"]!.AsArray().Single(o => (string)o!["name"]! == name)!.AsObject();

    public static TheoryData<string> OptimizerNames()
    {
        var d = new TheoryData<string>();
        foreach (var o in Fixture.Value["optimizers"]!.AsArray()) d.Add((string)o!["name"]!);
        return d;
    }

    public static TheoryData<string> SchedulerNames()
    {
        var d = new TheoryData<string>();
        foreach (var o in Fixture.Value["schedulers"]!["cases"]!.AsArray()) d.Add((string)o!["name"]!);
        return d;
    }

    /// <summary>The fixture's starting parameters w [3, 4] and b [4] as fresh leaves that require grad.</summary>
    private static Tensor[] StartParams(DType dtype)
    {
        var f = Fixture.Value;
        var w = Tensor.FromArray(Doubles(f["w0"]), Ints(f["w_shape"])).To(dtype).RequiresGrad_();
        var b = Tensor.FromArray(Doubles(f["b0"]), Ints(f["b_shape"])).To(dtype).RequiresGrad_();
        return [w, b];
    }

    /// <summary>sum((tanh(x·w + b) − t)²) + 0.1·sum(w⁴) + sum(exp(0.5·b)·b), as in the reference script.</summary>
    private static Tensor Loss(Tensor w, Tensor b)
    {
        var f = Fixture.Value;
        var x = Tensor.FromArray(Doubles(f["x"]), Ints(f["x_shape"])).To(w.DType);
        var t = Tensor.FromArray(Doubles(f["t"]), Ints(f["t_shape"])).To(w.DType);
        var y = (x.MatMul(w) + b).Tanh();
        return (y - t).Pow(2).Sum() + 0.1 * w.Pow(4).Sum() + ((0.5 * b).Exp() * b).Sum();
    }

    /// <summary>Builds the optimizer a fixture case describes in PyTorch's argument names.</summary>
    private static Optimizer Make(JsonObject c, Tensor[] ps)
    {
        var kw = c["kwargs"]!.AsObject();
        double D(string k, double def) => (double?)kw[k] ?? def;
        bool B(string k) => (bool?)kw[k] ?? false;
        var betas = kw["betas"] is JsonArray ba ? Doubles(ba) : [0.9, 0.999];
        IEnumerable<ParamGroup> groups = c["groups"] is JsonArray ga
            ? [.. ga.Select(g => new ParamGroup(Ints(g!["params"]).Select(i => ps[i]), lr: (double?)g!["lr"], weightDecay: (double?)g["weight_decay"]))]
            : [new ParamGroup(ps)];
        return (string)c["type"]! switch
        {
            "SGD" => new Sgd(groups, lr: D("lr", double.NaN), momentum: D("momentum", 0), dampening: D("dampening", 0),
                weightDecay: D("weight_decay", 0), nesterov: B("nesterov"), maximize: B("maximize")),
            "Adam" => new Adam(groups, lr: D("lr", 1e-3), beta1: betas[0], beta2: betas[1], eps: D("eps", 1e-8),
                weightDecay: D("weight_decay", 0), amsgrad: B("amsgrad"), maximize: B("maximize")),
            "AdamW" => new AdamW(groups, lr: D("lr", 1e-3), beta1: betas[0], beta2: betas[1], eps: D("eps", 1e-8),
                weightDecay: D("weight_decay", 1e-2), amsgrad: B("amsgrad"), maximize: B("maximize")),
            "Adagrad" => new AdaGrad(groups, lr: D("lr", 1e-2), lrDecay: D("lr_decay", 0), weightDecay: D("weight_decay", 0),
                initialAccumulatorValue: D("initial_accumulator_value", 0), eps: D("eps", 1e-10), maximize: B("maximize")),
            "RMSprop" => new RmsProp(groups, lr: D("lr", 1e-2), alpha: D("alpha", 0.99), eps: D("eps", 1e-8),
                weightDecay: D("weight_decay", 0), momentum: D("momentum", 0), centered: B("centered"), maximize: B("maximize")),
            var t => throw new NotSupportedException(t),
        };
    }

    private static void TrainStep(Optimizer opt, Tensor[] ps)
    {
        opt.ZeroGrad();
        Loss(ps[0], ps[1]).Backward();
        opt.Step();
    }

    private static void AssertRel(double expected, double actual, double rel, string what)
    {
        double err = Math.Abs(expected - actual);
        Assert.True(err <= rel * Math.Abs(expected) + rel * 1e-3,
            $"{what}: expected {expected:R}, got {actual:R} (relative error {err / Math.Max(Math.Abs(expected), 1e-300):E2})");
    }

    // ------------------------------------------------------------------ PyTorch trajectories

    [Theory]
    [MemberData(nameof(OptimizerNames))]
    public void MatchesPyTorchTrajectoryInFloat64(string name)
    {
        var c = OptimizerCase(name);
        var ps = StartParams(DType.Float64);
        var opt = Make(c, ps);
        var trajectory = c["trajectory"]!.AsArray();
        for (int step = 0; step < trajectory.Count; step++)
        {
            TrainStep(opt, ps);
            var w = ps[0].ToDoubleArray();
            var b = ps[1].ToDoubleArray();
            var ew = Doubles(trajectory[step]!["w"]);
            var eb = Doubles(trajectory[step]!["b"]);
            for (int i = 0; i < ew.Length; i++) AssertRel(ew[i], w[i], 1e-10, $"{name} step {step + 1} w[{i}]");
            for (int i = 0; i < eb.Length; i++) AssertRel(eb[i], b[i], 1e-10, $"{name} step {step + 1} b[{i}]");
        }
        Assert.Equal(trajectory.Count, opt.StepCount(0));
    }

    [Theory]
    [MemberData(nameof(OptimizerNames))]
    public void Float32FollowsTheFloat64TrajectoryToFloatRounding(string name)
    {
        var c = OptimizerCase(name);
        var ps = StartParams(DType.Float32);
        var opt = Make(c, ps);
        var trajectory = c["trajectory"]!.AsArray();
        for (int step = 0; step < trajectory.Count; step++) TrainStep(opt, ps);
        Assert.Equal(DType.Float32, ps[0].DType);
        var last = trajectory[^1]!;
        var ew = Doubles(last["w"]);
        var eb = Doubles(last["b"]);
        var w = ps[0].ToDoubleArray();
        var b = ps[1].ToDoubleArray();
        // Ten steps of float32 arithmetic (loss, gradients and update) against float64: a few
        // hundred float32 ulps at most, far below any difference between update rules.
        for (int i = 0; i < ew.Length; i++) Assert.True(Math.Abs(ew[i] - w[i]) <= 5e-5 * Math.Max(1, Math.Abs(ew[i])), $"{name} w[{i}]: {ew[i]} vs float32 {w[i]}");
        for (int i = 0; i < eb.Length; i++) Assert.True(Math.Abs(eb[i] - b[i]) <= 5e-5 * Math.Max(1, Math.Abs(eb[i])), $"{name} b[{i}]: {eb[i]} vs float32 {b[i]}");
    }

    [Theory]
    [MemberData(nameof(OptimizerNames))]
    public void VectorTailAndThreadedPathsAgreeBitForBit(string name)
    {
        // Elementwise updates are separable, and the kernels use no fused multiply-add, so one big
        // parameter (vector loop, split across threads) must equal the same values optimized as
        // pieces of odd sizes (scalar tails) and pieces run on one thread, bit for bit.
        var c = OptimizerCase(name);
        if (c["groups"] != null) return;
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            int n = 2 * FusedRunnerMinChunk + 1234;
            var g = new Generator(7);
            var init = Tensor.Normal([n], 0, 1, g, dtype);
            var big = init.Clone();
            var pieces = new List<Tensor>();
            int[] sizes = [1, 3, 7, 15, 17, 31, 33, 64, 5];
            for (int start = 0, k = 0; start < n; k++)
            {
                // Odd sizes first (tails of every length), then pieces too small to be split across threads.
                int len = Math.Min(start < 4096 ? sizes[k % sizes.Length] : 400_003, n - start);
                pieces.Add(init.Narrow(0, start, len).Clone());
                start += len;
            }
            var optBig = Make(c, [big]);
            var optSmall = Make(c, [.. pieces]);
            for (int step = 0; step < 3; step++)
            {
                var grad = Tensor.Normal([n], 0, 1, g, dtype);
                big.Grad = grad;
                for (int start = 0, k = 0; k < pieces.Count; k++)
                {
                    pieces[k].Grad = grad.Narrow(0, start, pieces[k].NumElements).Clone();
                    start += pieces[k].NumElements;
                }
                optBig.Step();
                optSmall.Step();
            }
            var joined = Tensor.Concat(pieces, 0);
            Assert.True(big.ToDoubleArray().AsSpan().SequenceEqual(joined.ToDoubleArray()), $"{name} {dtype.Name()}: big and pieced updates differ");
        }
    }

    private const int FusedRunnerMinChunk = FusedRunner<float, SgdKernel<float>>.MinChunk;

    // ------------------------------------------------------------------ schedules

    private static LrScheduler MakeSchedule(JsonObject spec, Optimizer opt)
    {
        double D(string k, double def) => (double?)spec[k] ?? def;
        return (string)spec["type"]! switch
        {
            "StepLr" => new StepLr(opt, stepSize: (int)spec["step_size"]!, gamma: D("gamma", 0.1)),
            "ExponentialLr" => new ExponentialLr(opt, gamma: D("gamma", double.NaN)),
            "CosineAnnealingLr" => new CosineAnnealingLr(opt, tMax: (int)spec["t_max"]!, etaMin: D("eta_min", 0)),
            "LinearWarmup" => spec["start_factor"] is null
                ? new LinearWarmup(opt, warmupSteps: (int)spec["total_iters"]!)
                : new LinearWarmup(opt, warmupSteps: (int)spec["total_iters"]!, startFactor: D("start_factor", 0), endFactor: D("end_factor", 1)),
            "SequentialLr" => new SequentialLr(opt,
                [.. spec["schedulers"]!.AsArray().Select(s => MakeSchedule(s!.AsObject(), opt))],
                milestones: Ints(spec["milestones"])),
            var t => throw new NotSupportedException(t),
        };
    }

    private static (Sgd opt, LrScheduler sched, double[][] expected) ScheduleCase(string name)
    {
        var s = Fixture.Value["schedulers"]!.AsObject();
        var groupLrs = Doubles(s["group_lrs"]);
        var c = s["cases"]!.AsArray().Single(o => (string)o!["name"]! == name)!;
        var opt = new Sgd([.. groupLrs.Select(lr => new ParamGroup([Tensor.Zeros([1], DType.Float64).RequiresGrad_()], lr: lr))], lr: 1.0);
        var sched = MakeSchedule(c["spec"]!.AsObject(), opt);
        return (opt, sched, [.. c["lrs"]!.AsArray().Select(Doubles)]);
    }

    [Theory]
    [MemberData(nameof(SchedulerNames))]
    public void ScheduleMatchesPyTorchLrSequence(string name)
    {
        var (opt, sched, expected) = ScheduleCase(name);
        for (int e = 0; e < expected.Length; e++)
        {
            if (e > 0)
            {
                opt.Step();
                sched.Step();
            }
            Assert.Equal(e, sched.LastEpoch);
            for (int g = 0; g < expected[e].Length; g++)
            {
                AssertRel(expected[e][g], opt.ParamGroups[g].Lr, 1e-10, $"{name} epoch {e} group {g}");
                Assert.Equal(opt.ParamGroups[g].Lr, sched.LastLrs[g]);
                AssertRel(expected[e][g], sched.LrAt(e, sched.BaseLrs[g]), 1e-10, $"{name} LrAt({e}) group {g}");
            }
            Assert.Equal(sched.LastLrs[0], sched.LastLr);
        }
    }

    [Fact]
    public void ScheduleStateDictRoundTripContinuesTheSequence()
    {
        var (opt, sched, expected) = ScheduleCase("three_phase");
        for (int e = 1; e <= 7; e++) sched.Step();
        var saved = RoundTripMeta(sched.StateDict());
        var optState = RoundTripMeta(opt.StateDict());

        var (opt2, sched2, _) = ScheduleCase("three_phase");
        opt2.LoadStateDict(optState);
        sched2.LoadStateDict(saved);
        Assert.Equal(7, sched2.LastEpoch);
        Assert.Equal(sched.LastLrs, sched2.LastLrs);
        for (int e = 8; e < expected.Length; e++)
        {
            sched2.Step();
            AssertRel(expected[e][0], opt2.ParamGroups[0].Lr, 1e-10, $"resumed epoch {e}");
            AssertRel(expected[e][1], opt2.ParamGroups[1].Lr, 1e-10, $"resumed epoch {e}");
        }
        var ex = Assert.Throws<ArgumentException>(() => new StepLr(opt2, 2).LoadStateDict(saved));
        Assert.Contains("SequentialLr, not StepLr", ex.Message);
    }

    [Fact]
    public void ScheduleArgumentsAreValidated()
    {
        var opt = new Sgd([Tensor.Zeros(1).RequiresGrad_()], lr: 0.1);
        Assert.Contains("stepSize must be at least 1", Assert.Throws<ArgumentOutOfRangeException>(() => new StepLr(opt, 0)).Message);
        Assert.Contains("tMax must be at least 1", Assert.Throws<ArgumentOutOfRangeException>(() => new CosineAnnealingLr(opt, 0)).Message);
        Assert.Contains("startFactor must be in (0, 1]", Assert.Throws<ArgumentOutOfRangeException>(() => new LinearWarmup(opt, 5, startFactor: 0)).Message);
        Assert.Contains("gamma must be a finite number", Assert.Throws<ArgumentOutOfRangeException>(() => new ExponentialLr(opt, double.NaN)).Message);
        var other = new Sgd([Tensor.Zeros(1).RequiresGrad_()], lr: 0.1);
        var a = new LinearWarmup(opt, 3);
        var b = new CosineAnnealingLr(opt, 10);
        Assert.Contains("need 1 milestone", Assert.Throws<ArgumentException>(() => new SequentialLr(opt, [a, b], [])).Message);
        Assert.Contains("different optimizer", Assert.Throws<ArgumentException>(() => new SequentialLr(other, [a, b], [3])).Message);
        Assert.Contains("strictly increasing", Assert.Throws<ArgumentException>(() => new SequentialLr(opt, [a, b, new StepLr(opt, 2)], [5, 5])).Message);
    }

    // ------------------------------------------------------------------ clipping

    [Fact]
    public void ClipGradNormMatchesPyTorch()
    {
        foreach (var c in Fixture.Value["clip"]!.AsArray())
        {
            double maxNorm = (double)c!["max_norm"]!;
            double normType = c["norm_type"]!.GetValueKind() == System.Text.Json.JsonValueKind.String ? double.PositiveInfinity : (double)c["norm_type"]!;
            var ps = StartParams(DType.Float64);
            Loss(ps[0], ps[1]).Backward();
            double total = GradClip.ClipGradNorm(ps, maxNorm, normType);
            AssertRel((double)c["total_norm"]!, total, 1e-10, $"total {normType}-norm");
            var ew = Doubles(c["w_grad"]);
            var eb = Doubles(c["b_grad"]);
            var w = ps[0].Grad!.ToDoubleArray();
            var b = ps[1].Grad!.ToDoubleArray();
            for (int i = 0; i < ew.Length; i++) AssertRel(ew[i], w[i], 1e-10, $"clipped w grad [{i}] ({normType}-norm, max {maxNorm})");
            for (int i = 0; i < eb.Length; i++) AssertRel(eb[i], b[i], 1e-10, $"clipped b grad [{i}] ({normType}-norm, max {maxNorm})");
        }
    }

    [Fact]
    public void ClipGradNormInFloat32AndOverLazySequences()
    {
        var ps = StartParams(DType.Float32);
        Loss(ps[0], ps[1]).Backward();
        var c = Fixture.Value["clip"]!.AsArray()[0]!;
        // A lazy sequence takes the enumerating path; parameters without a gradient are ignored.
        var extra = Tensor.Zeros([3]).RequiresGrad_();
        double total = GradClip.ClipGradNorm(ps.Concat([extra]).Where(_ => true), maxNorm: 0.5);
        Assert.Equal((double)c["total_norm"]!, total, 5e-6 * total);
        var ew = Doubles(c["w_grad"]);
        var w = ps[0].Grad!.ToDoubleArray();
        for (int i = 0; i < ew.Length; i++) Assert.Equal(ew[i], w[i], 1e-6);
        Assert.Null(extra.Grad);

        // No gradients at all: norm 0, nothing to do.
        Assert.Equal(0, GradClip.ClipGradNorm([extra], 1.0));
        Assert.Contains("normType must be > 0", Assert.Throws<ArgumentOutOfRangeException>(() => GradClip.ClipGradNorm(ps, 1.0, normType: 0)).Message);
        ps[0].Grad!.SetElement([0, 0], double.NaN);
        Assert.Contains("total norm of the gradients is NaN", Assert.Throws<InvalidOperationException>(() => GradClip.ClipGradNorm(ps, 1.0, errorIfNonfinite: true)).Message);
    }

    [Fact]
    public void ClipGradValueClampsInPlace()
    {
        var p = Tensor.Zeros([5], DType.Float64).RequiresGrad_();
        var q = Tensor.Zeros([20]).RequiresGrad_();
        p.Grad = Tensor.FromArray([-3.0, -0.5, 0, 0.25, 9]);
        q.Grad = Tensor.Arange(-10, 10);
        var gp = p.Grad;
        GradClip.ClipGradValue([p, q], clipValue: 1);
        Assert.Same(gp, p.Grad);
        Assert.Equal([-1.0, -0.5, 0, 0.25, 1], p.Grad.ToDoubleArray());
        Assert.All(q.Grad.ToArray(), v => Assert.InRange(v, -1f, 1f));
        Assert.Equal(-1f, q.Grad.ToArray()[0]);
        Assert.Equal(0.0f, q.Grad.ToArray()[10]);
        Assert.Throws<ArgumentOutOfRangeException>(() => GradClip.ClipGradValue([p], -1));
    }

    // ------------------------------------------------------------------ state dicts

    private static StateDict RoundTripMeta(StateDict sd)
    {
        // What a checkpoint does: tensors kept, Meta written as JSON text and parsed back.
        var r = new StateDict();
        foreach (var (k, v) in sd.Tensors) r.Add(k, v);
        foreach (var (k, v) in JsonNode.Parse(sd.Meta.ToJsonString())!.AsObject()) r.Meta[k] = v?.DeepClone();
        return r;
    }

    [Theory]
    [MemberData(nameof(OptimizerNames))]
    public void StateDictRoundTripContinuesTheTrajectoryExactly(string name)
    {
        var c = OptimizerCase(name);
        var ps = StartParams(DType.Float64);
        var opt = Make(c, ps);
        for (int i = 0; i < 4; i++) TrainStep(opt, ps);
        var saved = RoundTripMeta(opt.StateDict());
        var resumedParams = ps.Select(p => p.Detach().Clone().RequiresGrad_()).ToArray();
        // A fresh optimizer with different settings: the dict's hyperparameters and lrs win, as in PyTorch.
        var resumed = Make(c, resumedParams);
        resumed.Lr = 123;
        resumed.LoadStateDict(saved);
        for (int i = 0; i < 4; i++)
        {
            TrainStep(opt, ps);
            TrainStep(resumed, resumedParams);
        }
        for (int k = 0; k < ps.Length; k++)
            Assert.Equal(ps[k].ToDoubleArray(), resumedParams[k].ToDoubleArray());
        Assert.Equal(8, resumed.StepCount(0));
        Assert.Equal(opt.StepCount(1), resumed.StepCount(1));
    }

    [Fact]
    public void StateDictNamesStateLikePyTorchAndIsASnapshot()
    {
        var ps = StartParams(DType.Float64);
        var opt = new Adam(ps, lr: 0.01, amsgrad: true);
        TrainStep(opt, ps);
        var sd = opt.StateDict();
        Assert.Equal(["state.0.exp_avg", "state.0.exp_avg_sq", "state.0.max_exp_avg_sq", "state.1.exp_avg", "state.1.exp_avg_sq", "state.1.max_exp_avg_sq"], sd.Keys.ToArray());
        Assert.Equal("Adam", (string)sd.Meta["type"]!);
        Assert.Equal(1L, (long)sd.Meta["state"]!["1"]!["step"]!);
        Assert.Equal(0.01, (double)sd.Meta["param_groups"]![0]!["lr"]!);
        Assert.True((bool)sd.Meta["hyperparameters"]!["amsgrad"]!);
        var before = sd["state.0.exp_avg"].ToDoubleArray();
        TrainStep(opt, ps);
        Assert.Equal(before, sd["state.0.exp_avg"].ToDoubleArray());

        var sgd = new Sgd(ps, lr: 0.1, momentum: 0.9);
        TrainStep(sgd, ps);
        Assert.Equal(["state.0.momentum_buffer", "state.1.momentum_buffer"], sgd.StateDict().Keys.ToArray());
        Assert.Equal(["state.0.sum", "state.1.sum"], StepOnce(new AdaGrad(ps), ps));
        Assert.Equal(["state.0.square_avg", "state.0.momentum_buffer", "state.0.grad_avg", "state.1.square_avg", "state.1.momentum_buffer", "state.1.grad_avg"],
            StepOnce(new RmsProp(ps, momentum: 0.5, centered: true), ps));
    }

    private static string[] StepOnce(Optimizer opt, Tensor[] ps)
    {
        TrainStep(opt, ps);
        return [.. opt.StateDict().Keys];
    }

    [Fact]
    public void LoadingAMismatchedStateDictIsAClearError()
    {
        var ps = StartParams(DType.Float64);
        var opt = new Adam(ps, lr: 0.01);
        TrainStep(opt, ps);
        var sd = opt.StateDict();

        // Same structure, other shapes: the error names the key and both shapes.
        var other = new[] { Tensor.Zeros([4], DType.Float64).RequiresGrad_(), Tensor.Zeros([4], DType.Float64).RequiresGrad_() };
        var ex = Assert.Throws<ArgumentException>(() => new Adam(other).LoadStateDict(sd));
        Assert.Contains("'state.0.exp_avg'", ex.Message);
        Assert.Contains("expected [4], found [3, 4]", ex.Message);

        // Different grouping.
        ex = Assert.Throws<ArgumentException>(() => new Adam([new ParamGroup([ps[0]]), new ParamGroup([ps[1]])]).LoadStateDict(sd));
        Assert.Contains("1 parameter group(s) of sizes [2]", ex.Message);
        Assert.Contains("2 of sizes [1, 1]", ex.Message);

        // Different optimizer.
        ex = Assert.Throws<ArgumentException>(() => new AdamW(ps).LoadStateDict(sd));
        Assert.Contains("state of Adam, not AdamW", ex.Message);

        // Unknown state names.
        var bad = new StateDict();
        foreach (var (k, v) in sd.Meta) bad.Meta[k] = v?.DeepClone();
        bad.Add("state.0.momentum_buffer", Tensor.Zeros([3, 4], DType.Float64));
        ex = Assert.Throws<ArgumentException>(() => new Adam(ps).LoadStateDict(bad));
        Assert.Contains("unknown state 'momentum_buffer'", ex.Message);

        // A failed load leaves the optimizer as it was.
        var target = new Adam(other, lr: 0.5);
        Assert.Throws<ArgumentException>(() => target.LoadStateDict(sd));
        Assert.Equal(0.5, target.Lr);
        Assert.Empty(target.StateDict().Keys);
    }

    // ------------------------------------------------------------------ gradients and allocation

    [Fact]
    public void ZeroGradReusesTheGradientTensor()
    {
        var w = new Parameter(Tensor.FromArray([1f, 2f, 3f]));
        var x = Tensor.FromArray([4f, 5f, 6f]).RequiresGrad_(); // a plain leaf (an input) is optimizable too
        var opt = new Sgd([w, x], lr: 0.1);
        (w * x).Sum().Backward();
        var gw = w.Grad!;
        var gx = x.Grad!;
        opt.Step();
        opt.ZeroGrad();
        Assert.Same(gw, w.Grad);
        Assert.Same(gx, x.Grad);
        Assert.All(gw.ToArray(), v => Assert.Equal(0f, v));
        (w * x).Sum().Backward();
        Assert.Same(gw, w.Grad);
        Assert.Equal(x.ToArray(), gw.ToArray());
        opt.ZeroGrad(setToNone: true);
        Assert.Null(w.Grad);
        Assert.Null(x.Grad);
    }

    [Fact]
    public void ParametersWithoutGradientsAreSkipped()
    {
        var a = Tensor.FromArray([1.0, 2.0]).RequiresGrad_();
        var b = Tensor.FromArray([3.0, 4.0]).RequiresGrad_();
        var opt = new Adam([a, b], lr: 0.1);
        (a * a).Sum().Backward();
        opt.Step();
        Assert.Equal([3.0, 4.0], b.ToDoubleArray());
        Assert.Equal(0, opt.StepCount(1));
        Assert.Equal(1, opt.StepCount(0));
        Assert.Equal(["state.0.exp_avg", "state.0.exp_avg_sq"], opt.StateDict().Keys.ToArray());
        TestUtil.Close(new[] { 0.9, 1.9 }, a, 1e-8); // Adam's first step moves each element by lr (less eps)
    }

    [Theory]
    [MemberData(nameof(OptimizerNames))]
    public void AWarmStepAllocatesNothing(string name)
    {
        var c = OptimizerCase(name);
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            var ps = StartParams(dtype);
            var opt = Make(c, ps);
            TrainStep(opt, ps);
            TrainStep(opt, ps);
            long before = GC.GetAllocatedBytesForCurrentThread();
            opt.ZeroGrad();
            opt.Step();
            long after = GC.GetAllocatedBytesForCurrentThread();
            Assert.Equal(0, after - before);
        }
    }

    [Fact]
    public void AWarmStepOnALargeThreadedParameterAllocatesNothing()
    {
        var p = Tensor.Zeros([3 * FusedRunnerMinChunk + 7]).RequiresGrad_();
        p.Grad = Tensor.OnesLike(p);
        var opt = new AdamW([p], lr: 0.1);
        var sched = new CosineAnnealingLr(opt, tMax: 10);
        opt.Step();
        opt.Step();
        GradClip.ClipGradNorm(opt.Parameters, 1e9);
        sched.Step();
        long before = GC.GetAllocatedBytesForCurrentThread();
        double norm = GradClip.ClipGradNorm(opt.Parameters, 1e9);
        opt.Step();
        sched.Step();
        opt.ZeroGrad();
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
        Assert.Equal(Math.Sqrt(p.NumElements), norm, 1e-6 * norm);
        // After three AdamW steps on a constant gradient, every element moved by the same amount.
        var v = p.ToArray();
        Assert.All(v, x => Assert.Equal(v[0], x));
        Assert.True(v[0] < 0);
    }

    [Fact]
    public void LrSetsEveryGroupAndGroupsOverrideDefaults()
    {
        var a = Tensor.Zeros([2]).RequiresGrad_();
        var b = Tensor.Zeros([2]).RequiresGrad_();
        var opt = new AdamW([new ParamGroup([a]), new ParamGroup([b], lr: 0.5, weightDecay: 0)], lr: 0.01);
        Assert.Equal(0.01, opt.ParamGroups[0].Lr);
        Assert.Equal(0.01, opt.ParamGroups[0].WeightDecay);
        Assert.Equal(0.5, opt.ParamGroups[1].Lr);
        Assert.Equal(0.0, opt.ParamGroups[1].WeightDecay);
        Assert.Equal([a, b], opt.Parameters);
        opt.Lr = 0.2;
        Assert.All(opt.ParamGroups, g => Assert.Equal(0.2, g.Lr));
        Assert.Equal(0.2, opt.Lr);
    }

    /// <summary>The custom optimizer of docs/optimizers.md.</summary>
    private sealed class SignSgd(IEnumerable<Tensor> ps, double lr) : Optimizer([new ParamGroup(ps)], lr, 0, [])
    {
        protected override void Update(int index, Tensor p, Tensor g, ParamGroup group, long step)
        {
            using (Tensor.NoGrad()) p.Add_(g.Sign(), alpha: -group.Lr);
        }
    }

    [Fact]
    public void ACustomOptimizerGetsStepZeroGradAndStateFromTheBase()
    {
        var x = Tensor.FromArray([1.0, -2.0, 0.5]).RequiresGrad_();
        var opt = new SignSgd([x], lr: 0.25);
        var sched = new StepLr(opt, stepSize: 1, gamma: 0.5);
        for (int i = 0; i < 3; i++)
        {
            opt.ZeroGrad();
            (x * x).Sum().Backward();
            opt.Step();
            sched.Step();
        }
        // steps of 0.25, 0.125, 0.0625 toward zero, by the sign of 2x
        TestUtil.Close(new[] { 0.5625, -1.5625, 0.0625 }, x, 1e-15);
        Assert.Equal(3, opt.StepCount(0));
        Assert.Equal("SignSgd", (string)opt.StateDict().Meta["type"]!);
    }

    // ------------------------------------------------------------------ argument errors

    [Fact]
    public void ArgumentErrorsAreClear()
    {
        var p = new[] { Tensor.Zeros([3]).RequiresGrad_() };
        Assert.Contains("Nesterov momentum requires a momentum > 0 and zero dampening",
            Assert.Throws<ArgumentException>(() => new Sgd(p, lr: 0.1, nesterov: true)).Message);
        Assert.Contains("Nesterov", Assert.Throws<ArgumentException>(() => new Sgd(p, lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true)).Message);
        Assert.Contains("invalid learning rate -0.1", Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(p, lr: -0.1)).Message);
        Assert.Contains("invalid momentum -1", Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(p, lr: 0.1, momentum: -1)).Message);
        Assert.Contains("invalid weight decay", Assert.Throws<ArgumentOutOfRangeException>(() => new Adam(p, weightDecay: -1)).Message);
        Assert.Contains("invalid beta1 1", Assert.Throws<ArgumentOutOfRangeException>(() => new Adam(p, beta1: 1)).Message);
        Assert.Contains("invalid beta2 -0.5", Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW(p, beta2: -0.5)).Message);
        Assert.Contains("invalid eps", Assert.Throws<ArgumentOutOfRangeException>(() => new Adam(p, eps: -1e-8)).Message);
        Assert.Contains("invalid lr decay", Assert.Throws<ArgumentOutOfRangeException>(() => new AdaGrad(p, lrDecay: -1)).Message);
        Assert.Contains("invalid initial accumulator value", Assert.Throws<ArgumentOutOfRangeException>(() => new AdaGrad(p, initialAccumulatorValue: -1)).Message);
        Assert.Contains("invalid alpha", Assert.Throws<ArgumentOutOfRangeException>(() => new RmsProp(p, alpha: -0.1)).Message);
        Assert.Contains("invalid learning rate", Assert.Throws<ArgumentOutOfRangeException>(() => new ParamGroup(p, lr: -1)).Message);
        Assert.Contains("empty parameter list", Assert.Throws<ArgumentException>(() => new Adam(Array.Empty<Tensor>())).Message);
        Assert.Contains("appears more than once", Assert.Throws<ArgumentException>(() => new Adam([p[0], p[0]])).Message);
        Assert.Contains("not a leaf", Assert.Throws<ArgumentException>(() => new Adam([p[0] * 2])).Message);
        Assert.Contains("int64", Assert.Throws<ArgumentException>(() => new Adam([Tensor.FromArray(new long[] { 1, 2 })])).Message);
        Assert.Contains("non-contiguous", Assert.Throws<ArgumentException>(() => new Adam([Tensor.Zeros(3, 4).T.Detach()])).Message);
        var group = new ParamGroup(p);
        _ = new Sgd([group], lr: 0.1);
        Assert.Contains("already belongs to a Sgd", Assert.Throws<ArgumentException>(() => new Adam([group])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(p, lr: 0.1).Lr = -1);
    }

    [Fact]
    public void AGradientOfTheWrongShapeOrDTypeIsAClearError()
    {
        var w = Tensor.Zeros([3, 4]).RequiresGrad_();
        var opt = new Sgd([w], lr: 0.1);
        w.Grad = Tensor.Zeros([4]);
        var ex = Assert.Throws<InvalidOperationException>(() => opt.Step());
        Assert.Contains("Sgd.Step: parameter 0 has shape [3, 4] (float32) but its gradient has shape [4] (float32)", ex.Message);
        w.Grad = Tensor.Zeros([3, 4], DType.Float64);
        ex = Assert.Throws<InvalidOperationException>(() => opt.Step());
        Assert.Contains("gradient has shape [3, 4] (float64)", ex.Message);
    }
}
