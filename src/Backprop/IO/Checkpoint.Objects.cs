using Backprop.Data;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.IO;

public static partial class Checkpoint
{
    /// <summary>
    /// Saves a full training checkpoint in one call: the model's weights and buffers (and its Dropout
    /// generators), and whichever of the optimizer's state, the schedule, the loader's position and
    /// other generators are given. <see cref="Load(string, Module, Optimizer?, LrScheduler?, DataLoader?, IEnumerable{KeyValuePair{string, Generator}}?)"/>
    /// restores them. The file is written atomically (a crash leaves the previous one).
    /// </summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="model">The model.</param>
    /// <param name="optimizer">Its optimizer (moments, step counts, learning rates), if any.</param>
    /// <param name="scheduler">The learning-rate schedule, if any.</param>
    /// <param name="loader">The data loader, whose position (epoch, next batch) is saved, if any.</param>
    /// <param name="generators">Other generators to save, by name.</param>
    /// <param name="epoch">Epochs completed; by default the loader's <see cref="DataLoader.Epoch"/> (0 without a loader).</param>
    /// <param name="step">Optimizer steps completed, stored as <see cref="CheckpointContent.Step"/>.</param>
    /// <param name="requireFinite">Refuse (and leave the file as it was) if a saved tensor holds NaN or infinity.</param>
    /// <example>
    /// <code>
    /// Checkpoint.Save("run.ckpt", model, opt, sched, loader);
    /// // later, with the same model, optimizer, schedule and loader built afresh:
    /// Checkpoint.Load("run.ckpt", model, opt, sched, loader);
    /// </code>
    /// </example>
    public static void Save(string path, Module model, Optimizer? optimizer = null, LrScheduler? scheduler = null, DataLoader? loader = null,
        IEnumerable<KeyValuePair<string, Generator>>? generators = null, int? epoch = null, long step = 0, bool requireFinite = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        var content = CheckpointContent.Capture(model, optimizer, scheduler, loader, generators);
        content.Epoch = epoch ?? loader?.Epoch ?? 0;
        ArgumentOutOfRangeException.ThrowIfNegative(content.Epoch, nameof(epoch));
        content.Step = step;
        Save(path, content, requireFinite);
    }

    /// <summary>
    /// Restores a checkpoint written by <see cref="Save(string, Module, Optimizer?, LrScheduler?, DataLoader?, IEnumerable{KeyValuePair{string, Generator}}?, int?, long, bool)"/>
    /// (or from a <see cref="CheckpointContent"/>) into the given objects, all or nothing, and returns
    /// what was read (epoch, step, the caller's extra metadata).
    /// </summary>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    /// <exception cref="CheckpointFormatException">The file is truncated, corrupt, or not a Backprop checkpoint.</exception>
    /// <exception cref="CheckpointMismatchException">The checkpoint does not fit the objects (every problem listed); nothing was changed.</exception>
    public static CheckpointContent Load(string path, Module model, Optimizer? optimizer = null, LrScheduler? scheduler = null, DataLoader? loader = null,
        IEnumerable<KeyValuePair<string, Generator>>? generators = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var content = Load(path);
        content.Restore(model, optimizer, scheduler, loader, generators);
        return content;
    }
}
