using System.Globalization;
using Backprop.Cli.Explain;
using Backprop.Data;
using Backprop.NN;

namespace Backprop.Tests;

/// <summary><c>explain landscape</c> and <c>explain sensitivity</c>: the printed numbers against finite differences.</summary>
[Collection("Threads")]
public class ExplainPictureTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    [Fact]
    public void TheLandscapeTangentHasTheSlopeOfThePrintedCurve()
    {
        var png = Path.Combine(Path.GetTempPath(), $"landscape-{Guid.NewGuid():N}.png");
        try
        {
            var (code, stdout, err) = Run("explain", "landscape", "--out", png);
            Assert.True(code == 0, err);
            var lines = stdout.Split('\n');
            // "  backprop: dL/dm2 at m2 = 0.0 is -2.14861436 (loss 2.45061671)"
            var head = lines.Single(l => l.Contains("backprop: dL/dm2")).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            double slope = D(head[Array.IndexOf(head, "is") + 1]);
            // The table: m2, loss, tangent.
            var rows = lines.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(t => t.Length == 3 && t.All(x => double.TryParse(x, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
                .Select(t => (M: D(t[0]), L: D(t[1]), T: D(t[2]))).ToList();
            Assert.Equal(41, rows.Count);
            var loss = rows.ToDictionary(r => Math.Round(r.M, 2), r => r.L);
            double h = 0.1;
            double central = (loss[0.1] - loss[-0.1]) / (2 * h);
            double fourPoint = (-loss[0.2] + 8 * loss[0.1] - 8 * loss[-0.1] + loss[-0.2]) / (12 * h);
            // The central difference is off by about h²·L'''/6; the four-point one by O(h⁴), below the printed digits' 1e-8.
            Assert.InRange(Math.Abs(central - slope), 0, 3e-3);
            Assert.InRange(Math.Abs(fourPoint - slope), 0, 2e-6);
            // The printed tangent is the line through (0, L(0)) with that slope.
            foreach (var r in rows) Assert.InRange(Math.Abs(loss[0] + slope * r.M - r.T), 0, 2e-8);
            // The same slope as the cities walk-through, and the closed form (p_Paris - 1)·x.
            Assert.Equal(new CitiesExample().ComputeStep1().AutogradDLdM2, slope, 7);
            Assert.True(File.Exists(png) && new FileInfo(png).Length > 1000);
            Assert.True(File.Exists(Path.ChangeExtension(png, ".svg")));
        }
        finally
        {
            File.Delete(png);
            File.Delete(Path.ChangeExtension(png, ".svg"));
        }
    }

    [Fact]
    public void ACheckpointParametersLandscapeHasBackpropsSlope()
    {
        var ck = Path.Combine(Path.GetTempPath(), $"landscape-{Guid.NewGuid():N}.safetensors");
        try
        {
            var (code, _, err) = Run("train", "digits", "--model", "mlp:64-8-10", "--epochs", "1", "--limit", "200", "--save", ck, "--quiet");
            Assert.True(code == 0, err);
            (code, var stdout, err) = Run("explain", "landscape", "--checkpoint", ck, "--param", "2.bias[3]", "--samples", "100");
            Assert.True(code == 0, err);
            var lines = stdout.Split('\n');
            var head = lines.Single(l => l.Contains("backprop: dL/d2.bias[3]")).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            double slope = D(head[Array.IndexOf(head, "is") + 1]);
            var rows = lines.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(t => t.Length == 3 && t.All(x => double.TryParse(x, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
                .Select(t => (M: D(t[0]), L: D(t[1]))).ToList();
            Assert.Equal(41, rows.Count);
            double h = rows[21].M - rows[20].M;
            double fourPoint = (-rows[22].L + 8 * rows[21].L - 8 * rows[19].L + rows[18].L) / (12 * h);
            // A float32 model: the losses carry about 7 digits, so the difference is good to about 1e-5 here.
            Assert.InRange(Math.Abs(fourPoint - slope), 0, 1e-4 + 1e-3 * Math.Abs(slope));
            Assert.True(Math.Abs(slope) > 1e-5, $"a slope of {slope} tests nothing");
            (code, _, err) = Run("explain", "landscape", "--checkpoint", ck, "--param", "0.weight[8,0]");
            Assert.Equal(2, code);
            Assert.Contains("0.weight has shape [8x64]", err);
        }
        finally
        {
            foreach (var f in Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(ck) + "*")) File.Delete(f);
        }
    }

    private static (Sequential Model, TensorDataset Data) Tiny()
    {
        var g = new Generator(3);
        var model = new Sequential(new Linear(3, 4, generator: g, dtype: DType.Float64), new Tanh(), new Linear(4, 3, generator: g, dtype: DType.Float64));
        var x = Tensor.FromArray(new[] { 0.5, -1.0, 2.0, 1.5, 0.3, -0.7, -0.2, 0.9, 0.4, 1.1, -1.3, 0.8 }, 4, 3);
        var y = Tensor.FromArray(new long[] { 0, 2, 1, 2 });
        return (model, new TensorDataset(x, y));
    }

    [Fact]
    public void SensitivitiesAreMeanAbsolutePerExampleSlopes()
    {
        var (model, data) = Tiny();
        var entries = SensitivityExample.Sensitivities(model, data, "cross-entropy", 3, samples: 3);
        Assert.Equal(4 * 3 + 4 + 3 * 4 + 3, entries.Count);
        for (int i = 1; i < entries.Count; i++) Assert.True(entries[i - 1].MeanAbs >= entries[i].MeanAbs);
        // Finite differences of each example's cost for a few entries: the top one, a first-layer weight and a bias.
        var check = new[] { entries[0], entries.First(e => e.Parameter == "0.weight"), entries.First(e => e.Parameter == "2.bias") };
        foreach (var e in check)
        {
            var p = model.NamedParameters().Single(n => n.Name == e.Parameter).Param;
            int flat = e.Index.Length == 2 ? e.Index[0] * p.Size(1) + e.Index[1] : e.Index[0];
            double Cost(int i, double delta)
            {
                using var _ = Tensor.NoGrad();
                var saved = p.ToDoubleArray();
                var moved = (double[])saved.Clone();
                moved[flat] += delta;
                p.CopyFrom(Tensor.FromArray(moved, p.Shape.ToArray()));
                double c = Loss.CrossEntropy(model.Forward(data.Inputs.Narrow(0, i, 1)), data.Targets.Narrow(0, i, 1)).ItemDouble();
                p.CopyFrom(Tensor.FromArray(saved, p.Shape.ToArray()));
                return c;
            }
            double meanAbs = 0, mean = 0;
            for (int i = 0; i < 3; i++)
            {
                double slope = (Cost(i, 1e-6) - Cost(i, -1e-6)) / 2e-6;
                meanAbs += Math.Abs(slope) / 3;
                mean += slope / 3;
            }
            Assert.Equal(meanAbs, e.MeanAbs, 7);
            Assert.Equal(mean, e.Mean, 7);
        }
    }

    [Fact]
    public void TheNudgesSumOverOutputNeuronsToTheBackwardPassGradient()
    {
        var (model, data) = Tiny();
        var n = SensitivityExample.NudgesOf(model, data, 1, "cross-entropy", 3);
        // dC/dz = softmax(z) - onehot(label) for cross-entropy, computed here independently of the backward pass.
        double max = n.Output.Max();
        var e = n.Output.Select(z => Math.Exp(z - max)).ToArray();
        for (int j = 0; j < 3; j++) Assert.Equal(e[j] / e.Sum() - (j == n.Label ? 1 : 0), n.DCdZ[j], 12);
        var w = ((Linear)model[2]).Weight.ToDoubleArray();
        for (int k = 0; k < 4; k++)
        {
            double sum = 0;
            for (int j = 0; j < 3; j++)
            {
                Assert.Equal(w[j * 4 + k] * n.DCdZ[j], n.Terms[j, k], 14);
                sum += n.Terms[j, k];
            }
            Assert.Equal(sum, n.DCdA[k], 14);
            Assert.Equal(n.Autograd[k], n.DCdA[k], 12);
        }
    }

    [Fact]
    public void SensitivityPrintsTwentyRankedEntriesAndRefusesALandscapeOption()
    {
        var (code, stdout, err) = Run("explain", "sensitivity", "--samples", "40", "--example", "3");
        Assert.True(code == 0, err);
        var ranked = stdout.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(t => t.Length > 4 && int.TryParse(t[0], out _) && t[1].Contains(".weight[") | t[1].Contains(".bias["))
            .Select(t => D(t[^2])).ToList();
        Assert.Equal(20, ranked.Count);
        for (int i = 1; i < 20; i++) Assert.True(ranked[i - 1] >= ranked[i]);
        Assert.Contains("Nudges for test example 3", stdout);
        (code, _, err) = Run("explain", "sensitivity", "--out", "x.png");
        Assert.NotEqual(0, code);
        Assert.Contains("--out does not apply to 'explain sensitivity'; it is an option of 'explain landscape'", err);
    }
}
