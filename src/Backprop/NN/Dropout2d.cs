namespace Backprop.NN;

/// <summary>
/// Channel dropout (torch.nn.Dropout2d): in training zeroes whole channels of [N, C, H, W] (or
/// [C, H, W]) with probability p and scales the others by 1/(1 − p); in evaluation the identity.
/// Its masks come from its own seeded generator, like <see cref="Dropout"/>.
/// </summary>
public sealed class Dropout2d : Module
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

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.Dropout2d(input, P, Training, _generator);

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
}
