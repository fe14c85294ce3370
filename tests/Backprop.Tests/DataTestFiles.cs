using System.Buffers.Binary;
using System.IO.Compression;

namespace Backprop.Tests;

/// <summary>The shared datasets beside the repository, and scratch files for the data tests.</summary>
internal static class DataTestFiles
{
    private static readonly Lazy<string> SharedDir = new(FindShared);

    /// <summary>The repository root: the first directory above the test binaries holding Backprop.slnx.</summary>
    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Backprop.slnx"))) return d.FullName;
            throw new InvalidOperationException($"Data tests: no Backprop.slnx found in {AppContext.BaseDirectory} or any directory above it.");
        }
    }

    private static string FindShared()
    {
        string dir = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "data"));
        // Fail loudly: a silently skipped data test would hide a broken checkout or CI set-up.
        if (!Directory.Exists(dir))
            throw new InvalidOperationException(
                $"Data tests need the shared datasets at {dir} (the 'shared' folder beside the repository, see shared/data/README.md); it is missing.");
        return dir;
    }

    /// <summary>A file or directory under shared/data; fails with a clear message if it is missing.</summary>
    public static string Shared(params string[] parts)
    {
        string p = Path.Combine([SharedDir.Value, .. parts]);
        if (!File.Exists(p) && !Directory.Exists(p))
            throw new InvalidOperationException($"Data tests: shared dataset file {p} is missing (see shared/data/README.md).");
        return p;
    }

    /// <summary>The bytes of an IDX file with the given magic bytes, dimensions and data.</summary>
    public static byte[] IdxBytes(byte type, int[] dims, byte[] data, byte? rank = null)
    {
        var b = new byte[4 + 4 * dims.Length + data.Length];
        b[2] = type;
        b[3] = rank ?? (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * i), dims[i]);
        data.CopyTo(b, 4 + 4 * dims.Length);
        return b;
    }

    public static byte[] Gzip(byte[] raw)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(raw);
        return ms.ToArray();
    }

    public static byte[] Gunzip(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }
}

/// <summary>A fresh temporary directory, deleted on dispose.</summary>
internal sealed class DataTempDir : IDisposable
{
    public DataTempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "backprop-data-" + Guid.NewGuid().ToString("N"));

    public string File(string name, byte[] content)
    {
        string p = System.IO.Path.Combine(Path, name);
        System.IO.File.WriteAllBytes(p, content);
        return p;
    }

    public string Text(string name, string content) => File(name, System.Text.Encoding.UTF8.GetBytes(content));

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
