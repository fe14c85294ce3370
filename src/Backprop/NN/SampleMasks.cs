namespace Backprop.NN;

/// <summary>
/// Dropout masks drawn per sample from (seed, layer, step, the sample's index in the global batch),
/// shared by the layers of a model that drop out (<see cref="Dropout"/>, <see cref="Dropout2d"/>, the attention
/// dropout of <see cref="MultiHeadAttention"/>, the dropout between the layers of <see cref="Rnn"/>,
/// <see cref="Lstm"/> and <see cref="Gru"/>; <see cref="Attach"/>). A sample's mask then
/// does not depend on which process computes it or on how the batch is split, so data-parallel
/// training with dropout on N ranks draws the same masks as one process (the run depends on N only
/// through the summation order of the gradients). The trainer sets <see cref="Step"/> and
/// <see cref="FirstSample"/> (this process's first sample's index in the global batch) before each
/// forward pass.
/// </summary>
public sealed class SampleMasks(ulong seed)
{
    /// <summary>The run's seed.</summary>
    public ulong Seed { get; } = seed;

    /// <summary>The training step (the same on every rank).</summary>
    public long Step { get; set; }

    /// <summary>The index, in the global batch, of the first sample of the batch this process computes.</summary>
    public long FirstSample { get; set; }

    /// <summary>
    /// Makes every layer of <paramref name="model"/> that drops out (<see cref="Dropout"/>, <see cref="Dropout2d"/>,
    /// <see cref="MultiHeadAttention"/>, the recurrent layers) draw its masks from this stream (layers numbered
    /// in module order); returns how many.
    /// </summary>
    public int Attach(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        int k = 0;
        foreach (var (_, m) in model.NamedModules())
            if (m is IPerSampleDropout d) d.UsePerSampleMasks(new SampleMaskSlot(this, k++));
        return k;
    }

    /// <summary>SplitMix64's finalizer: a well-mixed 64-bit hash.</summary>
    internal static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The key of one layer's call in the current step (the sample index is mixed in per row).</summary>
    internal ulong Key(int layer, int call) =>
        Mix(Mix(Mix(Mix(Seed ^ 0x6A09E667F3BCC909UL) ^ (ulong)layer) ^ (ulong)Step) ^ (ulong)call);
}

/// <summary>A layer whose dropout masks can come from a <see cref="SampleMasks"/> stream.</summary>
internal interface IPerSampleDropout
{
    /// <summary>Draws the layer's masks from <paramref name="slot"/> from now on.</summary>
    void UsePerSampleMasks(SampleMaskSlot slot);
}

/// <summary>
/// One layer's place in a <see cref="SampleMasks"/> stream: each call of the layer within a step gets its
/// own key (a layer applied twice per forward pass, like a transformer block's residual dropout, draws
/// two independent masks), counted from 0 again at every step.
/// </summary>
internal sealed class SampleMaskSlot(SampleMasks masks, int layer)
{
    private int _calls;
    private long _step = -1;

    /// <summary>The stream.</summary>
    public SampleMasks Masks => masks;

    /// <summary>The key of this layer's next call in the current step.</summary>
    public ulong NextKey()
    {
        if (_step != masks.Step) (_step, _calls) = (masks.Step, 0);
        return masks.Key(layer, _calls++);
    }

    /// <summary>The global index of this process's first sample (row 0 of the batch it computes).</summary>
    public long FirstSample => masks.FirstSample;
}
