namespace Backprop.NN;

/// <summary>
/// Dropout masks drawn per sample from (seed, layer, step, the sample's index in the global batch),
/// shared by the <see cref="Dropout"/> layers of a model (<see cref="Attach"/>). A sample's mask then
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

    /// <summary>Makes every <see cref="Dropout"/> layer of <paramref name="model"/> draw its masks from this stream (layers numbered in module order); returns how many.</summary>
    public int Attach(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        int k = 0;
        foreach (var (_, m) in model.NamedModules())
            if (m is Dropout d) d.UsePerSampleMasks(this, k++);
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
