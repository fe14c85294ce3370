using System.Text.Json;
using Backprop.NN;

namespace Backprop.Tests;

/// <summary>
/// Rnn, Lstm and Gru against torch.nn.RNN / LSTM / GRU (fixtures/rnn.json, from tools/fixtures_rnn.py):
/// PyTorch's parameters are loaded by their state-dict names (strict), then the outputs, the final
/// states and the gradients of the input, the initial states and every parameter must match, in
/// float64 (rel 1e-9) and float32 (rel 1e-4; values are O(1), sums over a few dozen terms).
/// </summary>
public class RecurrentFixtureTests
{
    private static readonly Lazy<JsonElement[]> Cases = new(() =>
    {
        var path = Path.Combine(DataTestFiles.RepoRoot, "tests", "Backprop.Tests", "fixtures", "rnn.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.Clone()).ToArray();
    });

    public static IEnumerable<object[]> Indices =>
        Enumerable.Range(0, 8).SelectMany(i => new[] { new object[] { i, DType.Float64 }, new object[] { i, DType.Float32 } });

    private static double[] D(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();

    private static Tensor T(JsonElement e, int[] shape, DType dtype) => Tensor.FromArray(D(e), shape).To(dtype);

    [Theory]
    [MemberData(nameof(Indices))]
    public void MatchesPyTorch(int index, DType dtype)
    {
        var c = Cases.Value[index];
        string kind = c.GetProperty("kind").GetString()!;
        int b = c.GetProperty("batch").GetInt32(), t = c.GetProperty("steps").GetInt32(), inF = c.GetProperty("input").GetInt32();
        int h = c.GetProperty("hidden").GetInt32(), layers = c.GetProperty("layers").GetInt32();
        bool bias = c.GetProperty("bias").GetBoolean();
        Module m = kind switch
        {
            "lstm" => new Lstm(inF, h, layers, bias, dtype: dtype),
            "gru" => new Gru(inF, h, layers, bias, dtype: dtype),
            _ => new Rnn(inF, h, layers, bias, dtype: dtype),
        };
        var state = new StateDict();
        var pars = c.GetProperty("params");
        foreach (var (name, p) in m.NamedParameters())
            state.Add(name, T(pars.GetProperty(name), p.Shape.ToArray(), dtype));
        Assert.Equal(pars.EnumerateObject().Count(), state.Count);
        m.LoadStateDict(state, strict: true);

        var x = T(c.GetProperty("x"), [b, t, inF], dtype).RequiresGrad_();
        int[] sshape = [layers, b, h];
        Tensor? h0 = c.TryGetProperty("h0", out var h0e) ? T(h0e, sshape, dtype).RequiresGrad_() : null;
        Tensor? c0 = c.TryGetProperty("c0", out var c0e) ? T(c0e, sshape, dtype).RequiresGrad_() : null;
        Tensor y, hn;
        Tensor? cn = null;
        switch (m)
        {
            case Lstm lstm:
                (y, (hn, var cc)) = lstm.Call((x, h0 == null ? null : (h0, c0!)));
                cn = cc;
                break;
            case Gru gru: (y, hn) = gru.Call((x, h0)); break;
            default: (y, hn) = ((Rnn)m).Call((x, h0)); break;
        }
        double tol = dtype == DType.Float64 ? 1e-9 : 1e-4;
        TestUtil.Close(D(c.GetProperty("y")), y, tol);
        TestUtil.Close(D(c.GetProperty("hn")), hn, tol);
        var loss = (y * T(c.GetProperty("ry"), [b, t, h], dtype)).Sum() + (hn * T(c.GetProperty("rh"), sshape, dtype)).Sum();
        if (cn != null)
        {
            TestUtil.Close(D(c.GetProperty("cn")), cn, tol);
            loss = loss + (cn * T(c.GetProperty("rc"), sshape, dtype)).Sum();
        }
        loss.Backward();
        TestUtil.Close(D(c.GetProperty("grad_x")), x.Grad!, tol);
        if (h0 != null) TestUtil.Close(D(c.GetProperty("grad_h0")), h0.Grad!, tol);
        if (c0 != null) TestUtil.Close(D(c.GetProperty("grad_c0")), c0.Grad!, tol);
        var gp = c.GetProperty("grad_params");
        foreach (var (name, p) in m.NamedParameters())
            TestUtil.Close(D(gp.GetProperty(name)), p.Grad!, tol);
    }
}
