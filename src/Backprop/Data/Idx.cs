using System.Buffers.Binary;
using System.IO.Compression;

namespace Backprop.Data;

/// <summary>
/// Reads and writes IDX files, the format of MNIST and Fashion-MNIST: a big-endian header (two zero
/// bytes, a type byte, a dimension count, one int32 per dimension) followed by the data in row-major
/// order. Gzip-compressed files are recognised by their first two bytes (0x1f 0x8b), not by name.
/// </summary>
public static class Idx
{
    /// <summary>The largest data section read (bytes): the most a .NET array can hold.</summary>
    private static readonly long MaxDataBytes = Array.MaxLength;

    // Compressed files are read in growing chunks, so a header that lies about the size costs at most
    // about twice the bytes actually present, never the declared size.
    private const int FirstChunk = 1 << 20;

    /// <summary>Reads an IDX file, plain or gzip-compressed.</summary>
    /// <param name="path">The file.</param>
    /// <param name="limit">Read only the first <paramref name="limit"/> items along the first dimension (the rest of the file is not checked).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">The file is not a well-formed IDX file; the message says what and at which byte.</exception>
    public static IdxFile Read(string path, int? limit = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (limit < 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "Idx.Read: limit must be non-negative.");
        if (IO.FileKinds.RefuseToRead(path) is string refused)
            throw new DataFormatException($"{path}: {refused}; an IDX file must be a regular file.", path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"IDX file not found: {System.IO.Path.GetFullPath(path)}", path);

        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        bool gzip = IsGzip(file);
        using Stream stream = gzip ? new GzipInput(file, path, ownsFile: false) : file;
        string where = gzip ? " of the decompressed data" : "";
        long? length = gzip ? null : file.Length;
        var r = new Reader(stream, path, where);

        var magic = r.ReadHeader(4, "the magic number");
        if (magic[0] != 0 || magic[1] != 0)
            throw new DataFormatException(
                $"{path}: not an IDX file: the magic number at byte 0 is 0x{BinaryPrimitives.ReadUInt32BigEndian(magic):X8}; " +
                "expected two zero bytes, then the type (0x08 for unsigned bytes) and the number of dimensions, e.g. 0x00000803 for images or 0x00000801 for labels.",
                path, 0);
        byte typeByte = magic[2];
        if (!Enum.IsDefined((IdxType)typeByte))
            throw new DataFormatException(
                $"{path}: unsupported IDX element type 0x{typeByte:X2} at byte 2; supported: 0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.",
                path, 2);
        var type = (IdxType)typeByte;
        int rank = magic[3];
        if (rank == 0)
            throw new DataFormatException($"{path}: the IDX header at byte 3 declares 0 dimensions; at least 1 is needed.", path, 3);

        var dimBytes = r.ReadHeader(4 * rank, $"the {rank} dimension sizes");
        var dims = new int[rank];
        long elements = 1;
        for (int i = 0; i < rank; i++)
        {
            int d = BinaryPrimitives.ReadInt32BigEndian(dimBytes.AsSpan(4 * i));
            if (d <= 0)
                throw new DataFormatException($"{path}: dimension {i} at byte {4 + 4 * i} is {d}; IDX dimension sizes must be positive.", path, 4 + 4 * i);
            dims[i] = d;
            // Saturate before multiplying (a product of corrupt sizes overflows long); the check below rejects it anyway.
            elements = elements > long.MaxValue / 16 / d ? long.MaxValue / 16 : elements * d;
        }
        int elementSize = IdxFile.ElementSize(type);
        long header = 4 + 4L * rank;
        long declaredBytes = elements * elementSize;
        if (declaredBytes > MaxDataBytes)
            throw new DataFormatException(
                $"{path}: the header declares dimensions {Shape.Format(dims)} of {type} = {declaredBytes} bytes of data, more than the supported {MaxDataBytes}; the header is probably corrupt.",
                path, 4);
        if (length is long len && len != header + declaredBytes)
        {
            if (len < header + declaredBytes)
                throw Truncated(path, where, header, declaredBytes, len - header, dims);
            if (limit == null)
                throw Trailing(path, where, header + declaredBytes, len - header - declaredBytes);
        }

        long wantedBytes = declaredBytes;
        if (limit is int lim && lim < dims[0])
        {
            wantedBytes = declaredBytes / dims[0] * lim;
            dims[0] = lim;
        }
        var data = r.ReadData(wantedBytes, declaredBytes, header, dims);
        if (wantedBytes == declaredBytes && length == null)
        {
            long extra = r.CountRest();
            if (extra > 0) throw Trailing(path, where, header + declaredBytes, extra);
        }
        return new IdxFile(path, type, dims, data);
    }

    /// <summary>Writes an IDX file (gzip-compressed when <paramref name="gzip"/>); <paramref name="data"/> is stored as given (multi-byte types big-endian).</summary>
    public static void Write(string path, IdxType type, ReadOnlySpan<int> dims, ReadOnlySpan<byte> data, bool gzip = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (dims.Length is 0 or > 255)
            throw new ArgumentException($"Idx.Write: an IDX file has 1 to 255 dimensions, got {dims.Length}.", nameof(dims));
        foreach (var d in dims)
            if (d <= 0) throw new ArgumentException($"Idx.Write: dimension sizes must be positive, got {Shape.Format(dims)}.", nameof(dims));
        long bytes = Shape.Product(dims) * IdxFile.ElementSize(type);
        if (bytes != data.Length)
            throw new ArgumentException($"Idx.Write: dimensions {Shape.Format(dims)} of {type} need {bytes} bytes of data, got {data.Length}.", nameof(data));
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        using Stream s = gzip ? new GZipStream(file, CompressionLevel.Optimal) : file;
        Span<byte> word = stackalloc byte[4];
        word[0] = 0; word[1] = 0; word[2] = (byte)type; word[3] = (byte)dims.Length;
        s.Write(word);
        foreach (var d in dims)
        {
            BinaryPrimitives.WriteInt32BigEndian(word, d);
            s.Write(word);
        }
        s.Write(data);
    }

    /// <summary>True when the stream starts with the gzip magic 0x1f 0x8b; rewinds it.</summary>
    internal static bool IsGzip(FileStream file)
    {
        Span<byte> two = stackalloc byte[2];
        int n = file.ReadAtLeast(two, 2, throwOnEndOfStream: false);
        file.Position = 0;
        return n == 2 && two[0] == 0x1f && two[1] == 0x8b;
    }

    private static DataFormatException Truncated(string path, string where, long header, long expected, long found, int[] dims) =>
        new($"{path}: truncated: the header declares dimensions {Shape.Format(dims)}, {expected} bytes of data from byte {header}, " +
            $"but the data ends after {found} bytes, at byte {header + found}{where} (expected it to end at byte {header + expected}).",
            path, header + found);

    private static DataFormatException Trailing(string path, string where, long end, long extra) =>
        new($"{path}: {extra} bytes of trailing data after the end of the declared data at byte {end}{where}; the header and the file disagree.", path, end);

    /// <summary>Reads the header and data, tracking the byte offset for error messages.</summary>
    private sealed class Reader(Stream stream, string path, string where)
    {
        private long _pos;

        public byte[] ReadHeader(int n, string what)
        {
            var buf = new byte[n];
            int got = Read(buf);
            if (got < n)
                throw new DataFormatException(
                    $"{path}: truncated header: the file ends at byte {_pos}{where}, inside {what} (bytes {_pos - got}..{_pos - got + n - 1}).",
                    path, _pos);
            return buf;
        }

        public byte[] ReadData(long wanted, long declared, long header, int[] dims)
        {
            var buf = new byte[Math.Min(wanted, FirstChunk)];
            long got = 0;
            while (true)
            {
                int n = Read(buf.AsSpan((int)got));
                got += n;
                if (got == wanted) return buf;
                if (n == 0) throw Truncated(path, where, header, declared, got, dims);
                if (got == buf.Length) Array.Resize(ref buf, (int)Math.Min(wanted, 2L * buf.Length));
            }
        }

        public long CountRest()
        {
            var buf = new byte[1 << 16];
            long total = 0;
            int n;
            while ((n = Read(buf)) > 0) total += n;
            return total;
        }

        private int Read(Span<byte> dest)
        {
            try
            {
                int n = stream.ReadAtLeast(dest, dest.Length, throwOnEndOfStream: false);
                _pos += n;
                return n;
            }
            catch (InvalidDataException e)
            {
                throw new DataFormatException($"{path}: corrupt gzip data after byte {_pos}{where}: {e.Message}", path, _pos, innerException: e);
            }
        }
    }
}
