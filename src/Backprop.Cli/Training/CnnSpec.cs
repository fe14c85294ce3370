using System.Globalization;
using Backprop.NN;

namespace Backprop.Cli.Training;

/// <summary>
/// A convolutional network described in one line, <c>cnn:1x28x28-c32-bn-relu-m2-c64-bn-relu-m2-d0.25-10</c>
/// (docs/cli.md, "CNN models"): the input image as CxHxW, then layers separated by '-':
/// <list type="bullet">
/// <item><c>cN[kK][sS][pP]</c>: a 2-D convolution to N channels, kernel K (3), stride S (1), padding P (K/2, "same" for odd K at stride 1);</item>
/// <item><c>bn</c>: batch norm (2-D on images, 1-D after the flatten);</item>
/// <item><c>relu</c>, <c>tanh</c>, <c>sigmoid</c>, <c>gelu</c>, <c>softplus</c>: an activation;</item>
/// <item><c>mK</c> / <c>aK</c>: max / average pooling over K×K windows with stride K; <c>gap</c>: global average pooling;</item>
/// <item><c>dP</c>: dropout with probability P; <c>N</c>: a linear layer to N features (the image is flattened before the first one).</item>
/// </list>
/// The last layer is a linear layer whose size is the number of classes.
/// </summary>
public sealed class CnnSpec
{
    /// <summary>The preset of <c>--model cnn</c>: two conv blocks with batch norm and pooling and a linear classifier (about 52,000 parameters).</summary>
    public const string Preset = "1x28x28-c32-bn-relu-m2-c64-bn-relu-m2-d0.25-10";

    private readonly List<Func<Generator, Module>> _layers = [];

    private CnnSpec(string text) => Text = text;

    /// <summary>The description after "cnn:".</summary>
    public string Text { get; }

    /// <summary>Input channels, height and width.</summary>
    public (int C, int H, int W) Input { get; private set; }

    /// <summary>Output size of the last layer (the number of classes).</summary>
    public int Outputs { get; private set; }

    /// <summary>Trainable parameters of the network.</summary>
    public long Parameters { get; private set; }

    /// <summary>Values each layer outputs per sample, summed over the layers (for the memory estimate).</summary>
    public long ActivationsPerSample { get; private set; }

    /// <summary>Parses the part after "cnn:"; a malformed part is a one-line <see cref="CliException"/> naming it.</summary>
    public static CnnSpec Parse(string text, string whole)
    {
        var spec = new CnnSpec(text);
        var tokens = text.Split('-');
        CliException Bad(string token, string why) => new($"invalid --model '{whole}': '{token}' {why} (see 'CNN models' in docs/cli.md).");
        int Int(string token, string digits, string what, int min = 1)
        {
            if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < min)
                throw Bad(token, $"needs {what} as an integer >= {min}");
            return v;
        }

        var shape = tokens[0].Split('x');
        if (shape.Length != 3) throw Bad(tokens[0], "is not an input image shape CxHxW, for example 1x28x28");
        int c = Int(tokens[0], shape[0], "a channel count"), h = Int(tokens[0], shape[1], "a height"), w = Int(tokens[0], shape[2], "a width");
        spec.Input = (c, h, w);
        spec._layers.Add(_ => new ImageInput(spec.Input.C, spec.Input.H, spec.Input.W));
        bool flat = false;
        int features = 0;
        for (int i = 1; i < tokens.Length; i++)
        {
            string t = tokens[i];
            bool isLinear = t.Length > 0 && t.All(char.IsAsciiDigit);
            if (t.Length == 0) throw Bad(t, "is empty (two '-' in a row?)");
            if (isLinear)
            {
                int n = Int(t, t, "an output size");
                if (!flat)
                {
                    (flat, features) = (true, c * h * w);
                    spec._layers.Add(_ => new Flatten());
                }
                int inF = features;
                spec._layers.Add(g => new Linear(inF, n, generator: g));
                spec.Parameters += (long)inF * n + n;
                features = n;
            }
            else if (t[0] == 'c' && t.Length > 1 && char.IsAsciiDigit(t[1]))
            {
                if (flat) throw Bad(t, "is a convolution after the flatten (a linear layer came before it)");
                var m = System.Text.RegularExpressions.Regex.Match(t, @"^c(\d+)(?:k(\d+))?(?:s(\d+))?(?:p(\d+))?$");
                if (!m.Success) throw Bad(t, "is not a convolution cN[kK][sS][pP], for example c32 or c64k5s2p2");
                int outC = Int(t, m.Groups[1].Value, "an output channel count");
                int k = m.Groups[2].Success ? Int(t, m.Groups[2].Value, "a kernel size") : 3;
                int s = m.Groups[3].Success ? Int(t, m.Groups[3].Value, "a stride") : 1;
                int p = m.Groups[4].Success ? Int(t, m.Groups[4].Value, "a padding", 0) : k / 2;
                int oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
                if (h + 2 * p < k || w + 2 * p < k)
                    throw Bad(t, $"has a {k}x{k} kernel larger than its padded {h + 2 * p}x{w + 2 * p} input");
                int inC = c;
                spec._layers.Add(g => new Conv2d(inC, outC, k, stride: s, padding: p, generator: g));
                spec.Parameters += (long)outC * inC * k * k + outC;
                (c, h, w) = (outC, oh, ow);
            }
            else if (t == "bn")
            {
                int n = flat ? features : c;
                bool oneD = flat;
                spec._layers.Add(_ => oneD ? new BatchNorm1d(n) : new BatchNorm2d(n));
                spec.Parameters += 2L * n;
            }
            else if ((t[0] == 'm' || t[0] == 'a') && t.Length > 1 && t[1..].All(char.IsAsciiDigit))
            {
                if (flat) throw Bad(t, "is a pooling layer after the flatten");
                int k = Int(t, t[1..], "a window size");
                if (h < k || w < k) throw Bad(t, $"pools {k}x{k} windows over a {h}x{w} image");
                spec._layers.Add(_ => t[0] == 'm' ? new MaxPool2d(k) : new AvgPool2d(k));
                (h, w) = (h / k, w / k);
            }
            else if (t == "gap")
            {
                if (flat) throw Bad(t, "is a global average pooling after the flatten");
                spec._layers.Add(_ => new AdaptiveAvgPool2d(1));
                (h, w) = (1, 1);
            }
            else if (t[0] == 'd' && t.Length > 1)
            {
                if (!double.TryParse(t[1..], NumberStyles.Float, CultureInfo.InvariantCulture, out double p) || !(p >= 0 && p < 1))
                    throw Bad(t, "needs a dropout probability in [0, 1), for example d0.25");
                spec._layers.Add(g => new Dropout(p, g));
            }
            else if (Activation.Names.Contains(t) && !t.Contains('-'))
            {
                spec._layers.Add(_ => Activation.Create(t));
            }
            else
                throw Bad(t, "is not a layer; expected cN (convolution), bn, an activation (relu, tanh, sigmoid, gelu, softplus), mK or aK (pooling), gap, dP (dropout) or N (linear)");
            spec.ActivationsPerSample += flat ? features : (long)c * h * w;
        }
        if (tokens.Length < 2 || !tokens[^1].All(char.IsAsciiDigit))
            throw Bad(tokens[^1], "ends the network; the last layer must be a linear layer to the number of classes, for example -10");
        spec.Outputs = features;
        return spec;
    }

    /// <summary>The network: an input reshape to CxHxW, then the layers in order.</summary>
    public Sequential Build(Generator generator)
    {
        var seq = new Sequential();
        foreach (var make in _layers) seq.Add(make(generator));
        return seq;
    }
}

/// <summary>Reshapes each sample (flat, as the datasets give it, or already an image) to C×H×W.</summary>
internal sealed class ImageInput(int channels, int height, int width) : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.Reshape(input.Size(0), channels, height, width);
}
