using System.Globalization;
using System.Security.Cryptography;

namespace Backprop.IO;

/// <summary>
/// Replaces a file so that a reader, or a process killed at any moment, sees either the old
/// contents or the new ones, never a mix: the bytes go to a temporary file beside the target
/// (<c>path.tmp-&lt;random&gt;</c>), are flushed to disk, and the temporary file is then renamed over
/// the target in one step.
/// </summary>
/// <remarks>
/// One writer per path: temporary files left by an earlier writer that was killed are deleted after
/// the next successful write. For tests only, the environment variable
/// <c>BACKPROP_TEST_SAVE_PAUSE_MS</c> makes each write pause twice, once after the first bytes (the
/// temporary file is then incomplete) and once just before the rename, printing a line that starts
/// with <c>backprop-test-hook:</c> to stderr at each pause, so that a test can kill the process in
/// the middle of a save on purpose.
/// </remarks>
public static class AtomicFile
{
    /// <summary>What separates the target's name from the random suffix of its temporary files.</summary>
    public const string TempMarker = ".tmp-";

    /// <summary>The test hook's environment variable (milliseconds to pause at each of the two points).</summary>
    public const string PauseVariable = "BACKPROP_TEST_SAVE_PAUSE_MS";

    /// <summary>Writes <paramref name="path"/> atomically with the bytes <paramref name="write"/> puts in the stream it is given.</summary>
    /// <exception cref="IOException">The target is a directory, or the file system refused a step; the target is then unchanged.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new IOException($"{path}: is a directory; cannot write a file there.");
        string dir = Path.GetDirectoryName(full) ?? throw new IOException($"{path}: has no parent directory.");
        Directory.CreateDirectory(dir);
        string tmp = full + TempMarker + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        int pause = PauseMilliseconds();
        try
        {
            using (var file = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(pause > 0 ? new PausingStream(file, pause, tmp) : file);
                // Flush(true) reaches the disk (fsync), so the rename below never publishes a file
                // whose blocks were not written yet.
                file.Flush(flushToDisk: true);
            }
            if (pause > 0) Pause(pause, "before rename", tmp);
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
        CleanStaleTemporaries(path);
    }

    /// <summary>Deletes the temporary files that interrupted writes of <paramref name="path"/> left behind; returns how many.</summary>
    public static int CleanStaleTemporaries(string path)
    {
        int n = 0;
        foreach (var stale in StaleTemporaries(path))
            if (TryDelete(stale)) n++;
        return n;
    }

    /// <summary>The temporary files of <paramref name="path"/> that exist now (left by interrupted writes, or by one in progress).</summary>
    public static IReadOnlyList<string> StaleTemporaries(string path)
    {
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (dir == null || !Directory.Exists(dir)) return [];
        string prefix = Path.GetFileName(full) + TempMarker;
        return [.. Directory.EnumerateFiles(dir, prefix + "*").Where(f => Path.GetFileName(f).StartsWith(prefix, StringComparison.Ordinal))];
    }

    private static bool TryDelete(string file)
    {
        try
        {
            File.Delete(file);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static int PauseMilliseconds()
    {
        var v = Environment.GetEnvironmentVariable(PauseVariable);
        return int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int ms) ? ms : 0;
    }

    private static void Pause(int ms, string where, string tmp)
    {
        Console.Error.WriteLine($"backprop-test-hook: save paused {where}: {tmp}");
        Console.Error.Flush();
        Thread.Sleep(ms);
    }

    /// <summary>The test hook's stream: after the first write reaches the file, it pauses once.</summary>
    private sealed class PausingStream(FileStream inner, int ms, string tmp) : Stream
    {
        private bool _paused;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            if (_paused) return;
            _paused = true;
            inner.Flush(); // to the OS, so a kill now leaves a temporary file with only these bytes
            Pause(ms, "mid-write", tmp);
        }
    }
}
