using System.Runtime.InteropServices;

namespace Backprop.Cli.Training;

/// <summary>
/// SIGINT and SIGTERM during training: the first asks the trainer to stop after the step in progress
/// (<see cref="Trainer.StopRequested"/>, or <see cref="Requested"/> for a loop that polls it, as
/// 'train text' does); a second one ends the process at once with the same exit
/// code (130 for SIGINT, 143 for SIGTERM). Checkpoints are written atomically, so ending in the
/// middle of a save leaves the previous checkpoint in place.
/// </summary>
internal sealed class Interruption : IDisposable
{
    private readonly Action? _onFirst, _onDispose;
    private readonly List<PosixSignalRegistration> _registrations = [];
    private int _signals;

    public Interruption(Trainer trainer) : this(() => trainer.StopRequested = true, () => trainer.StopRequested = false) { }

    /// <param name="onFirst">Runs on the first signal (the loop may also poll <see cref="Requested"/>).</param>
    /// <param name="onDispose">Runs when the handlers are removed.</param>
    public Interruption(Action? onFirst = null, Action? onDispose = null)
    {
        (_onFirst, _onDispose) = (onFirst, onDispose);
        if (OperatingSystem.IsWindows() || OperatingSystem.IsBrowser()) return;
        _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle));
        _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle));
    }

    /// <summary>Whether a signal arrived.</summary>
    public bool Requested => Volatile.Read(ref _signals) > 0;

    /// <summary>The first signal's name, SIGINT or SIGTERM.</summary>
    public string Name { get; private set; } = "";

    /// <summary>128 + the first signal's number: 130 for SIGINT, 143 for SIGTERM.</summary>
    public int ExitCode { get; private set; }

    private void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        int code = context.Signal == PosixSignal.SIGINT ? 130 : 143;
        if (Interlocked.Increment(ref _signals) == 1)
        {
            (Name, ExitCode) = (context.Signal == PosixSignal.SIGINT ? "SIGINT" : "SIGTERM", code);
            _onFirst?.Invoke();
            return;
        }
        // The second signal: out at once, even in the middle of a save (the rename has not happened
        // yet, or it has; either way the checkpoint at the path is whole).
        Console.Error.WriteLine($"error: {(context.Signal == PosixSignal.SIGINT ? "SIGINT" : "SIGTERM")} again: stopped at once; the last checkpoint written is left as it was.");
        Environment.Exit(ExitCode != 0 ? ExitCode : code);
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _onDispose?.Invoke();
    }
}
