using System.Globalization;
using System.Text.Json.Nodes;
using Backprop.NN;

namespace Backprop.Cli.Viz;

/// <summary>
/// A clicked edge or neuron: its value, its gradient for one example, and the chain-rule product
/// that made that gradient, with the numbers. Everything comes from the library's autograd on a copy
/// of the model: the pre-activations z and activations a keep their gradients (RetainGrad), the
/// weight's gradient is its .Grad, and the activation's slope σ'(z) is the gradient of σ at z.
/// </summary>
public static class VizInspect
{
    /// <summary>
    /// Inspects weight [<paramref name="to"/>, <paramref name="from"/>] of linear layer
    /// <paramref name="layer"/> (kind "edge"), or neuron <paramref name="to"/> of that layer's output
    /// (kind "neuron"; layer −1 is the inputs), for train (or test) example <paramref name="example"/>.
    /// </summary>
    public static JsonObject Run(VizSession.ModelCopy copy, string kind, int layer, int to, int from, int example, bool test)
    {
        var sizes = copy.Sizes;
        int nLayers = sizes.Length - 1;
        var inputs = test ? copy.TestInputs : copy.TrainInputs;
        var labels = test ? copy.Data.TestY : copy.Data.TrainY;
        if (labels.Length == 0) throw new VizException("inspect: the chosen split has no examples.");
        if (example < 0 || example >= labels.Length) throw new VizException($"inspect: example {example} is outside 0..{labels.Length - 1}.");
        if (layer < (kind == "neuron" ? -1 : 0) || layer >= nLayers) throw new VizException($"inspect: layer {layer} is outside the network's {nLayers} layers.");
        int outSize = layer < 0 ? sizes[0] : sizes[layer + 1];
        if (to < 0 || to >= outSize) throw new VizException($"inspect: neuron {to} is outside 0..{outSize - 1}.");
        if (kind == "edge" && (from < 0 || from >= sizes[layer])) throw new VizException($"inspect: input {from} is outside 0..{sizes[layer] - 1}.");

        var model = VizSession.Replica(copy);
        var linears = model.Layers.OfType<Linear>().ToArray();
        var acts = model.Layers.Where(m => m is not Linear).ToArray();
        int d = sizes[0];
        var x = Tensor.FromArray(inputs.AsSpan(example * d, d).ToArray(), 1, d);
        long y = labels[example];
        // Forward layer by layer, keeping every z and a with its gradient.
        var zs = new Tensor[nLayers];
        var As = new Tensor[nLayers + 1];
        As[0] = x;
        for (int l = 0; l < nLayers; l++)
        {
            zs[l] = linears[l].Forward(As[l]).RetainGrad();
            As[l + 1] = l + 1 < nLayers ? acts[l].Forward(zs[l]).RetainGrad() : zs[l];
        }
        var loss = VizSession.LossOf(copy.Config.Loss, zs[^1], Tensor.FromArray(new[] { y }, 1), sizes[^1]);
        loss.Backward();
        var o = new JsonObject
        {
            ["kind"] = kind,
            ["layer"] = layer,
            ["to"] = to,
            ["from"] = from,
            ["example"] = example,
            ["split"] = test ? "test" : "train",
            ["label"] = copy.Data.ClassNames[y],
            ["step"] = copy.Step,
            ["loss"] = loss.ItemDouble(),
            ["input"] = new JsonArray([.. x.ToDoubleArray().Select(v => (JsonNode)v)]),
        };
        var lines = new JsonArray();
        if (kind == "edge")
        {
            double w = linears[layer].Weight.GetDouble(to, from);
            double grad = linears[layer].Weight.Grad!.GetDouble(to, from);
            double dz = zs[layer].Grad!.GetDouble(0, to);
            double aIn = As[layer].GetDouble(0, from);
            string aName = layer == 0 ? $"x{Sub(from)}" : $"a{Sup(layer)}{Sub(from)}";
            string zName = $"z{Sup(layer + 1)}{Sub(to)}";
            o["value"] = w;
            o["grad"] = grad;
            o["batchGrad"] = copy.WeightGrads[layer][to * sizes[layer] + from];
            o["lastUpdate"] = copy.WeightUpdates[layer][to * sizes[layer] + from];
            o["dLdz"] = dz;
            o["aIn"] = aIn;
            o["product"] = dz * aIn;
            lines.Add($"w = {F(w)}   (layer {layer + 1}, from {aName} to {zName})");
            lines.Add($"∂L/∂w = ∂L/∂{zName} · ∂{zName}/∂w = ∂L/∂{zName} · {aName} = {F(dz)} × {F(aIn)} = {F(dz * aIn)}");
            lines.Add($"autograd: w.Grad = {F(grad)}");
            ExplainDz(lines, o, copy, linears, zs, As, layer, to, y);
        }
        else if (layer < 0)
        {
            o["value"] = x.GetDouble(0, to);
            lines.Add($"x{Sub(to)} = {F(x.GetDouble(0, to))}   (input feature {copy.Config.Features.ElementAtOrDefault(to) ?? "pixel " + to})");
            lines.Add("inputs are data: backprop stops here (no gradient is kept for them).");
        }
        else
        {
            double z = zs[layer].GetDouble(0, to), a = As[layer + 1].GetDouble(0, to);
            double dz = zs[layer].Grad!.GetDouble(0, to);
            o["value"] = a;
            o["z"] = z;
            o["grad"] = dz;
            o["dLdz"] = dz;
            o["biasGrad"] = linears[layer].Bias!.Grad!.GetDouble(to);
            string zName = $"z{Sup(layer + 1)}{Sub(to)}";
            lines.Add(layer + 1 < nLayers
                ? $"{zName} = {F(z)},   a = {copy.Config.Activation}({zName}) = {F(a)}"
                : $"{zName} = {F(z)}   (output logit of class {copy.Data.ClassNames[to]})");
            lines.Add($"∂L/∂b = ∂L/∂{zName} = {F(dz)}   (autograd: b.Grad = {F(linears[layer].Bias!.Grad!.GetDouble(to))})");
            ExplainDz(lines, o, copy, linears, zs, As, layer, to, y);
        }
        o["lines"] = lines;
        return o;
    }

    /// <summary>Where ∂L/∂z came from: softmax − one-hot at the output, or Σ_k w_kj ∂L/∂z_k times σ'(z) inside.</summary>
    private static void ExplainDz(JsonArray lines, JsonObject o, VizSession.ModelCopy copy, Linear[] linears, Tensor[] zs, Tensor[] As, int layer, int j, long y)
    {
        int nLayers = zs.Length;
        string zName = $"z{Sup(layer + 1)}{Sub(j)}";
        double dz = zs[layer].Grad!.GetDouble(0, j);
        if (layer == nLayers - 1)
        {
            Tensor p;
            using (Tensor.NoGrad()) p = zs[layer].Softmax(1);
            double pj = p.GetDouble(0, j), yj = j == y ? 1 : 0;
            if (copy.Config.Loss == "cross-entropy")
                lines.Add($"∂L/∂{zName} = softmax(z){Sub(j)} − y{Sub(j)} = {F(pj)} − {yj} = {F(pj - yj)}   (autograd: {F(dz)})");
            else
            {
                double z = zs[layer].GetDouble(0, j);
                int k = copy.Sizes[^1];
                lines.Add($"∂L/∂{zName} = 2 (z{Sub(j)} − y{Sub(j)}) / {k} = 2 × ({F(z)} − {yj}) / {k} = {F(2 * (z - yj) / k)}   (autograd: {F(dz)})");
            }
            return;
        }
        // a = σ(z): the slope σ'(z) by autograd on a fresh leaf.
        var zLeaf = Tensor.FromArray(new[] { zs[layer].GetDouble(0, j) }, 1).RequiresGrad_();
        var act = Activation.Create(copy.Config.Activation);
        act.Forward(zLeaf).Sum().Backward();
        double slope = zLeaf.Grad!.GetDouble(0);
        double da = As[layer + 1].Grad!.GetDouble(0, j);
        string aName = $"a{Sup(layer + 1)}{Sub(j)}";
        var next = linears[layer + 1].Weight;
        int kNext = next.Size(0);
        var terms = new List<string>();
        double sum = 0;
        for (int k = 0; k < kNext; k++)
        {
            double w = next.GetDouble(k, j), g = zs[layer + 1].Grad!.GetDouble(0, k);
            sum += w * g;
            if (k < 6) terms.Add($"{F(w)}×{F(g)}");
        }
        if (kNext > 6) terms.Add($"… ({kNext - 6} more)");
        o["dLda"] = da;
        o["slope"] = slope;
        lines.Add($"∂L/∂{aName} = Σₖ w{Sup(layer + 2)}ₖ{Sub(j)} · ∂L/∂z{Sup(layer + 2)}ₖ = {string.Join(" + ", terms)} = {F(sum)}   (autograd: {F(da)})");
        lines.Add($"∂L/∂{zName} = ∂L/∂{aName} · σ'({zName}) = {F(da)} × {F(slope)} = {F(da * slope)}   (autograd: {F(dz)})");
    }

    /// <summary>Six significant digits.</summary>
    public static string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);

    private static string Sub(int i) => string.Concat(i.ToString(CultureInfo.InvariantCulture).Select(c => (char)('₀' + (c - '0'))));

    private static string Sup(int i) => "⁽" + i.ToString(CultureInfo.InvariantCulture) + "⁾";
}
