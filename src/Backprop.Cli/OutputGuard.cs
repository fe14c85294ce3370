using System.Text;

namespace Backprop.Cli;

/// <summary>
/// Standard output for the command: a write or flush that fails (a closed pipe, as when the output
/// goes to <c>head</c>; a full disk, as with <c>&gt; /dev/full</c>) becomes an <see cref="OutputFailedException"/>,
/// which <c>Program</c> turns into one line on stderr and exit code <see cref="ExitCode"/>, instead of
/// an <see cref="IOException"/> that a command could take for a failed input file, or a stack trace.
/// </summary>
public sealed class OutputGuard(TextWriter inner) : TextWriter
{
    /// <summary>The exit code when the output could not be written (74, EX_IOERR of sysexits.h).</summary>
    public const int ExitCode = 74;

    /// <inheritdoc/>
    public override Encoding Encoding => inner.Encoding;

    /// <inheritdoc/>
    public override void Write(char value) => Guard(() => inner.Write(value));

    /// <inheritdoc/>
    public override void Write(string? value) => Guard(() => inner.Write(value));

    /// <inheritdoc/>
    public override void Write(char[] buffer, int index, int count) => Guard(() => inner.Write(buffer, index, count));

    /// <inheritdoc/>
    public override void WriteLine(string? value) => Guard(() => inner.WriteLine(value));

    /// <inheritdoc/>
    public override void WriteLine() => Guard(inner.WriteLine);

    /// <inheritdoc/>
    public override void Flush() => Guard(inner.Flush);

    /// <summary>
    /// The command's standard output: guarded when it is redirected (a file, a pipe), where a full
    /// device or a closed pipe can happen; the console's own writer on a terminal, so that the
    /// progress display still recognises the terminal (a terminal that goes away fails otherwise,
    /// and <see cref="IsOutputError"/> catches that too).
    /// </summary>
    public static TextWriter Stdout() => Console.IsOutputRedirected ? new OutputGuard(OpenStdout()) : Console.Out;

    /// <summary>
    /// Standard output as a writer whose writes report a closed pipe: <see cref="Console.Out"/> drops
    /// its writes silently on EPIPE (the output would be lost with exit code 0), so on Unix the
    /// descriptor is written through a <see cref="FileStream"/>, unbuffered, instead.
    /// </summary>
    public static TextWriter OpenStdout()
    {
        if (OperatingSystem.IsWindows()) return Console.Out;
        try
        {
            var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
            return new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), 4096, leaveOpen: true) { AutoFlush = true };
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return Console.Out; // descriptor 1 closed or unusable: the console's writer copes with that
        }
    }

    private static void Guard(Action write)
    {
        try
        {
            write();
        }
        catch (IOException e)
        {
            throw new OutputFailedException(e);
        }
    }

    /// <summary>
    /// True for the errors of writing to a closed pipe or a full device (EPIPE, ENOSPC), also when
    /// they come from a write that did not go through a guard (e.g. straight to <see cref="Console"/>).
    /// </summary>
    public static bool IsOutputError(Exception e) =>
        e is OutputFailedException || (e is IOException io && (io.HResult is 32 or 28 || io.Message.Contains("Broken pipe", StringComparison.Ordinal) ||
            io.Message.Contains("No space left", StringComparison.Ordinal)));

    /// <summary>Tells stderr, in one line, that the output could not be written; returns <see cref="ExitCode"/>.</summary>
    public static int Report(Exception e, TextWriter stderr)
    {
        var cause = e is OutputFailedException { InnerException: { } inner } ? inner : e;
        try
        {
            stderr.WriteLine($"error: cannot write the output: {Cli.OneLine(cause.Message.TrimEnd('.'))}.");
            stderr.Flush();
        }
        catch (IOException)
        {
            // stderr is gone too: the exit code is all that is left.
        }
        return ExitCode;
    }
}

/// <summary>Writing to standard output failed (see <see cref="OutputGuard"/>).</summary>
public sealed class OutputFailedException(IOException inner) : Exception($"cannot write the output: {inner.Message}", inner);
