using System.Globalization;

namespace Backprop.Cli.Training;

/// <summary>
/// The memory a training run of a model spec needs, estimated before anything is allocated, so that a
/// model too large is refused with one line instead of "Out of memory." and exit code 134.
/// </summary>
public static class MemoryEstimate
{
    /// <summary>
    /// Bytes for parameters, gradients, the optimizer's state (per parameter: 2 for Adam and AdamW, 1
    /// for the others, counted even where momentum is 0), and the activations of one batch (each
    /// layer's output and its gradient, plus a copy for the activation), all float32.
    /// </summary>
    public static long Bytes(ModelSpec spec, string optimizer, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(spec);
        long parameters = 0, activations = 0;
        if (spec.Cnn != null) (parameters, activations) = (spec.Cnn.Parameters, spec.Cnn.ActivationsPerSample * 3);
        else for (int i = 0; i + 1 < spec.Sizes.Length; i++)
        {
            parameters += (long)spec.Sizes[i] * spec.Sizes[i + 1] + spec.Sizes[i + 1];
            activations += (long)spec.Sizes[i + 1] * 3;
        }
        activations += spec.Sizes[0];
        int slots = optimizer is "adam" or "adamw" ? 2 : 1;
        double bytes = 4.0 * ((2 + slots) * (double)parameters + (double)batchSize * activations);
        return bytes >= long.MaxValue ? long.MaxValue : (long)bytes;
    }

    /// <summary>The memory this process may use (<see cref="GCMemoryInfo.TotalAvailableMemoryBytes"/>: the machine's, or a container's or GC heap limit).</summary>
    public static long Available => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>A one-line <see cref="CliException"/> when the estimate exceeds the available memory.</summary>
    public static void Check(ModelSpec spec, string optimizer, int batchSize)
    {
        long need = Bytes(spec, optimizer, batchSize), have = Available;
        if (have <= 0 || need <= have) return;
        throw new CliException($"--model {spec}: training it needs about {GiB(need)} (parameters, gradients, {optimizer} state and the activations of a batch of {batchSize}), " +
            $"more than the {GiB(have)} of memory available; use a smaller model or batch.");
    }

    private static string GiB(long bytes) => bytes >= 1L << 30
        ? (bytes / (double)(1L << 30)).ToString("F1", CultureInfo.InvariantCulture) + " GiB"
        : (bytes / (double)(1L << 20)).ToString("F0", CultureInfo.InvariantCulture) + " MiB";
}
