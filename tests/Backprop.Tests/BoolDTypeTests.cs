using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Backprop.Backends;
using Backprop.IO;

namespace Backprop.Tests;

/// <summary>
/// The bool dtype: comparisons return it, masks accept it, reductions, conversion, printing and promotion follow
/// PyTorch (fixtures/bool.json, written by tools/fixtures_bool.py), and the CPU and reference backends agree.
/// </summary>
public class BoolDTypeTests
{
    private static readonly Lazy<JsonObject> Fixture = new(() => JsonNode.Parse(File.ReadAllText(FixturePath()))!.AsObject());

    private static string FixturePath([CallerFilePath] string source = "")
    {
        var nearBinary = Path.Combine(AppContext.BaseDirectory, "fixtures", "bool.json");
        return File.Exists(nearBinary) ? nearBinary : Path.Combine(Path.GetDirectoryName(source)!, "fixtures", "bool.json");
    }

    public static TheoryData<string> CaseNames()
    {
        var d = new TheoryData<string>();
        foreach (var c in Fixture.Value["cases"]!.AsArray()) d.Add((string)c!["name"]!);
        return d;
    }

    private static double Number(JsonNode v) => v.GetValueKind() switch
    {
        System.Text.Json.JsonValueKind.String => (string)v! switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            _ => double.NegativeInfinity,
        },
        System.Text.Json.JsonValueKind.True => 1,
        System.Text.Json.JsonValueKind.False => 0,
        _ => (double)v,
    };

    private static Tensor Load(JsonNode j, Device device)
    {
        var shape = j["shape"]!.AsArray().Select(v => (int)v!).ToArray();
        var values = j["values"]!.AsArray();
        var t = (string)j["dtype"]! switch
        {
            "bool" => Tensor.FromArray(values.Select(v => (bool)v!).ToArray(), shape),
            "int64" => Tensor.FromArray(values.Select(v => (long)v!).ToArray(), shape),
            "float32" => Tensor.FromArray(values.Select(v => (float)Number(v!)).ToArray(), shape),
            _ => Tensor.FromArray(values.Select(v => Number(v!)).ToArray(), shape),
        };
        return t.To(device);
    }

    /// <summary>The Backprop call for a fixture case, by the case's name.</summary>
    private static Tensor Apply(JsonObject c, Func<string, Tensor> i)
    {
        string name = (string)c["name"]!;
        if (name.StartsWith("compare_", StringComparison.Ordinal) && name != "compare_gt_scalar")
        {
            var (a, b) = (i("a"), i("b"));
            return name.Split('_')[1] switch
            {
                "eq" => a.Eq(b),
                "ne" => a.Ne(b),
                "gt" => a > b,
                "ge" => a >= b,
                "lt" => a < b,
                _ => a <= b,
            };
        }
        return name switch
        {
            "compare_gt_scalar" => i("a") > (double)c["scalar"]!,
            "logical_and" => i("a") & i("b"),
            "logical_or" => i("a") | i("b"),
            "logical_xor" => i("a") ^ i("b"),
            "logical_not" => !i("a"),
            "logical_not_float" => ~i("a"),
            "to_bool" => i("a").To(DType.Bool),
            "isnan" => i("a").IsNan(),
            "isfinite" => i("a").IsFinite(),
            "sum_all" => i("m").Sum(),
            "sum_dim1" => i("m").Sum(1),
            "mean_all" => i("m").Mean(),
            "mean_dim0_keep" => i("m").Mean(0, keepDim: true),
            "any" => i("m").Any(),
            "all" => i("m").All(),
            "to_float" => i("m").To(DType.Float32),
            "to_int64" => i("m").To(DType.Int64),
            "mul_mask_float" => i("m") * i("x"),
            "add_float_mask" => i("x") + i("m"),
            "div_float_mask" => i("x") / i("m"),
            "mul_mask_scalar" => i("m") * (double)c["scalar"]!,
            "add_mask_mask" => i("a") + i("b"),
            "mul_mask_mask" => i("a") * i("b"),
            "div_mask_mask" => i("a") / i("b"),
            "mul_mask_int64" => i("m") * i("x"),
            "where" => Tensor.Where(i("m"), i("x"), -i("x")),
            "masked_fill" => i("x").MaskedFill(i("m"), -1.5),
            "masked_select" => i("x")[i("m")],
            "mask_rows" => i("x")[i("m")],
            "masked_assign_scalar" => Assign(i("x"), i("m"), Tensor.Scalar(0.25).To(i("x").Device)),
            "masked_assign_row" => Assign(i("x"), i("m"), Tensor.FromArray(c["value"]!.AsArray().Select(v => (float)v!).ToArray()).To(i("x").Device)),
            _ => throw new ArgumentException($"no Backprop call for fixture case {name}"),
        };
    }

    private static Tensor Assign(Tensor x, Tensor m, Tensor v)
    {
        var y = x.Clone();
        y[m] = v;
        return y;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void MatchesPyTorch(string name) => MatchesPyTorchOn(name, Device.Cpu);

    /// <summary>The same fixture cases on the reference backend (the oracle): same dtypes, same values.</summary>
    [Theory]
    [MemberData(nameof(CaseNames))]
    public void ReferenceBackendMatchesPyTorch(string name) => MatchesPyTorchOn(name, Device.Reference);

    private static void MatchesPyTorchOn(string name, Device device)
    {
        var c = Fixture.Value["cases"]!.AsArray().Select(n => n!.AsObject()).Single(n => (string)n["name"]! == name);
        var inputs = c["inputs"]!.AsObject().ToDictionary(kv => kv.Key, kv => Load(kv.Value!, device));
        var y = Apply(c, k => inputs[k]);
        var expected = c["output"]!;
        Assert.Equal(device, y.Device);
        Assert.Equal((string)expected["dtype"]!, y.DType.Name());
        Assert.Equal(expected["shape"]!.AsArray().Select(v => (int)v!).ToArray(), y.Shape.ToArray());
        var want = expected["values"]!.AsArray().Select(v => Number(v!)).ToArray();
        if (y.DType is DType.Bool or DType.Int64) Assert.Equal(want, y.ToDoubleArray());
        else
        {
            var got = y.ToDoubleArray();
            Assert.Equal(want.Length, got.Length);
            for (int k = 0; k < want.Length; k++)
                Assert.True(double.IsFinite(want[k]) ? Math.Abs(want[k] - got[k]) <= 1e-6 * Math.Max(1, Math.Abs(want[k])) : want[k].Equals(got[k]),
                    $"{name}, element {k}: expected {want[k]}, got {got[k]}");
        }
    }

    [Fact]
    public void PrintsLikePyTorch()
    {
        var p = Fixture.Value["prints"]!.AsObject();
        Assert.Equal((string)p["[True, False]"]!, Tensor.FromArray([true, false]).ToString());
        // Backprop names the shape of every tensor that is not 1-D (its convention for all dtypes)
        Assert.Equal(((string)p["[[True, False], [False, True]]"]!)[..^1] + ", shape=[2, 2])", Tensor.FromArray([true, false, false, true], 2, 2).ToString());
        Assert.Equal(((string)p["True"]!)[..^1] + ", shape=[])", (Tensor.Scalar(1) > 0).ToString());
    }

    [Fact]
    public void ComparisonsReturnOneByteBoolsOutsideTheGraph()
    {
        var x = Tensor.FromArray([1.0f, -2, 3]).RequiresGrad_();
        var y = x * 2;
        foreach (var m in new[] { x > 0, x.Gt(0), x.Lt(y), x.Ge(0), x.Le(0), x.Eq(y), x.Ne(y), 0 < x, x.IsNan() })
        {
            Assert.Equal(DType.Bool, m.DType);
            Assert.False(m.RequiresGrad);
            Assert.Null(m.GradFn);
        }
        Assert.Equal(1, DType.Bool.ElementSize());
        Assert.False(DType.Bool.IsFloatingPoint());
        Assert.Equal([true, false, true], (x > 0).ToBoolArray());
        Assert.Equal([1f, 0f, 1f], (x > 0).ToArray());
        Assert.Contains("only floating-point", Assert.Throws<InvalidOperationException>(() => (x > 0).RequiresGrad_()).Message);
        // int64 comparisons are exact beyond 2^53 and give bool too
        var big = Tensor.FromArray([(1L << 53) + 1]);
        Assert.Equal([true], big.Gt(Tensor.FromArray([1L << 53])).ToBoolArray());
        Assert.Equal(DType.Bool, big.Eq(3).DType);
    }

    [Fact]
    public void ReadmeAccuracyLineGivesTheSameNumber()
    {
        var pred = Tensor.FromArray([0L, 1, 2, 2, 1]);
        var y = Tensor.FromArray([0L, 1, 1, 2, 0]);
        float accuracy = pred.Eq(y).Mean().Item();
        Assert.Equal(0.6f, accuracy);
        Assert.Equal(DType.Float32, pred.Eq(y).Mean().DType);
        var count = pred.Eq(y).Sum();
        Assert.Equal(DType.Int64, count.DType);
        Assert.Equal(3L, count.GetLong());
        Assert.Equal(3.0, count.ItemDouble());
    }

    [Fact]
    public void MasksMayStillBeFloatOrInt64()
    {
        var x = Tensor.FromArray([1f, 2, 3, 4]);
        var b = Tensor.FromArray([true, false, true, false]);
        var f = Tensor.FromArray([1f, 0, 1, 0]);
        var l = Tensor.FromArray([1L, 0, 1, 0]);
        foreach (var m in new[] { b, f, l })
        {
            Assert.Equal([-1f, 2, -1, 4], x.MaskedFill(m, -1).ToArray());
            Assert.Equal([1f, 0, 3, 0], Tensor.Where(m, x, x.Const(0)).ToArray());
            Assert.Equal([1f, 3], x[m].ToArray());
            var z = x.Clone();
            z[m] = Tensor.Scalar(9);
            Assert.Equal([9f, 2, 9, 4], z.ToArray());
        }
    }

    [Fact]
    public void MaskedWhereIsDifferentiableThroughTheValuesNotTheMask()
    {
        var x = Tensor.FromArray([1.0, -2.0, 3.0, -4.0]).RequiresGrad_();
        var y = Tensor.Where(x > 0, x * x, x * 3).Sum();
        y.Backward();
        Assert.Equal([2.0, 3, 6, 3], x.Grad!.ToDoubleArray());
        TestUtil.Check(t => t[0].MaskedFill(t[0].Detach() < 0, 0) * t[0], [Tensor.FromArray([1.5, -0.5, 2.0])]);
    }

    [Fact]
    public void ErrorsAreOneLineAndNameTheFix()
    {
        var m = Tensor.FromArray([true, false]);
        var x = Tensor.FromArray([1f, 2f]);
        Assert.Contains("LogicalNot", Assert.Throws<NotSupportedException>(() => m - x).Message);
        Assert.Contains("LogicalNot", Assert.Throws<NotSupportedException>(() => 1 - m).Message);
        Assert.Contains("LogicalNot", Assert.Throws<NotSupportedException>(() => -m).Message);
        Assert.Contains("floating-point", Assert.Throws<NotSupportedException>(() => m.Exp()).Message);
        var z = Tensor.Zeros(3, 2);
        var e = Assert.Throws<ShapeException>(() => z[Tensor.FromArray([true, false, true])] = Tensor.Ones(3, 2));
        Assert.Contains("[2, 2]", e.Message);
        foreach (var ex in new Exception[] { e, Assert.Throws<ShapeException>(() => z[Tensor.FromArray([true, false])]) })
            Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void ConvertsStridedAndBroadcastViews()
    {
        var g = new Generator(5);
        var x = Tensor.Randn([3, 4], g);
        var mt = (x > 0).Transpose(0, 1); // a non-contiguous bool view
        Assert.Equal(x.Transpose(0, 1).ToArray().Select(v => v > 0 ? 1f : 0f), mt.To(DType.Float32).ToArray());
        Assert.Equal(x.Transpose(0, 1).ToArray().Select(v => v > 0), mt.Contiguous().ToBoolArray());
        Assert.Equal(x.ToDoubleArray().Select(v => v > 0 ? 1.0 : 0.0), (x > 0).To(DType.Float64).ToDoubleArray());
        Assert.Equal([true, false, true], Tensor.FromArray([2.0, 0.0, double.NaN]).To(DType.Bool).ToBoolArray());
        Assert.Equal(DType.Bool, Tensor.Ones([2], DType.Bool).DType);
        Assert.Equal([true, true], Tensor.Ones([2], DType.Bool).ToBoolArray());
        Assert.Equal([false, true], Tensor.Concat([Tensor.FromArray([false]), Tensor.FromArray([true])], 0).ToBoolArray());
    }

    /// <summary>Long contiguous inputs (the vectorized comparison kernel), with NaN, ±∞ and ties, against host comparisons and the reference backend.</summary>
    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void LongComparisonsMatchTheHostAndTheReferenceBackend(DType dtype)
    {
        var g = new Generator(11);
        int n = 1037;
        var av = Enumerable.Range(0, n).Select(i => i % 17 == 0 ? double.NaN : i % 23 == 0 ? double.PositiveInfinity : i % 29 == 0 ? double.NegativeInfinity : Math.Round(g.NextDouble() * 4 - 2, 1)).ToArray();
        var bv = Enumerable.Range(0, n).Select(i => i % 19 == 0 ? double.NaN : i % 5 == 0 ? av[i] : Math.Round(g.NextDouble() * 4 - 2, 1)).ToArray();
        var a = Tensor.FromArray(av).To(dtype);
        var b = Tensor.FromArray(bv).To(dtype);
        Func<double, double, bool>[] host = [(x, y) => x == y, (x, y) => x != y, (x, y) => x > y, (x, y) => x >= y, (x, y) => x < y, (x, y) => x <= y];
        Func<Tensor, Tensor, Tensor>[] ops = [(x, y) => x.Eq(y), (x, y) => x.Ne(y), (x, y) => x > y, (x, y) => x >= y, (x, y) => x < y, (x, y) => x <= y];
        for (int k = 0; k < ops.Length; k++)
        {
            var want = av.Zip(bv, host[k]).ToArray();
            Assert.Equal(want, ops[k](a.To(Device.Cpu), b.To(Device.Cpu)).ToBoolArray());
            Assert.Equal(want, ops[k](a.To(Device.Reference), b.To(Device.Reference)).ToBoolArray());
            Assert.Equal(av.Select(x => host[k](x, 0.5)).ToArray(), ops[k](a.To(Device.Cpu), a.To(Device.Cpu).Const(0.5)).ToBoolArray());
        }
    }

    [Fact]
    public void BoolTargetsBatchThroughADataset()
    {
        var x = Tensor.Arange(12).Reshape(6, 2).To(Device.Cpu);
        var m = (Tensor.Arange(6) > 2.5).To(Device.Cpu);
        var b = new Backprop.Data.TensorDataset(x, m).GetBatch([5, 0, 3]);
        Assert.Equal(DType.Bool, b.Target.DType);
        Assert.Equal([true, false, true], b.Target.ToBoolArray());
    }

    [Fact]
    public void SavesAndLoadsAsSafetensorsBool()
    {
        var m = Tensor.FromArray([true, false, false, true, true, false], 2, 3).To(Device.Cpu); // safetensors IO reads CPU buffers
        var ms = new MemoryStream();
        SafeTensors.Write(ms, [new("mask", m), new("t", m.Transpose(0, 1))]);
        var bytes = ms.ToArray();
        Assert.Contains("\"dtype\":\"BOOL\"", System.Text.Encoding.UTF8.GetString(bytes));
        var f = SafeTensors.Read(new MemoryStream(bytes), "mask.safetensors");
        Assert.Equal(DType.Bool, f.Tensors["mask"].DType);
        Assert.Equal(m.ToBoolArray(), f.Tensors["mask"].ToBoolArray());
        Assert.Equal(m.Transpose(0, 1).Contiguous().ToBoolArray(), f.Tensors["t"].ToBoolArray());
    }
}
