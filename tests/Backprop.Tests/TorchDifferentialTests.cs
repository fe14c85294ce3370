using System.Globalization;
using System.Text.Json;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>
/// Differential tests against PyTorch 1.13: every op, layer and loss is replayed with Backprop's public
/// API on the inputs PyTorch saw, and the outputs and the gradient of every input (for a random
/// upstream gradient) are compared; whole training runs of a small MLP must follow PyTorch's losses.
/// The fixtures (fixtures/torch/*.json) are written by tools/make_fixtures.py and committed, so these
/// tests never need Python.
/// </summary>
/// <remarks>
/// Tolerances, per element, |actual − expected| ≤ rel·|expected| + abs:
/// float64 rel 1e-10, abs 1e-12: both sides compute in double and differ only in summation order and
/// in the last bits of exp/log/tanh/erf; the cases' values are O(1).
/// float32 rel 1e-5, abs 1e-6: a few ulps of float32 (ε = 1.2e-7) after sums over up to ~50 terms.
/// Looser where said in <see cref="Tolerance"/>. Integer outputs (argmax indices, one-hot) are exact;
/// NaN must match NaN and infinities must match exactly.
/// </remarks>
public class TorchDifferentialTests
{
    // ------------------------------------------------------------------ fixtures

    private static string FixtureDir => Path.Combine(DataTestFiles.RepoRoot, "tests", "Backprop.Tests", "fixtures", "torch");

    private static readonly Lazy<Dictionary<string, JsonElement>> OpCases = new(() =>
    {
        var cases = new Dictionary<string, JsonElement>();
        foreach (var file in Directory.GetFiles(FixtureDir, "ops_*.json").Order(StringComparer.Ordinal))
        {
            var root = JsonDocument.Parse(File.ReadAllBytes(file)).RootElement;
            foreach (var c in root.GetProperty("cases").EnumerateArray())
                cases.Add(c.GetProperty("id").GetString()!, c);
        }
        return cases;
    });

    private static readonly Lazy<JsonElement> Training = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(FixtureDir, "training.json"))).RootElement);

    public static TheoryData<string> OpCaseIds()
    {
        var d = new TheoryData<string>();
        foreach (var id in OpCases.Value.Keys) d.Add(id);
        return d;
    }

    public static TheoryData<string> TrainingRunIds()
    {
        var d = new TheoryData<string>();
        foreach (var r in Training.Value.GetProperty("runs").EnumerateArray()) d.Add(r.GetProperty("id").GetString()!);
        return d;
    }

    private static DType ParseDType(string s) => s switch
    {
        "float32" => DType.Float32,
        "float64" => DType.Float64,
        "int64" => DType.Int64,
        _ => throw new NotSupportedException(s),
    };

    private static double Number(JsonElement v, DType dtype)
    {
        if (v.ValueKind == JsonValueKind.String)
            return v.GetString() switch
            {
                "NaN" => double.NaN,
                "Infinity" => double.PositiveInfinity,
                "-Infinity" => double.NegativeInfinity,
                var s => throw new FormatException($"not a number: {s}"),
            };
        // float32 values are parsed as float32, so the 9-digit text gives back the exact float PyTorch had
        return dtype == DType.Float32 ? v.GetSingle() : v.GetDouble();
    }

    private static double[] Values(JsonElement array, DType dtype) => [.. array.EnumerateArray().Select(v => Number(v, dtype))];

    private static int[] Ints(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetInt32())];

    private static Tensor MakeTensor(JsonElement data, int[] shape, DType dtype)
    {
        Tensor t = dtype switch
        {
            DType.Int64 => Tensor.FromArray(data.EnumerateArray().Select(v => v.GetInt64()).ToArray(), shape.Length == 0 ? [1] : shape),
            DType.Float32 => Tensor.FromArray(Values(data, dtype).Select(v => (float)v).ToArray(), shape.Length == 0 ? [1] : shape),
            _ => Tensor.FromArray(Values(data, dtype), shape.Length == 0 ? [1] : shape),
        };
        return shape.Length == 0 ? t.Reshape([]) : t;
    }

    private static Tensor MakeTensor(JsonElement spec) =>
        MakeTensor(spec.GetProperty("data"), Ints(spec.GetProperty("shape")), ParseDType(spec.GetProperty("dtype").GetString()!));

    // ------------------------------------------------------------------ tolerances

    /// <summary>
    /// The per-element tolerance (see the class remarks). Every op fits the same one, none needs a looser
    /// one: the largest float32 deviation uses half of the allowance (the tanh-approximated GELU's
    /// gradient near 0; float32 exact GELU uses a fast erf with an absolute error below 1.5e-7, and
    /// tanh and log-softmax differ from PyTorch's by an ulp or two), the largest float64 one 0.2% of it.
    /// </summary>
    private static (double Rel, double Abs) Tolerance(DType dtype) => dtype == DType.Float64 ? (1e-10, 1e-12) : (1e-5, 1e-6);

    private static void AssertClose(string what, double[] expected, Tensor actual, DType dtype, (double Rel, double Abs) tol)
    {
        var a = actual.ToDoubleArray();
        Assert.True(expected.Length == a.Length, $"{what}: {a.Length} elements, expected {expected.Length}");
        for (int i = 0; i < a.Length; i++)
        {
            double e = expected[i], v = a[i];
            bool ok = double.IsNaN(e) ? double.IsNaN(v)
                : double.IsInfinity(e) ? e == v
                : Math.Abs(v - e) <= tol.Rel * Math.Abs(e) + tol.Abs;
            Assert.True(ok, string.Create(CultureInfo.InvariantCulture,
                $"{what}[{i}]: expected {e:R}, got {v:R} (error {Math.Abs(v - e):E2}, allowed {tol.Rel:E0}·|expected| + {tol.Abs:E0}; {dtype.Name()})"));
        }
    }

    // ------------------------------------------------------------------ replay

    private static double D(JsonElement args, string name, double def) =>
        args.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : def;

    private static int I(JsonElement args, string name) => args.GetProperty(name).GetInt32();

    private static bool B(JsonElement args, string name) => args.GetProperty(name).GetBoolean();

    private static string S(JsonElement args, string name) => args.GetProperty(name).GetString()!;

    private static int[]? Dims(JsonElement args, string name) =>
        args.GetProperty(name).ValueKind == JsonValueKind.Null ? null : Ints(args.GetProperty(name));

    private static Reduction Red(JsonElement args) => S(args, "reduction") switch
    {
        "mean" => Reduction.Mean,
        "sum" => Reduction.Sum,
        "none" => Reduction.None,
        var r => throw new NotSupportedException(r),
    };

    /// <summary>
    /// Runs a fixture case's op with Backprop. <paramref name="x"/> holds the op's arguments by name;
    /// layer cases put the layer's parameter in <paramref name="leaves"/> in place of the input (its
    /// gradient is then the one compared).
    /// </summary>
    private static Tensor[] Run(string op, JsonElement args, Dictionary<string, Tensor> x, Dictionary<string, Tensor> leaves, DType dtype)
    {
        Tensor X() => x["x"];
        Tensor A() => x["a"];
        Tensor Bt() => x["b"];
        Tensor[] Xs() => [.. x.Where(kv => kv.Key.Length > 1 && kv.Key[0] == 'x' && char.IsDigit(kv.Key[1]))
            .OrderBy(kv => int.Parse(kv.Key[1..], CultureInfo.InvariantCulture)).Select(kv => kv.Value)];
        switch (op)
        {
            // elementwise
            case "add": return [Tensor.Add(A(), Bt())];
            case "sub": return [Tensor.Sub(A(), Bt())];
            case "mul": return [A() * Bt()];
            case "div": return [A() / Bt()];
            case "pow_tensor": return [A().Pow(Bt())];
            case "maximum": return [Tensor.Maximum(A(), Bt())];
            case "minimum": return [Tensor.Minimum(A(), Bt())];
            case "scalar_arith": return [X() * 3 + 2 - X() / 4 - 1.5];
            case "scalar_rdiv": return [1.5 / X()];
            case "scalar_rsub": return [2.5 - X()];
            case "neg": return [-X()];
            case "exp": return [X().Exp()];
            case "log": return [X().Log()];
            case "sqrt": return [X().Sqrt()];
            case "abs": return [X().Abs()];
            case "square": return [X().Square()];
            case "pow_scalar": return [X().Pow(D(args, "p", double.NaN))];
            case "clamp":
                return [X().Clamp(args.TryGetProperty("min", out var lo) ? lo.GetDouble() : null,
                    args.TryGetProperty("max", out var hi) ? hi.GetDouble() : null)];
            case "where": return [Tensor.Where(x["cond"], A(), Bt())];
            // activations
            case "tanh": return [X().Tanh()];
            case "sigmoid": return [X().Sigmoid()];
            case "relu": return [X().Relu()];
            case "leaky_relu": return [X().LeakyRelu(D(args, "negative_slope", double.NaN))];
            case "gelu": return [X().Gelu(approximateTanh: S(args, "approximate") == "tanh")];
            case "softplus": return [X().Softplus(D(args, "beta", 1), D(args, "threshold", 20))];
            // matrix products
            case "matmul": return [Tensor.MatMul(A(), Bt())];
            case "matmul_tt": return [A().T.MatMul(Bt().T)];
            // reductions
            case "sum": return [Dims(args, "dims") is { } sd ? X().Sum(sd, B(args, "keepdim")) : X().Sum()];
            case "mean": return [Dims(args, "dims") is { } md ? X().Mean(md, B(args, "keepdim")) : X().Mean()];
            case "max_all": return [X().Max()];
            case "min_all": return [X().Min()];
            case "max_dim": { var (v, i) = X().Max(I(args, "dim"), B(args, "keepdim")); return [v, i]; }
            case "min_dim": { var (v, i) = X().Min(I(args, "dim"), B(args, "keepdim")); return [v, i]; }
            case "argmax": return [X().Argmax(args.GetProperty("dim").ValueKind == JsonValueKind.Null ? null : I(args, "dim"), B(args, "keepdim"))];
            case "argmin": return [X().Argmin(args.GetProperty("dim").ValueKind == JsonValueKind.Null ? null : I(args, "dim"), B(args, "keepdim"))];
            case "var": return [X().Var(Dims(args, "dims"), I(args, "correction"), B(args, "keepdim"))];
            case "logsumexp": return [X().LogSumExp(Dims(args, "dims")!, B(args, "keepdim"))];
            case "softmax": return [X().Softmax(I(args, "dim"))];
            case "log_softmax": return [X().LogSoftmax(I(args, "dim"))];
            // views
            case "reshape": return [X().Reshape(Ints(args.GetProperty("shape")))];
            case "transpose_reshape": return [X().Transpose(I(args, "dim0"), I(args, "dim1")).Reshape(Ints(args.GetProperty("shape")))];
            case "flatten": return [X().Flatten(I(args, "start"), I(args, "end"))];
            case "transpose": return [X().Transpose(I(args, "dim0"), I(args, "dim1"))];
            case "permute": return [X().Permute(Ints(args.GetProperty("dims")))];
            case "narrow": return [X().Narrow(I(args, "dim"), I(args, "start"), I(args, "length"))];
            case "slice": return [X().Slice(I(args, "dim"), I(args, "start"), I(args, "end"), I(args, "step"))];
            case "select": return [X().Select(I(args, "dim"), I(args, "index"))];
            case "squeeze": return [X().Squeeze(args.GetProperty("dim").ValueKind == JsonValueKind.Null ? null : I(args, "dim"))];
            case "unsqueeze": return [X().Unsqueeze(I(args, "dim"))];
            case "expand": return [X().Expand(Ints(args.GetProperty("shape")))];
            // joining
            case "concat": return [Tensor.Concat(Xs(), I(args, "dim"))];
            case "stack": return [Tensor.Stack(Xs(), I(args, "dim"))];
            case "split":
                return args.GetProperty("size").ValueKind == JsonValueKind.Array
                    ? X().Split(Ints(args.GetProperty("size")), I(args, "dim"))
                    : X().Split(I(args, "size"), I(args, "dim"));
            case "chunk": return X().Chunk(I(args, "chunks"), I(args, "dim"));
            // indexing
            case "index_select": return [X().IndexSelect(I(args, "dim"), x["index"])];
            case "gather": return [X().Gather(I(args, "dim"), x["index"])];
            case "scatter_add": return [X().ScatterAdd(I(args, "dim"), x["index"], x["src"])];
            case "one_hot": return [Tensor.OneHot(x["index"], I(args, "num_classes"))];
            // layers
            case "linear": return [Functional.Linear(X(), x["weight"], B(args, "bias") ? x["bias"] : null)];
            case "linear_layer":
                {
                    var w = x["weight"];
                    var layer = new Linear(w.Size(1), w.Size(0), bias: B(args, "bias"), dtype: dtype);
                    using (Tensor.NoGrad())
                    {
                        layer.Weight.CopyFrom(w);
                        layer.Bias?.CopyFrom(x["bias"]);
                    }
                    leaves["weight"] = layer.Weight;
                    if (layer.Bias != null) leaves["bias"] = layer.Bias;
                    return [layer.Forward(X())];
                }
            case "embedding":
                {
                    var w = x["weight"];
                    var layer = new Embedding(w.Size(0), w.Size(1), dtype: dtype);
                    using (Tensor.NoGrad()) layer.Weight.CopyFrom(w);
                    leaves["weight"] = layer.Weight;
                    return [layer.Forward(x["index"])];
                }
            case "dropout_eval":
                {
                    double p = D(args, "p", double.NaN);
                    if (!B(args, "module")) return [Functional.Dropout(X(), p, training: false)];
                    var layer = new Dropout(p, new Generator(1));
                    layer.Eval();
                    return [layer.Forward(X())];
                }
            // losses
            case "cross_entropy":
                return [Loss.CrossEntropy(x["input"], x["target"], Red(args), ignoreIndex: I(args, "ignore_index"),
                    labelSmoothing: D(args, "label_smoothing", 0))];
            case "nll_loss": return [Loss.NllLoss(x["input"], x["target"], Red(args), ignoreIndex: I(args, "ignore_index"))];
            case "mse": return [Loss.Mse(x["input"], x["target"], Red(args))];
            case "bce": return [Loss.BinaryCrossEntropy(x["input"], x["target"], Red(args))];
            case "bce_logits": return [Loss.BinaryCrossEntropyWithLogits(x["input"], x["target"], Red(args))];
            // composites
            case "x_used_twice": return [X() * X().Tanh() + X().Exp().Sum(-1, keepDim: true)];
            case "tied_weight": return [X().MatMul(x["w"]).Tanh().MatMul(x["w"].T)];
            case "attention": return [(x["q"].MatMul(x["k"].Transpose(-1, -2)) / 2.0).Softmax(-1).MatMul(x["v"])];
            // tensor API (ops_tensorapi.json)
            case "sin": return [X().Sin()];
            case "cos": return [X().Cos()];
            case "floor": return [X().Floor()];
            case "ceil": return [X().Ceil()];
            case "round": return [X().Round()];
            case "erf": return [X().Erf()];
            case "std": return [X().Std(Dims(args, "dims"), I(args, "correction"), B(args, "keepdim"))];
            case "norm":
                {
                    var pv = args.GetProperty("p");
                    double p = pv.ValueKind == JsonValueKind.String ? double.PositiveInfinity : pv.GetDouble();
                    return [X().Norm(p, Dims(args, "dims"), B(args, "keepdim"))];
                }
            case "masked_fill": return [X().MaskedFill(x["mask"], D(args, "value", double.NaN))];
            case "tril": return [X().Tril(I(args, "diagonal"))];
            case "triu": return [X().Triu(I(args, "diagonal"))];
            case "repeat": return [X().Repeat(Ints(args.GetProperty("repeats")))];
            case "flip": return [X().Flip(Ints(args.GetProperty("dims")))];
            case "roll": return [X().Roll(Ints(args.GetProperty("shifts")), Dims(args, "dims"))];
            case "cumsum": return [X().Cumsum(I(args, "dim"))];
            case "einsum": return [Tensor.Einsum(S(args, "equation"), Xs())];
            case "sort": { var (v, i) = X().Sort(I(args, "dim"), B(args, "descending")); return [v, i]; }
            case "argsort": return [X().Argsort(I(args, "dim"), B(args, "descending"))];
            case "getitem":
                return [S(args, "form") switch
                {
                    "col0" => X()[.., 0],
                    "inner_rows" => X()[1..^1],
                    "last_row_from1" => X()[^1, 1..],
                    "ellipsis_last" => X()[TensorIndex.Ellipsis, ^1],
                    var f => throw new NotSupportedException(f),
                }];
            case "masked_select": return [X()[x["mask"]]];
            case "topk": { var (v, i) = X().TopK(I(args, "k"), I(args, "dim"), B(args, "largest")); return [v, i]; }
            default: throw new NotSupportedException($"no replay for op '{op}'");
        }
    }

    [Theory]
    [MemberData(nameof(OpCaseIds))]
    public void OpMatchesPyTorch(string id)
    {
        var c = OpCases.Value[id];
        string op = c.GetProperty("op").GetString()!;
        var dtype = ParseDType(c.GetProperty("dtype").GetString()!);
        var args = c.GetProperty("args");
        var tol = Tolerance(dtype);

        // the inputs as stored (the leaves whose gradients are compared), and as the op sees them:
        // inputs listed under "transpose" are passed as transposed views, which are not contiguous
        var leaves = new Dictionary<string, Tensor>();
        var opArgs = new Dictionary<string, Tensor>();
        var transposed = c.TryGetProperty("transpose", out var tr) ? tr.EnumerateArray().Select(e => e.GetString()!).ToHashSet() : [];
        var specs = c.GetProperty("inputs").EnumerateArray().ToArray();
        foreach (var s in specs)
        {
            var t = MakeTensor(s);
            if (s.GetProperty("requires_grad").GetBoolean()) t.RequiresGrad_();
            string name = s.GetProperty("name").GetString()!;
            leaves[name] = t;
            opArgs[name] = transposed.Contains(name) ? t.Transpose(-1, -2) : t;
        }

        var outs = Run(op, args, opArgs, leaves, dtype);
        var expectedOuts = c.GetProperty("outputs").EnumerateArray().ToArray();
        Assert.True(expectedOuts.Length == outs.Length, $"{id}: {outs.Length} outputs, PyTorch has {expectedOuts.Length}");
        for (int k = 0; k < outs.Length; k++)
        {
            var e = expectedOuts[k];
            var eShape = Ints(e.GetProperty("shape"));
            var eType = ParseDType(e.GetProperty("dtype").GetString()!);
            Assert.True(outs[k].Shape.ToArray().SequenceEqual(eShape), $"{id}: output {k} has shape {outs[k].Shape}, PyTorch [{string.Join(", ", eShape)}]");
            // one_hot: PyTorch returns int64, Backprop float32 (0/1 values, ready to multiply); values are compared
            if (op != "one_hot") Assert.True(outs[k].DType == eType, $"{id}: output {k} is {outs[k].DType.Name()}, PyTorch {eType.Name()}");
            var values = Values(e.GetProperty("data"), eType);
            if (eType == DType.Int64) Assert.Equal(values, outs[k].ToDoubleArray());
            else AssertClose($"{id}: output {k}", values, outs[k], dtype, tol);
        }

        // backward: each differentiable output gets PyTorch's upstream gradient; the passes accumulate
        // into the leaves, which gives the vector-Jacobian product of all outputs together
        for (int k = 0; k < outs.Length; k++)
        {
            if (!expectedOuts[k].TryGetProperty("upstream", out var up)) continue;
            var upstream = MakeTensor(up, outs[k].Shape.ToArray(), dtype);
            outs[k].Backward(upstream, retainGraph: true);
        }
        foreach (var s in specs)
        {
            if (!s.TryGetProperty("grad", out var g)) continue;
            string name = s.GetProperty("name").GetString()!;
            var t = leaves[name];
            var expected = Values(g, dtype);
            // no gradient reached the leaf: the same as a zero gradient
            var actual = t.Grad ?? Tensor.ZerosLike(t);
            Assert.True(actual.Shape.Equals(t.Shape), $"{id}: gradient of {name} has shape {actual.Shape}, input {t.Shape}");
            AssertClose($"{id}: d/d{name}", expected, actual, dtype, tol);
        }
    }

    // ------------------------------------------------------------------ training trajectories

    [Theory]
    [MemberData(nameof(TrainingRunIds))]
    public void TrainingMatchesPyTorchLosses(string id)
    {
        var f = Training.Value;
        var run = f.GetProperty("runs").EnumerateArray().Single(r => r.GetProperty("id").GetString() == id);
        var dtype = ParseDType(run.GetProperty("dtype").GetString()!);
        var sizes = Ints(f.GetProperty("sizes"));
        int batch = f.GetProperty("batch_size").GetInt32(), batches = f.GetProperty("batches").GetInt32();
        bool tanh = run.GetProperty("activation").GetString() == "tanh";

        var layers = new List<Module>();
        for (int i = 0; i + 1 < sizes.Length; i++)
        {
            layers.Add(new Linear(sizes[i], sizes[i + 1], dtype: dtype));
            if (i + 2 < sizes.Length) layers.Add(tanh ? new Tanh() : new Relu());
        }
        var model = new Sequential([.. layers]);
        var init = f.GetProperty("init");
        using (Tensor.NoGrad())
            foreach (var (name, p) in model.NamedParameters())
                p.CopyFrom(MakeTensor(init.GetProperty(name)).To(dtype));

        var x = MakeTensor(f.GetProperty("x")).To(dtype);
        var y = MakeTensor(f.GetProperty("y"));
        var oa = run.GetProperty("optimizer_args");
        Optimizer opt = run.GetProperty("optimizer").GetString() == "sgd"
            ? new Sgd(model.Parameters(), lr: D(oa, "lr", double.NaN), momentum: D(oa, "momentum", 0))
            : new Adam(model.Parameters(), lr: D(oa, "lr", double.NaN));

        var losses = Values(run.GetProperty("losses"), DType.Float64);
        for (int step = 0; step < losses.Length; step++)
        {
            int b = step % batches;
            var loss = Loss.CrossEntropy(model.Forward(x.Narrow(0, b * batch, batch)), y.Narrow(0, b * batch, batch));
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
            // 1e-5 relative at every step, in float32 as in float64 (the issue's requirement)
            double e = losses[step], a = loss.ItemDouble();
            Assert.True(Math.Abs(a - e) <= 1e-5 * Math.Abs(e),
                $"{id}: loss at step {step + 1} is {a:R}, PyTorch {e:R} (relative error {Math.Abs(a - e) / Math.Abs(e):E2})");
        }

        // final weights: float64 as the ops (1e-10 relative + 1e-12); float32 to 1e-4 relative + 1e-5, ten
        // times the ops' tolerance: 20 steps compound float32 rounding (Adam divides by √v, which
        // magnifies differences where v is small), and a GEMM with another summation order must still pass
        var tol = dtype == DType.Float64 ? (1e-10, 1e-12) : (1e-4, 1e-5);
        var final = run.GetProperty("final");
        foreach (var (name, p) in model.NamedParameters())
            AssertClose($"{id}: final {name}", Values(final.GetProperty(name).GetProperty("data"), dtype), p, dtype, tol);
    }

    [Fact]
    public void FixturesRecordTheTorchVersionAndCoverEveryOpFamily()
    {
        Assert.StartsWith("1.13", Training.Value.GetProperty("torch_version").GetString());
        var ops = OpCases.Value.Values.Select(c => c.GetProperty("op").GetString()!).ToHashSet();
        string[] expected =
        [
            "add", "sub", "mul", "div", "neg", "pow_scalar", "pow_tensor", "exp", "log", "sqrt", "abs", "clamp", "maximum", "minimum",
            "where", "tanh", "sigmoid", "relu", "leaky_relu", "gelu", "softplus", "matmul", "sum", "mean", "max_all", "min_all",
            "max_dim", "min_dim", "var", "logsumexp", "softmax", "log_softmax", "reshape", "transpose", "permute", "narrow", "slice",
            "select", "squeeze", "unsqueeze", "expand", "concat", "stack", "split", "index_select", "gather", "scatter_add", "one_hot",
            "linear", "linear_layer", "embedding", "dropout_eval", "cross_entropy", "nll_loss", "mse", "bce", "bce_logits",
            "square", "argmax", "argmin", "flatten", "chunk",
            "sin", "cos", "floor", "ceil", "round", "erf", "std", "norm", "masked_fill", "tril", "triu", "repeat", "flip", "roll",
            "cumsum", "einsum", "sort", "argsort", "topk", "getitem", "masked_select",
        ];
        Assert.Empty(expected.Except(ops));
        Assert.Contains(OpCases.Value.Keys, k => k.EndsWith("/f32", StringComparison.Ordinal));
    }
}
