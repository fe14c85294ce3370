namespace Backprop.Data;

/// <summary>
/// The random stream of one sample's augmentation: a SplitMix64 sequence seeded from (seed, epoch,
/// sample index), so the draws of a sample depend on nothing else (not on the batch, the thread, or
/// whether the loader prefetches). A struct: drawing allocates nothing.
/// </summary>
public struct AugmentRandom
{
    private ulong _state;

    /// <summary>The stream of sample <paramref name="index"/> in <paramref name="epoch"/> for <paramref name="seed"/>.</summary>
    public AugmentRandom(ulong seed, int epoch, int index)
    {
        _state = seed;
        _state = Mix(_state ^ ((ulong)(uint)epoch + 1) * 0x9E3779B97F4A7C15UL);
        _state = Mix(_state ^ ((ulong)(uint)index + 1) * 0xD1B54A32D192ED03UL);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64() => Mix(_state += 0x9E3779B97F4A7C15UL);

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [low, high] (both included).</summary>
    public int NextInt(int low, int high) => low + (int)(NextDouble() * ((long)high - low + 1));
}

/// <summary>
/// One step of an image pipeline over a float32 sample [C, H, W] (row-major). Transforms are
/// stateless and may run on several threads at once; their randomness comes from the sample's
/// <see cref="AugmentRandom"/>.
/// </summary>
public abstract class ImageTransform
{
    /// <summary>The shape of the result for an input of shape (c, h, w) (the same by default).</summary>
    public virtual (int C, int H, int W) OutputShape(int c, int h, int w) => (c, h, w);

    /// <summary>Writes the transformed <paramref name="source"/> ([c, h, w]) into <paramref name="destination"/> (of <see cref="OutputShape"/>; never overlapping the source).</summary>
    public abstract void Apply(ReadOnlySpan<float> source, Span<float> destination, int c, int h, int w, ref AugmentRandom random);

    /// <summary>dst[ch, y, x] = src[ch, y + dy, x + dx], or <paramref name="fill"/> where that is outside the source (a shifted window).</summary>
    internal static void Window(ReadOnlySpan<float> src, Span<float> dst, int c, int h, int w, int oh, int ow, int dy, int dx, float fill)
    {
        int x0 = Math.Clamp(-dx, 0, ow), x1 = Math.Clamp(w - dx, x0, ow); // destination columns with a source
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < oh; y++)
            {
                var row = dst.Slice((ch * oh + y) * ow, ow);
                int sy = y + dy;
                if (sy < 0 || sy >= h || x1 <= x0)
                {
                    row.Fill(fill);
                    continue;
                }
                row[..x0].Fill(fill);
                src.Slice((ch * h + sy) * w + x0 + dx, x1 - x0).CopyTo(row[x0..x1]);
                row[x1..].Fill(fill);
            }
    }
}

/// <summary>
/// Random crop (torchvision's RandomCrop): pads the image with <see cref="Fill"/> by
/// <see cref="Padding"/> on every side, then takes a <see cref="Height"/>×<see cref="Width"/> window at
/// a uniformly random position. <c>new RandomCrop(28, padding: 2)</c> on 28×28 digits shifts them by up to 2 pixels.
/// </summary>
public sealed class RandomCrop : ImageTransform
{
    /// <summary>A square crop.</summary>
    public RandomCrop(int size, int padding = 0, float fill = 0) : this(size, size, padding, fill) { }

    /// <summary>A crop of <paramref name="height"/>×<paramref name="width"/>.</summary>
    public RandomCrop(int height, int width, int padding, float fill = 0)
    {
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), $"RandomCrop: size must be positive, got {height}x{width}.");
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        (Height, Width, Padding, Fill) = (height, width, padding, fill);
    }

    /// <summary>Output height.</summary>
    public int Height { get; }
    /// <summary>Output width.</summary>
    public int Width { get; }
    /// <summary>Padding added on each side before cropping.</summary>
    public int Padding { get; }
    /// <summary>Value of the padding.</summary>
    public float Fill { get; }

    /// <inheritdoc/>
    public override (int C, int H, int W) OutputShape(int c, int h, int w)
    {
        if (h + 2 * Padding < Height || w + 2 * Padding < Width)
            throw new ArgumentException($"RandomCrop: a {Height}x{Width} crop does not fit an image of {h}x{w} padded by {Padding}.");
        return (c, Height, Width);
    }

    /// <inheritdoc/>
    public override void Apply(ReadOnlySpan<float> source, Span<float> destination, int c, int h, int w, ref AugmentRandom random)
    {
        int top = random.NextInt(0, h + 2 * Padding - Height), left = random.NextInt(0, w + 2 * Padding - Width);
        Window(source, destination, c, h, w, Height, Width, top - Padding, left - Padding, Fill);
    }
}

/// <summary>Mirrors the image left to right with probability <see cref="P"/> (torchvision's RandomHorizontalFlip).</summary>
public sealed class RandomHorizontalFlip(double p = 0.5) : ImageTransform
{
    /// <summary>Probability of flipping.</summary>
    public double P { get; } = p is >= 0 and <= 1 ? p : throw new ArgumentOutOfRangeException(nameof(p), p, "RandomHorizontalFlip: probability must be in [0, 1].");

    /// <inheritdoc/>
    public override void Apply(ReadOnlySpan<float> source, Span<float> destination, int c, int h, int w, ref AugmentRandom random)
    {
        source.CopyTo(destination);
        if (random.NextDouble() >= P) return;
        for (int r = 0; r < c * h; r++) destination.Slice(r * w, w).Reverse();
    }
}

/// <summary>
/// A random translation (torchvision's RandomAffine(degrees=0, translate=(fx, fy))): shifts the image by
/// a whole number of pixels drawn uniformly from [−fx·W, fx·W] horizontally and [−fy·H, fy·H]
/// vertically (rounded), filling what comes in from outside with <see cref="Fill"/>.
/// </summary>
public sealed class RandomTranslate : ImageTransform
{
    /// <summary>Creates the transform; the fractions are of the image's width and height, in [0, 1].</summary>
    public RandomTranslate(double maxFractionX, double maxFractionY, float fill = 0)
    {
        if (maxFractionX is < 0 or > 1 || maxFractionY is < 0 or > 1)
            throw new ArgumentOutOfRangeException(nameof(maxFractionX), $"RandomTranslate: fractions must be in [0, 1], got ({maxFractionX}, {maxFractionY}).");
        (MaxFractionX, MaxFractionY, Fill) = (maxFractionX, maxFractionY, fill);
    }

    /// <summary>Largest horizontal shift as a fraction of the width.</summary>
    public double MaxFractionX { get; }
    /// <summary>Largest vertical shift as a fraction of the height.</summary>
    public double MaxFractionY { get; }
    /// <summary>Value of the pixels shifted in.</summary>
    public float Fill { get; }

    /// <inheritdoc/>
    public override void Apply(ReadOnlySpan<float> source, Span<float> destination, int c, int h, int w, ref AugmentRandom random)
    {
        double mx = MaxFractionX * w, my = MaxFractionY * h;
        int tx = (int)Math.Round((random.NextDouble() * 2 - 1) * mx), ty = (int)Math.Round((random.NextDouble() * 2 - 1) * my);
        Window(source, destination, c, h, w, h, w, -ty, -tx, Fill);
    }
}

/// <summary>(x − mean[c]) / std[c] per channel (torchvision's Normalize); one value each applies to every channel. Draws nothing.</summary>
public sealed class Normalize : ImageTransform
{
    private readonly float[] _mean, _std;

    /// <summary>Creates the transform.</summary>
    public Normalize(float[] mean, float[] std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Length == 0 || mean.Length != std.Length)
            throw new ArgumentException($"Normalize: give one mean and one std per channel (got {mean.Length} means and {std.Length} stds).");
        if (std.Any(s => !(s > 0) || !float.IsFinite(s))) throw new ArgumentException($"Normalize: every std must be positive, got [{string.Join(", ", std)}].");
        _mean = [.. mean];
        _std = [.. std];
    }

    /// <summary>Per-channel means.</summary>
    public IReadOnlyList<float> Mean => _mean;
    /// <summary>Per-channel standard deviations.</summary>
    public IReadOnlyList<float> Std => _std;

    /// <inheritdoc/>
    public override (int C, int H, int W) OutputShape(int c, int h, int w)
    {
        if (_mean.Length != 1 && _mean.Length != c)
            throw new ArgumentException($"Normalize: {_mean.Length} means and stds for an image of {c} channels.");
        return (c, h, w);
    }

    /// <inheritdoc/>
    public override void Apply(ReadOnlySpan<float> source, Span<float> destination, int c, int h, int w, ref AugmentRandom random)
    {
        int plane = h * w;
        for (int ch = 0; ch < c; ch++)
        {
            int k = _mean.Length == 1 ? 0 : ch;
            float scale = 1 / _std[k], shift = -_mean[k] * scale;
            var s = source.Slice(ch * plane, plane);
            var d = destination.Slice(ch * plane, plane);
            // (x − m)/s as x·(1/s) − m/s: one fused pass
            System.Numerics.Tensors.TensorPrimitives.Multiply(s, scale, d);
            System.Numerics.Tensors.TensorPrimitives.Add(d, shift, d);
        }
    }
}

/// <summary>
/// Another dataset's image samples passed through a pipeline of <see cref="ImageTransform"/>s, in order,
/// as batches are built (the usual place for training-time augmentation). Each sample's random
/// draws come from (<see cref="Seed"/>, epoch, sample index), the epoch being the one the
/// <see cref="DataLoader"/> is building (<see cref="DataLoader.BuildingEpoch"/>), so the same seed
/// gives the same augmented batches with or without prefetching, after a resume, and from
/// <see cref="DataLoader.GetBatch"/>, and every epoch sees fresh augmentations.
/// </summary>
/// <remarks>
/// Inputs must be float32 images [C, H, W], [H, W] (one channel), or flat vectors with
/// <c>imageShape</c> given (MNIST's 784 = 1×28×28). Batches are augmented in place in the source's
/// batch buffer when the pipeline keeps the size (with <c>recycleBatches</c>, a buffer reused every
/// batch), through two per-thread scratch images: a warm batch allocates only the batch's tensor
/// objects. Targets pass through unchanged.
/// </remarks>
public sealed class AugmentedDataset : Dataset
{
    private readonly ImageTransform[] _transforms;
    private readonly (int C, int H, int W)? _imageShape;
    [ThreadStatic] private static float[]? t_a, t_b;

    /// <summary>Creates the dataset.</summary>
    /// <param name="source">The samples.</param>
    /// <param name="seed">Seed of the random transforms.</param>
    /// <param name="transforms">The pipeline, applied in order.</param>
    /// <param name="imageShape">How to read a flat input as an image (null: the input's own [C, H, W] or [H, W] shape).</param>
    public AugmentedDataset(Dataset source, ulong seed, ImageTransform[] transforms, (int C, int H, int W)? imageShape = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(transforms);
        if (transforms.Any(t => t is null)) throw new ArgumentException("AugmentedDataset: a transform is null.", nameof(transforms));
        if (imageShape is { } s && (s.C <= 0 || s.H <= 0 || s.W <= 0))
            throw new ArgumentOutOfRangeException(nameof(imageShape), $"AugmentedDataset: image shape {s} must be positive.");
        Source = source;
        Seed = seed;
        _transforms = [.. transforms];
        _imageShape = imageShape;
        ClassNames = source.ClassNames;
    }

    /// <summary>The unaugmented samples.</summary>
    public Dataset Source { get; }

    /// <summary>Seed of the random transforms.</summary>
    public ulong Seed { get; }

    /// <summary>The pipeline.</summary>
    public IReadOnlyList<ImageTransform> Transforms => _transforms;

    /// <inheritdoc/>
    public override int Count => Source.Count;

    /// <summary>The sample as augmented in epoch <see cref="DataLoader.BuildingEpoch"/> (0 outside a loader).</summary>
    public override (Tensor Input, Tensor Target) this[int index]
    {
        get
        {
            var (x, y) = Source[CheckIndex(index)];
            CheckFloat(x.DType, x.Shape.AsSpan());
            var one = Tensor.HostEmpty(BatchShape(1, x), x.DType);
            CopyRow(x, one, 0);
            return (Augment(one, [index]).Select(0, 0), y);
        }
    }

    /// <inheritdoc/>
    public override Batch GetBatch(ReadOnlySpan<int> indices)
    {
        var batch = Source.GetBatch(indices);
        return new Batch(Augment(batch.Input, indices), batch.Target);
    }

    private static void CheckFloat(DType dtype, ReadOnlySpan<int> sample)
    {
        if (dtype != DType.Float32)
            throw new ArgumentException($"AugmentedDataset: images must be float32, got {dtype.Name()} samples of shape [{string.Join(", ", sample.ToArray())}].");
    }

    /// <summary>Augments the rows of the host batch <paramref name="input"/> [B, ...]: in place when the pipeline keeps the image's shape.</summary>
    private Tensor Augment(Tensor input, ReadOnlySpan<int> indices)
    {
        var sampleShape = input.Shape.AsSpan()[1..].ToArray();
        CheckFloat(input.DType, sampleShape);
        var (c, h, w) = ImageShape(sampleShape);
        var (oc, oh, ow) = (c, h, w);
        int largest = c * h * w;
        foreach (var t in _transforms)
        {
            (oc, oh, ow) = t.OutputShape(oc, oh, ow);
            largest = Math.Max(largest, oc * oh * ow);
        }
        int inSize = c * h * w, outSize = oc * oh * ow, batch = indices.Length;
        bool inPlace = (oc, oh, ow) == (c, h, w);
        var source = input.ContiguousData();
        var output = inPlace ? source : Tensor.HostEmpty([batch, oc, oh, ow], DType.Float32);
        var src = source.Span<float>();
        var dst = output.Span<float>();
        var a = Scratch(ref t_a, largest);
        var b = Scratch(ref t_b, largest);
        int epoch = DataLoader.BuildingEpoch;
        for (int i = 0; i < batch; i++)
        {
            var random = new AugmentRandom(Seed, epoch, indices[i]);
            src.Slice(i * inSize, inSize).CopyTo(a);
            var (cc, hh, ww) = (c, h, w);
            var current = a;
            foreach (var t in _transforms)
            {
                var next = ReferenceEquals(current, a) ? b : a;
                var shape = t.OutputShape(cc, hh, ww);
                t.Apply(current.AsSpan(0, cc * hh * ww), next.AsSpan(0, shape.C * shape.H * shape.W), cc, hh, ww, ref random);
                (cc, hh, ww) = shape;
                current = next;
            }
            current.AsSpan(0, outSize).CopyTo(dst.Slice(i * outSize, outSize));
        }
        if (!inPlace) source._storage.Release(); // the source batch's buffer goes back to the pool
        return output;
    }

    private static float[] Scratch(ref float[]? buffer, int length)
    {
        if (buffer == null || buffer.Length < length) buffer = new float[length];
        return buffer;
    }

    private (int C, int H, int W) ImageShape(int[] sample)
    {
        if (_imageShape is { } s)
        {
            if ((long)s.C * s.H * s.W != sample.Aggregate(1L, (p, d) => p * d))
                throw new ShapeException($"AugmentedDataset: samples of shape [{string.Join(", ", sample)}] cannot be read as images {s.C}x{s.H}x{s.W}.");
            return s;
        }
        return sample.Length switch
        {
            3 => (sample[0], sample[1], sample[2]),
            2 => (1, sample[0], sample[1]),
            _ => throw new ShapeException(
                $"AugmentedDataset: samples of shape [{string.Join(", ", sample)}] are not images [C, H, W] or [H, W]; give imageShape to read flat samples as images."),
        };
    }
}
