using System.Globalization;
using System.Text;
using Backprop.Cli.Training;
using Backprop.Data;
using Backprop.NN;

namespace Backprop.Cli.Explain;

/// <summary>
/// A trained image classifier for the examples that optimize the input instead of the weights: from a
/// checkpoint written by <c>backprop train --save</c>, or (without one) a small digit network trained
/// on the spot in about a second. Inputs are handled in pixel space, [0, 1]; datasets that the trainer
/// standardizes are standardized on the way into the model.
/// </summary>
internal sealed class ImageClassifier
{
    private readonly Tensor? _mean, _std;

    private ImageClassifier(Sequential model, TensorDataset test, string described, (int H, int W) image, Tensor? mean, Tensor? std, string[]? classNames)
    {
        (Model, Test, Described, Image, _mean, _std, ClassNames) = (model, test, described, image, mean, std, classNames);
    }

    public Sequential Model { get; }

    /// <summary>The test split in pixel space (not standardized).</summary>
    public TensorDataset Test { get; }

    public string Described { get; }

    public (int H, int W) Image { get; }

    public string[]? ClassNames { get; }

    public string ClassName(int k) => ClassNames is { } n && k < n.Length ? $"{k} ({n[k]})" : k.ToString(CultureInfo.InvariantCulture);

    /// <summary>The model's logits for pixel-space inputs [N, features].</summary>
    public Tensor Logits(Tensor pixels) => Model.Forward(_mean is null ? pixels : (pixels - _mean) / _std!);

    public static ImageClassifier Load(string? checkpointPath, TextWriter output)
    {
        TrainOptions options;
        Trainer trainer;
        if (checkpointPath == null)
        {
            options = new TrainOptions { Dataset = "digits", Model = "mlp:64-64-10", Activation = "relu", Optimizer = "adam", Lr = 0.003, BatchSize = 32, Epochs = 12, Seed = 1 };
            output.WriteLine("No --checkpoint given: training a small digit network first (8x8 digits, mlp:64-64-10, 12 epochs)...");
            using (Threads.Use(Math.Max(1, Threads.Count)))
            {
                trainer = new Trainer(options);
                for (int e = 0; e < options.Epochs; e++) trainer.TrainEpoch();
            }
        }
        else
        {
            var content = TrainCommand.LoadCheckpoint(checkpointPath, "--checkpoint");
            options = TrainCommand.RecordedOptions(content, checkpointPath, "--checkpoint");
            trainer = new Trainer(options);
            try
            {
                content.Restore(model: trainer.Model);
            }
            catch (Exception e) when (e is ArgumentException or IO.CheckpointMismatchException)
            {
                throw new CliException($"--checkpoint {checkpointPath}: {e.Message}");
            }
        }
        var entry = DatasetCatalog.Find(options.Dataset);
        int features = trainer.Spec.Sizes[0];
        int side = (int)Math.Round(Math.Sqrt(features));
        if (side * side != features)
            throw new CliException($"{options.Dataset}: this example needs square grayscale images; its samples have {features} features.");
        Tensor? mean = null, std = null;
        var test = trainer.Test;
        if (entry.Standardize)
        {
            var (rawTrain, rawTest) = entry.Load(options.DataDir, options.Limit);
            (mean, std) = Trainer.InputStatistics(rawTrain);
            test = rawTest;
        }
        trainer.Model.Eval();
        string described = checkpointPath == null ? "the digit network just trained" : $"{trainer.Spec} from {checkpointPath}";
        return new ImageClassifier(trainer.Model, test, described, (side, side), mean, std, test.ClassNames?.ToArray());
    }

    /// <summary>Softmax probabilities of one pixel-space input [1, features], without recording a graph.</summary>
    public double[] Probabilities(Tensor pixels)
    {
        using var _ = Tensor.NoGrad();
        return Logits(pixels).Softmax(1).ToDoubleArray();
    }

    /// <summary>The image as rows of shading characters, darkest to brightest.</summary>
    public IEnumerable<string> Ascii(double[] pixels)
    {
        const string ramp = " .:-=+*#%@";
        for (int r = 0; r < Image.H; r++)
        {
            var line = new StringBuilder(Image.W * 2);
            for (int c = 0; c < Image.W; c++)
            {
                int i = (int)Math.Round(Math.Clamp(pixels[r * Image.W + c], 0, 1) * (ramp.Length - 1));
                line.Append(ramp[i]).Append(ramp[i]);
            }
            yield return line.ToString();
        }
    }

    /// <summary>Writes a grayscale image as binary PGM (P5), which ImageMagick, GIMP and most viewers read.</summary>
    public void WritePgm(string path, double[] pixels, double lo = 0, double hi = 1)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir != null) Directory.CreateDirectory(dir);
        var header = Encoding.ASCII.GetBytes($"P5\n{Image.W} {Image.H}\n255\n");
        var bytes = new byte[header.Length + Image.H * Image.W];
        header.CopyTo(bytes, 0);
        for (int i = 0; i < Image.H * Image.W; i++)
            bytes[header.Length + i] = (byte)Math.Round(255 * Math.Clamp((pixels[i] - lo) / (hi - lo), 0, 1));
        IO.AtomicFile.Write(path, s => s.Write(bytes));
    }
}

/// <summary>
/// <c>backprop explain adversarial</c>: the same backward pass that trains the weights gives dLoss/dPixels;
/// stepping every pixel by ε in the direction of its gradient's sign (the fast gradient sign method)
/// raises the loss fastest for a given largest change per pixel. The example finds the smallest such
/// ε that flips a correctly classified test image's prediction.
/// </summary>
internal sealed class AdversarialExample : WorkedExample
{
    public override string Name => "adversarial";

    public override string Summary => "optimize the input, not the weights: the smallest gradient-sign step (FGSM) that flips a prediction";

    /// <summary>A checkpoint of an image classifier (default: a digit network trained on the spot).</summary>
    public string? CheckpointPath { get; init; }

    /// <summary>The test image to attack (default: the first one the model classifies correctly).</summary>
    public int? Example { get; init; }

    /// <summary>Where the images go (default: the current directory).</summary>
    public string? OutDir { get; init; }

    /// <summary>The result of the last run, for tests: the flipping ε, the label before and after, the largest pixel change.</summary>
    public (double Epsilon, int Before, int After, double MaxChange)? Result { get; private set; }

    public override void Run(TextWriter o)
    {
        var m = ImageClassifier.Load(CheckpointPath, o);
        var inputs = m.Test.Inputs.Reshape(m.Test.Count, -1).To(DType.Float32);
        var targets = m.Test.Targets.ToDoubleArray();
        int index = Example ?? FirstCorrect(m, inputs, targets);
        if (index < 0 || index >= m.Test.Count)
            throw new CliException($"--example {index}: the test set has {m.Test.Count} images (0 to {m.Test.Count - 1}).");
        int label = (int)targets[index];
        var x = inputs.Narrow(0, index, 1).Clone();
        var before = m.Probabilities(x);
        int predicted = ArgMax(before);
        o.WriteLine($"Model: {m.Described}. Test image {index}, labelled {m.ClassName(label)}.");
        if (predicted != label)
            throw new CliException($"--example {index}: the model already misclassifies it (as {m.ClassName(predicted)}); pick an image it gets right.");
        o.WriteLine();
        o.WriteLine("1. Backward pass to the pixels instead of the weights: the loss's gradient dLoss/dPixels.");
        var xg = x.Clone().RequiresGrad_();
        var loss = Loss.CrossEntropy(m.Logits(xg), Tensor.FromArray([(long)label], 1));
        loss.Backward();
        var grad = xg.Grad!.ToDoubleArray();
        double gmax = grad.Max(Math.Abs), gnorm = Math.Sqrt(grad.Sum(g => g * g));
        o.WriteLine($"   loss {F(loss.ItemDouble(), 4)}; |dLoss/dPixel| at most {gmax:E2}, ‖dLoss/dPixels‖₂ = {gnorm:E2} over {grad.Length} pixels.");
        o.WriteLine($"   The pixel the loss is most sensitive to: {Array.IndexOf(grad.Select(Math.Abs).ToArray(), gmax)} (row {Array.IndexOf(grad.Select(Math.Abs).ToArray(), gmax) / m.Image.W}, column {Array.IndexOf(grad.Select(Math.Abs).ToArray(), gmax) % m.Image.W}).");
        o.WriteLine();
        o.WriteLine("2. Fast gradient sign method: x' = clip(x + ε·sign(dLoss/dPixels), 0, 1); the smallest ε that changes the prediction:");
        var sign = Tensor.FromArray(grad.Select(g => (float)Math.Sign(g)).ToArray(), 1, grad.Length);
        double flip = double.NaN;
        int after = predicted;
        double[] adv = [];
        o.WriteLine($"   {"ε",7}  {"p(" + label + ")",9}  prediction");
        for (int step = 1; step <= 200; step++)
        {
            double eps = step * 0.005;
            var xa = (x + sign * eps).Clamp(0, 1);
            var p = m.Probabilities(xa);
            int k = ArgMax(p);
            if (step % 10 == 0 || k != label)
                o.WriteLine($"   {F(eps, 3),7}  {F(p[label], 4),9}  {m.ClassName(k)}{(k != label ? $" with p = {F(p[k], 4)}   <- flipped" : "")}");
            if (k != label)
            {
                (flip, after, adv) = (eps, k, xa.ToDoubleArray());
                break;
            }
        }
        var pixels = x.ToDoubleArray();
        if (double.IsNaN(flip))
        {
            o.WriteLine("   no ε up to 1 flipped it (every pixel saturated at 0 or 1 keeps the label).");
            Result = null;
            return;
        }
        var afterP = m.Probabilities(Tensor.FromArray(adv.Select(v => (float)v).ToArray(), 1, adv.Length));
        double maxChange = pixels.Zip(adv, (a, b) => Math.Abs(a - b)).Max();
        double l2 = Math.Sqrt(pixels.Zip(adv, (a, b) => (a - b) * (a - b)).Sum());
        Result = (flip, label, after, maxChange);
        o.WriteLine();
        o.WriteLine($"3. Before: {m.ClassName(label)} with p = {F(before[label], 4)}. After ε = {F(flip, 3)}: {m.ClassName(after)} with p = {F(afterP[after], 4)} " +
                    $"(p({label}) fell to {F(afterP[label], 4)}).");
        o.WriteLine($"   No pixel moved by more than {F(maxChange, 3)} (on a 0-1 scale); the whole change has L2 norm {F(l2, 3)}.");
        o.WriteLine();
        var left = m.Ascii(pixels).ToArray();
        var right = m.Ascii(adv).ToArray();
        o.WriteLine($"   {"original".PadRight(2 * m.Image.W)}   adversarial");
        for (int r = 0; r < left.Length; r++) o.WriteLine($"   {left[r]}   {right[r]}");
        string dir = OutDir ?? ".";
        string a = Path.Combine(dir, $"adversarial-{index}-original.pgm"), b = Path.Combine(dir, $"adversarial-{index}-perturbed.pgm"),
            d = Path.Combine(dir, $"adversarial-{index}-difference.pgm");
        m.WritePgm(a, pixels);
        m.WritePgm(b, adv);
        m.WritePgm(d, pixels.Zip(adv, (p, q) => q - p).ToArray(), -flip, flip);
        o.WriteLine();
        o.WriteLine($"Wrote {a}, {b} and {d} (the change, mid-gray = none).");
    }

    private static int FirstCorrect(ImageClassifier m, Tensor inputs, double[] targets)
    {
        using var _ = Tensor.NoGrad();
        var predicted = m.Logits(inputs.Narrow(0, 0, Math.Min(200, inputs.Size(0)))).Argmax(1).ToDoubleArray();
        for (int i = 0; i < predicted.Length; i++)
            if (predicted[i] == targets[i]) return i;
        throw new CliException("the model gets none of the first 200 test images right; train it longer.");
    }

    internal static int ArgMax(double[] p)
    {
        int best = 0;
        for (int i = 1; i < p.Length; i++) if (p[i] > p[best]) best = i;
        return best;
    }
}

/// <summary>
/// <c>backprop explain dream --class K</c>: start from noise and follow the gradient of class K's score
/// with respect to the input (gradient ascent on the pixels, weights frozen), showing what the network
/// "thinks" a K looks like, and how confidently it labels pure noise to begin with.
/// </summary>
internal sealed class DreamExample : WorkedExample
{
    public override string Name => "dream";

    public override string Summary => "follow dScore/dPixels from noise: what the network thinks a class looks like";

    public string? CheckpointPath { get; init; }

    /// <summary>The class to dream of (default 8).</summary>
    public int Class { get; init; } = 8;

    public string? OutDir { get; init; }

    /// <summary>For tests: the class's probability on the noise and at the end.</summary>
    public (double Noise, double Final)? Result { get; private set; }

    public override void Run(TextWriter o)
    {
        var m = ImageClassifier.Load(CheckpointPath, o);
        int features = m.Image.H * m.Image.W;
        int classes = m.Probabilities(Tensor.Zeros(1, features)).Length;
        if (Class < 0 || Class >= classes)
            throw new CliException($"--class {Class}: the model has classes 0 to {classes - 1}.");
        var g = new Generator(7);
        var x = Tensor.Rand([1, features], g);
        var noise = m.Probabilities(x);
        int noiseClass = AdversarialExample.ArgMax(noise);
        o.WriteLine($"Model: {m.Described}.");
        o.WriteLine($"Pure noise (uniform pixels, seed 7) is labelled {m.ClassName(noiseClass)} with p = {F(noise[noiseClass], 4)}; p({Class}) = {F(noise[Class], 4)}.");
        o.WriteLine();
        o.WriteLine($"Gradient ascent on the pixels: x ← clip(x + η·dS/dx, 0, 1), S = log p({Class}) − λ‖x − 0.5‖² (λ = 0.01 keeps the picture from saturating), η = 0.05 / max|dS/dx|:");
        o.WriteLine($"   {"step",5}  {"p(" + Class + ")",8}  prediction");
        double final = noise[Class];
        for (int step = 1; step <= 150; step++)
        {
            var xg = x.Clone().RequiresGrad_();
            var logp = m.Logits(xg).LogSoftmax(1).Select(1, Class).Sum();
            var score = logp - ((xg - 0.5) * (xg - 0.5)).Sum() * 0.01;
            score.Backward();
            var grad = xg.Grad!;
            double gmax = grad.Abs().Max().ItemDouble();
            if (gmax == 0) break;
            using (Tensor.NoGrad()) x = (x + grad * (0.05 / gmax)).Clamp(0, 1);
            var p = m.Probabilities(x);
            final = p[Class];
            if (step % 15 == 0 || step == 1)
                o.WriteLine($"   {step,5}  {F(p[Class], 4),8}  {m.ClassName(AdversarialExample.ArgMax(p))}");
        }
        Result = (noise[Class], final);
        o.WriteLine();
        o.WriteLine($"What the network \"thinks\" a {m.ClassName(Class)} looks like (p = {F(final, 4)}):");
        var pixels = x.ToDoubleArray();
        foreach (var line in m.Ascii(pixels)) o.WriteLine("   " + line);
        string path = Path.Combine(OutDir ?? ".", $"dream-{Class}.pgm");
        m.WritePgm(path, pixels);
        o.WriteLine();
        o.WriteLine($"Wrote {path}. The picture rarely looks like a {Class} to us: the network was never asked what is NOT a digit, so any input that pushes its {Class}-score up counts.");
    }
}
