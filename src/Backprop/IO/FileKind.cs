using System.Runtime.InteropServices;

namespace Backprop.IO;

/// <summary>What a path names, following symbolic links (see <see cref="FileKinds.Of"/>).</summary>
public enum FileKind
{
    /// <summary>Nothing (or a dangling symbolic link).</summary>
    Missing,
    /// <summary>A regular file: the only kind Backprop reads data from or replaces.</summary>
    Regular,
    /// <summary>A directory.</summary>
    Directory,
    /// <summary>A FIFO (named pipe): reading it would block until a writer comes.</summary>
    Fifo,
    /// <summary>A character device such as <c>/dev/null</c> or a terminal.</summary>
    CharacterDevice,
    /// <summary>A block device such as a disk.</summary>
    BlockDevice,
    /// <summary>A Unix domain socket.</summary>
    Socket,
    /// <summary>Something else the operating system reports.</summary>
    Other,
}

/// <summary>
/// Finds out what a path names without opening it, so that readers can refuse a FIFO (opening one
/// for reading blocks until a writer comes), a device or a directory instead of reading it, and
/// writers can refuse to replace one.
/// </summary>
public static partial class FileKinds
{
    /// <summary>What <paramref name="path"/> names, following symbolic links.</summary>
    public static FileKind Of(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!OperatingSystem.IsWindows())
        {
            int mode = UnixMode(path);
            if (mode >= 0)
                return (mode & 0xF000) switch
                {
                    0x8000 => FileKind.Regular,
                    0x4000 => FileKind.Directory,
                    0x1000 => FileKind.Fifo,
                    0x2000 => FileKind.CharacterDevice,
                    0x6000 => FileKind.BlockDevice,
                    0xC000 => FileKind.Socket,
                    _ => FileKind.Other,
                };
            if (mode == -1) return FileKind.Missing;
        }
        return Directory.Exists(path) ? FileKind.Directory : File.Exists(path) ? FileKind.Regular : FileKind.Missing;
    }

    /// <summary>"a directory", "a FIFO (named pipe)", ...: what to say after "is".</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "missing",
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a directory",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        _ => "not a regular file",
    };

    /// <summary>
    /// Null when <paramref name="path"/> is a regular file or missing (the caller reports a missing
    /// file its own way), otherwise the reason to refuse it: "is a directory, not a file", "is a FIFO
    /// (named pipe), not a regular file; refusing to read it (it could block forever)".
    /// </summary>
    internal static string? RefuseToRead(string path)
    {
        var kind = Of(path);
        return kind switch
        {
            FileKind.Regular or FileKind.Missing => null,
            FileKind.Directory => "is a directory, not a file",
            FileKind.Fifo => "is a FIFO (named pipe), not a regular file; refusing to read it (it could block forever)",
            _ => $"is {Describe(kind)}, not a regular file; refusing to read it",
        };
    }

    /// <summary>The st_mode of <paramref name="path"/> (following links), -1 when it does not exist, -2 when unknown.</summary>
    private static unsafe int UnixMode(string path)
    {
        // The runtime's own native shim (the one File and Directory use): its FileStatus starts with
        // two int32 fields, Flags and Mode, on every Unix; the buffer is larger than the whole struct.
        byte* status = stackalloc byte[512];
        try
        {
            if (Stat(path, status) == 0) return *(int*)(status + 4);
            var error = Marshal.GetLastPInvokeError();
            return error is 2 or 20 ? -1 : -2; // ENOENT, ENOTDIR
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return -2;
        }
    }

    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_Stat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int Stat(string path, byte* status);
}
