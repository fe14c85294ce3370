using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Backprop.IO;

/// <summary>
/// Replaces a file so that a reader, or a process killed at any moment, sees either the old
/// contents or the new ones, never a mix: the bytes go to a temporary file beside the target
/// (<c>path.tmp-&lt;pid&gt;-&lt;host&gt;-&lt;random&gt;</c>), are flushed to disk, and the temporary file is then renamed over
/// the target in one step.
/// </summary>
/// <remarks>
/// <para>A symbolic link is followed: its final target is replaced (atomically, beside the target)
/// and the link stays a link. A directory, FIFO, device or socket is refused, never replaced. The
/// file mode of an existing target is kept (600 stays 600).</para>
/// <para>Several writers may write the same path at once: each has its own temporary file (the
/// process id, a host id and random bytes in its name), each finishes, and the last rename wins.
/// After a successful write, the clean-up deletes only temporaries in that exact format that are
/// provably abandoned: left by a process of this host that is no longer running (or by this
/// process, and no longer being written), or older than <see cref="ForeignStaleAfter"/> when they
/// come from another host (a shared file system). Other files whose names merely start with
/// <c>path.tmp-</c> are never touched.</para>
/// <para>For tests only, the environment variable
/// <c>BACKPROP_TEST_SAVE_PAUSE_MS</c> makes each write pause twice, once after the first bytes (the
/// temporary file is then incomplete) and once just before the rename, printing a line that starts
/// with <c>backprop-test-hook:</c> to stderr at each pause, so that a test can kill the process in
/// the middle of a save on purpose. <c>BACKPROP_TEST_SAVE_FULL_AFTER=N</c> makes the N-th save of the
/// process (counting from 1) and every later one fail after its first bytes with ENOSPC, as a full
/// disk would, so that a test can check what a full disk leaves behind.</para>
/// </remarks>
public static partial class AtomicFile
{
    /// <summary>What separates the target's name from the suffix of its temporary files.</summary>
    public const string TempMarker = ".tmp-";

    /// <summary>The test hook's environment variable (milliseconds to pause at each of the two points).</summary>
    public const string PauseVariable = "BACKPROP_TEST_SAVE_PAUSE_MS";

    /// <summary>The full-disk test hook's environment variable (the number of the first save that fails).</summary>
    public const string FullAfterVariable = "BACKPROP_TEST_SAVE_FULL_AFTER";

    private static int _hookedSaves;

    /// <summary>The longest file name (in UTF-8 bytes) a target may have: 255, the usual limit, less the temporary suffix.</summary>
    public const int MaxNameBytes = 255 - MaxSuffixLength;

    // ".tmp-" + pid (at most 10 digits) + "-" + 8 hex (host) + "-" + 12 hex (random)
    private const int MaxSuffixLength = 5 + 10 + 1 + 8 + 1 + 12;

    /// <summary>How old a temporary file from another host (or another boot of this one) must be before the clean-up deletes it.</summary>
    public static readonly TimeSpan ForeignStaleAfter = TimeSpan.FromHours(24);

    private static readonly ConcurrentDictionary<string, byte> InProgress = new(StringComparer.Ordinal);
    private static readonly Lazy<string> LocalHost = new(HostId);

    /// <summary>The host id in this process's temporary names (for tests).</summary>
    internal static string LocalHostId => LocalHost.Value;

    /// <summary>Writes <paramref name="path"/> atomically with the bytes <paramref name="write"/> puts in the stream it is given.</summary>
    /// <exception cref="IOException">The path cannot be written (<see cref="ValidateTarget"/> says why: a directory, a FIFO, a device, a name too long, a folder that cannot be written), or the file system refused a step; the target is then unchanged.</exception>
    public static void Write(string path, Action<Stream> write) => WriteCore(path, write, testHook: true);

    /// <summary>
    /// Copies <paramref name="source"/> to <paramref name="path"/> atomically, like <see cref="Write"/>
    /// (used to keep older checkpoints beside the newest; the test hook does not pause it).
    /// </summary>
    /// <exception cref="IOException">The source cannot be read or the path cannot be written; the target is then unchanged.</exception>
    public static void Copy(string source, string path)
    {
        ArgumentNullException.ThrowIfNull(source);
        WriteCore(path, s =>
        {
            using var from = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            from.CopyTo(s);
        }, testHook: false);
    }

    private static void WriteCore(string path, Action<Stream> write, bool testHook)
    {
        ArgumentNullException.ThrowIfNull(write);
        string target = ValidateTarget(path);
        string dir = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(dir);
        string tmp = NewTemporary(target);
        int pause = testHook ? PauseMilliseconds() : 0;
        bool full = testHook && FullAfter() is int n and > 0 && Interlocked.Increment(ref _hookedSaves) >= n;
        InProgress[tmp] = 0;
        try
        {
            using (var file = CreateTemporary(path, tmp))
            {
                KeepMode(target, file);
                write(full || pause > 0 ? new HookStream(file, pause, full, tmp) : file);
                // Flush(true) reaches the disk (fsync), so the rename below never publishes a file
                // whose blocks were not written yet.
                file.Flush(flushToDisk: true);
            }
            if (pause > 0) Pause(pause, "before rename", tmp);
            File.Move(tmp, target, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
        finally
        {
            InProgress.TryRemove(tmp, out _);
        }
        CleanStaleTemporaries(target);
    }

    /// <summary>
    /// Checks that <paramref name="path"/> can be written by <see cref="Write"/> before any work is
    /// done: the file name is not too long (<see cref="MaxNameBytes"/>), the target (after following
    /// symbolic links) is a regular file or absent, and its folder exists or can be created and
    /// accepts new files (a probe temporary file is created and deleted). Returns the full path of
    /// the file that will be replaced (the final target of a link).
    /// </summary>
    /// <exception cref="IOException">The path cannot be written; the message names it and says why.</exception>
    public static string ValidatePath(string path)
    {
        string target = ValidateTarget(path);
        string dir = Path.GetDirectoryName(target)!;
        try
        {
            Directory.CreateDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new IOException($"{path}: cannot create its folder {dir}: {e.Message}", e);
        }
        string probe = NewTemporary(target);
        InProgress[probe] = 0;
        try
        {
            using (CreateTemporary(path, probe)) { }
        }
        finally
        {
            TryDelete(probe);
            InProgress.TryRemove(probe, out _);
        }
        return target;
    }

    /// <summary>The full path of the file a write of <paramref name="path"/> replaces, after the checks that need no writing.</summary>
    private static string ValidateTarget(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new IOException($"{path}: not a valid path: {e.Message}", e);
        }
        string target = full;
        try
        {
            // A link is followed to its final target, which is then replaced; the link itself stays.
            if (new FileInfo(full).LinkTarget != null)
                target = File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName ?? full;
        }
        catch (IOException e)
        {
            throw new IOException($"{path}: cannot follow the symbolic link: {e.Message}", e);
        }
        var kind = FileKinds.Of(target);
        if (kind == FileKind.Directory)
            throw new IOException($"{path}: is a directory; cannot write a file there.");
        if (kind is not (FileKind.Regular or FileKind.Missing))
            throw new IOException($"{path}: is {FileKinds.Describe(kind)}, not a regular file; refusing to replace it.");
        string name = Path.GetFileName(target);
        if (name.Length == 0 || Path.GetDirectoryName(target) == null)
            throw new IOException($"{path}: has no file name.");
        int bytes = Encoding.UTF8.GetByteCount(name);
        if (bytes > MaxNameBytes)
            throw new IOException(
                $"{path}: the file name is {bytes} bytes long; at most {MaxNameBytes} are allowed (file systems allow 255, and the temporary file written beside it adds up to {MaxSuffixLength}).");
        return target;
    }

    private static FileStream CreateTemporary(string path, string tmp)
    {
        try
        {
            return new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Named after the path the caller gave, not the temporary file it never asked for.
            throw new IOException($"{path}: cannot write a file in {Path.GetDirectoryName(tmp)}: {e.Message.Replace(tmp, "(its temporary file)", StringComparison.Ordinal)}", e);
        }
    }

    /// <summary>Gives the temporary file the mode of the file it replaces, so that a save keeps 600 at 600.</summary>
    private static void KeepMode(string target, FileStream tmp)
    {
        if (OperatingSystem.IsWindows()) return;
        UnixFileMode mode;
        try
        {
            mode = File.GetUnixFileMode(target);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return;
        }
        File.SetUnixFileMode(tmp.SafeFileHandle, mode);
    }

    private static string NewTemporary(string target) =>
        target + TempMarker + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "-" + LocalHost.Value + "-" +
        Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    /// <summary>Deletes the temporaries of <paramref name="path"/> that are provably abandoned (see the remarks on <see cref="AtomicFile"/>); returns how many.</summary>
    public static int CleanStaleTemporaries(string path)
    {
        int n = 0;
        foreach (var tmp in StaleTemporaries(path))
            if (IsAbandoned(tmp) && TryDelete(tmp)) n++;
        return n;
    }

    /// <summary>
    /// The temporary files of <paramref name="path"/> that exist now, in <see cref="Write"/>'s name
    /// format: left by interrupted writes, or by writes in progress (in this or another process).
    /// </summary>
    public static IReadOnlyList<string> StaleTemporaries(string path)
    {
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (dir == null || !Directory.Exists(dir)) return [];
        string prefix = Path.GetFileName(full) + TempMarker;
        return [.. Directory.EnumerateFiles(dir, prefix + "*")
            .Where(f => Path.GetFileName(f).StartsWith(prefix, StringComparison.Ordinal) && Parse(f, prefix.Length) != null)];
    }

    /// <summary>True when <paramref name="tmp"/> (a temporary in <see cref="Write"/>'s format) can no longer be written by anyone.</summary>
    internal static bool IsAbandoned(string tmp)
    {
        if (InProgress.ContainsKey(tmp)) return false;
        string name = Path.GetFileName(tmp);
        int marker = name.LastIndexOf(TempMarker, StringComparison.Ordinal);
        if (marker < 0 || Parse(tmp, marker + TempMarker.Length) is not var (pid, host)) return false;
        if (host == LocalHost.Value)
            return pid == Environment.ProcessId || !ProcessAlive(pid); // ours and not in progress, or its writer is gone
        try
        {
            return DateTime.UtcNow - File.GetLastWriteTimeUtc(tmp) > ForeignStaleAfter;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The pid and host id of a temporary's name, whose suffix starts at <paramref name="start"/> of its file name; null if not in the format.</summary>
    private static (int Pid, string Host)? Parse(string tmp, int start)
    {
        var m = SuffixPattern().Match(Path.GetFileName(tmp), start);
        return m.Success && m.Index == start && int.TryParse(m.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
            ? (pid, m.Groups[2].Value) : null;
    }

    [GeneratedRegex(@"\G([0-9]{1,10})-([0-9a-f]{8})-[0-9a-f]{12}\z", RegexOptions.CultureInvariant)]
    private static partial Regex SuffixPattern();

    /// <summary>Whether a process with this id runs on this host (true when that cannot be told: then nothing is deleted).</summary>
    private static bool ProcessAlive(int pid)
    {
        if (pid <= 0) return false;
        if (OperatingSystem.IsLinux()) return Directory.Exists("/proc/" + pid.ToString(CultureInfo.InvariantCulture)) || !Directory.Exists("/proc/self");
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or System.ComponentModel.Win32Exception)
        {
            return true;
        }
    }

    /// <summary>
    /// 8 hex digits naming this boot of this host and this process-id namespace, so that a process id
    /// in a temporary's name is only checked where it means the same process (on Linux from the boot
    /// id and the pid namespace, elsewhere from the machine name).
    /// </summary>
    private static string HostId()
    {
        string id = Environment.MachineName;
        if (OperatingSystem.IsLinux())
        {
            try
            {
                id = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim() + "|" +
                    (new FileInfo("/proc/self/ns/pid").LinkTarget ?? "") + "|" + id;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        uint h = 2166136261; // FNV-1a: stable across processes and runs, unlike string.GetHashCode
        foreach (byte b in Encoding.UTF8.GetBytes(id)) h = (h ^ b) * 16777619;
        return h.ToString("x8", CultureInfo.InvariantCulture);
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

    private static int FullAfter()
    {
        var v = Environment.GetEnvironmentVariable(FullAfterVariable);
        return int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 0;
    }

    private static void Pause(int ms, string where, string tmp)
    {
        Console.Error.WriteLine($"backprop-test-hook: save paused {where}: {tmp}");
        Console.Error.Flush();
        Thread.Sleep(ms);
    }

    /// <summary>
    /// The test hooks' stream: the first write reaches the file (flushed to the OS, so a kill now leaves a
    /// temporary file with only these bytes); then it pauses once, or, for the full-disk hook, every
    /// later write fails with ENOSPC.
    /// </summary>
    private sealed class HookStream(FileStream inner, int pauseMs, bool full, string tmp) : Stream
    {
        private bool _wrote;

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
            if (_wrote && full) throw new IOException($"No space left on device : '{inner.Name}'", 28);
            inner.Write(buffer);
            if (_wrote) return;
            _wrote = true;
            inner.Flush();
            if (!full) Pause(pauseMs, "mid-write", tmp);
        }
    }
}
