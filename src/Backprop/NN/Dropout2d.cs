namespace Backprop.NN;

/// <summary>
/// Channel dropout (torch.nn.Dropout2d): in training zeroes whole channels of [N, C, H, W] (or
/// [C, H, W]) with probability p and scales the others by 1/(1 − p); in evaluation the identity.
/// Its masks come from its own seeded generator, or, once attached to a <see cref="SampleMasks"/> stream,
/// from the global index of each sample, like <see cref="Dropout"/>.
/// </summary>
public sealed class Dropout2d : Module, IPerSampleDropout
{
    private readonly Generator _generator;

    /// <summary>Probability of zeroing a channel.</summary>
    public double P { get; }

    /// <summary>Creates the layer; the generator defaults to one seeded from <see cref="Generator.Default"/>.</summary>
    public Dropout2d(double p = 0.5, Generator? generator = null)
    {
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout2d: probability must be in [0, 1].");
        P = p;
        _generator = generator ?? new Generator(Generator.Default.NextUInt64());
    }

    /// <summary>The generator that draws the masks (its state belongs in checkpoints).</summary>
    public Generator Generator => _generator;

    private SampleMaskSlot? _slot;

    /// <summary>The per-sample mask stream this layer draws from (<see cref="SampleMasks.Attach"/>), or null: the layer's own generator.</summary>
    public SampleMasks? Masks => _slot?.Masks;

    void IPerSampleDropout.UsePerSampleMasks(SampleMaskSlot slot) => _slot = slot;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        if (_slot is null || !Training || P == 0) return Functional.Dropout2d(input, P, Training, _generator);
        return Functional.Dropout2dPerSample(input, P, _slot.NextKey(), _slot.FirstSample);
    }

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"p={P}";
}

public static partial class Functional
{
    /// <summary>
    /// Channel dropout: in training, zeroes each channel of x [N, C, H, W] (or [C, H, W]) with
    /// probability p, one draw per (sample, channel) from <paramref name="generator"/>, and scales the
    /// rest by 1/(1 − p); otherwise returns x. Backward multiplies by the same mask.
    /// </summary>
    public static Tensor Dropout2d(Tensor x, double p, bool training, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout2d: probability must be in [0, 1].");
        if (x.Rank is not (3 or 4)) throw new ShapeException($"Dropout2d: expected a 4-D input [N, C, H, W] or a 3-D input [C, H, W], got {x.Shape}.");
        if (!x.DType.IsFloatingPoint()) throw Dispatch.NotFloat("Dropout2d", x);
        if (!training || p == 0) return x;
        var g = generator ?? Generator.Default;
        int[] maskShape = x.Rank == 4 ? [x.Size(0), x.Size(1), 1, 1] : [x.Size(0), 1, 1];
        var mask = Tensor.Empty(maskShape, x.DType, x.Backend);
        double scale = p == 1 ? 0 : 1 / (1 - p);
        // drawn on the host in a reused buffer (one draw per channel, in row-major order), then copied to the mask's device
        if (x.DType == DType.Float32)
        {
            var m = HostScratch<float>.Get(mask.NumElements);
            for (int i = 0; i < m.Length; i++) m[i] = g.NextDouble() < p ? 0f : (float)scale;
            mask.Backend.Upload<float>(m, mask.V);
        }
        else
        {
            var m = HostScratch<double>.Get(mask.NumElements);
            for (int i = 0; i < m.Length; i++) m[i] = g.NextDouble() < p ? 0 : scale;
            mask.Backend.Upload<double>(m, mask.V);
        }
        return x * mask; // not scratch: a createGraph backward keeps reading the mask
    }

    /// <summary>
    /// Channel dropout in training whose channel mask for sample i (row i of x [N, C, H, W]) is drawn from
    /// a generator seeded with (<paramref name="key"/>, <paramref name="firstSample"/> + i), so each
    /// sample's mask depends on its global index, not on the rows around it (<see cref="SampleMasks"/>);
    /// a 3-D x [C, H, W] is one sample, number <paramref name="firstSample"/>.
    /// </summary>
    public static Tensor Dropout2dPerSample(Tensor x, double p, ulong key, long firstSample)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout2d: probability must be in [0, 1].");
        if (x.Rank is not (3 or 4)) throw new ShapeException($"Dropout2d: expected a 4-D input [N, C, H, W] or a 3-D input [C, H, W], got {x.Shape}.");
        if (!x.DType.IsFloatingPoint()) throw Dispatch.NotFloat("Dropout2d", x);
        if (p == 0) return x;
        int rows = x.Rank == 4 ? x.Size(0) : 1, channels = x.Size(x.Rank - 3);
        int[] maskShape = x.Rank == 4 ? [rows, channels, 1, 1] : [channels, 1, 1];
        var mask = Tensor.Empty(maskShape, x.DType, x.Backend);
        double scale = p == 1 ? 0 : 1 / (1 - p);
        if (x.DType == DType.Float32)
        {
            var m = HostScratch<float>.Get(mask.NumElements);
            for (int r = 0; r < rows; r++)
            {
                var g = new Generator(SampleMasks.Mix(key ^ SampleMasks.Mix((ulong)(firstSample + r))));
                for (int c = r * channels; c < (r + 1) * channels; c++) m[c] = g.NextDouble() < p ? 0f : (float)scale;
            }
            mask.Backend.Upload<float>(m, mask.V);
        }
        else
        {
            var m = HostScratch<double>.Get(mask.NumElements);
            for (int r = 0; r < rows; r++)
            {
                var g = new Generator(SampleMasks.Mix(key ^ SampleMasks.Mix((ulong)(firstSample + r))));
                for (int c = r * channels; c < (r + 1) * channels; c++) m[c] = g.NextDouble() < p ? 0 : scale;
            }
            mask.Backend.Upload<double>(m, mask.V);
        }
        return x * mask; // not scratch: a createGraph backward keeps reading the mask
    }
}
