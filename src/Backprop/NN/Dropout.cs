namespace Backprop.NN;

/// <summary>
/// In training mode zeroes each element with probability p and scales the rest by 1/(1 − p), so
/// evaluation needs no rescaling; in evaluation mode it is the identity. Its random mask comes from
/// its own seeded generator, or, once attached to a <see cref="SampleMasks"/> stream, from the global
/// index of each sample.
/// </summary>
public sealed class Dropout : Module, IPerSampleDropout
{
    private readonly Generator _generator;

    /// <summary>Probability of zeroing an element.</summary>
    public double P { get; }

    /// <summary>Creates the layer; the generator defaults to one seeded from <see cref="Generator.Default"/>.</summary>
    public Dropout(double p = 0.5, Generator? generator = null)
    {
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout: probability must be in [0, 1].");
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
        if (_slot is null || !Training || P == 0) return Functional.Dropout(input, P, Training, _generator);
        return Functional.DropoutPerSample(input, P, _slot.NextKey(), _slot.FirstSample);
    }

    /// <inheritdoc/>
    protected override string ExtraRepr() => $"p={P}";
}
