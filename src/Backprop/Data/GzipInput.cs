using System.Buffers.Binary;
using System.IO.Compression;

namespace Backprop.Data;

/// <summary>
/// Decompresses a gzip file and, when the decompressed data has been read to its end, checks that
/// nothing follows the gzip stream: .NET's <see cref="GZipStream"/> silently ignores trailing bytes
/// that do not start another gzip member, which would hide a damaged or concatenated-with-junk file.
/// </summary>
/// <remarks>
/// The check is cheap for the common single-member file: its last four bytes (the gzip trailer's
/// ISIZE) must equal the decompressed size modulo 2^32, and appended bytes move them. When they do
/// not match (several members, or trailing bytes), the members are walked once more, the compressed
/// bytes served to the decompressor one at a time, to find exactly where the last one ends.
/// </remarks>
internal sealed class GzipInput : ReadOnlyStream
{
    private readonly FileStream _file;
    private readonly GZipStream _gzip;
    private readonly string _path;
    private readonly bool _ownsFile;
    private long _total;
    private bool _checked;

    public GzipInput(FileStream file, string path, bool ownsFile)
    {
        _file = file;
        _path = path;
        _ownsFile = ownsFile;
        _gzip = new GZipStream(file, CompressionMode.Decompress, leaveOpen: true);
    }

    public override long Position { get => _total; set => throw new NotSupportedException(); }

    public override int Read(Span<byte> buffer)
    {
        int n = _gzip.Read(buffer);
        _total += n;
        if (n == 0 && buffer.Length > 0 && !_checked)
        {
            _checked = true;
            CheckNothingFollows();
        }
        return n;
    }

    private void CheckNothingFollows()
    {
        long length = _file.Length;
        if (length >= 18)
        {
            Span<byte> isize = stackalloc byte[4];
            if (RandomAccess.Read(_file.SafeFileHandle, isize, length - 4) == 4 &&
                BinaryPrimitives.ReadUInt32LittleEndian(isize) == (uint)_total)
                return;
        }
        long end = EndOfLastMember(length);
        if (end < length)
            throw new DataFormatException(
                $"{_path}: {length - end} bytes of trailing data after the end of the gzip stream at byte {end}; the file is damaged or has junk appended.",
                _path, end);
    }

    /// <summary>
    /// Walks the gzip members (header, deflate data, 8-byte trailer) and returns the offset where the
    /// last one ends: the first offset that neither is the end of the file nor starts another member.
    /// The deflate data is fed to the decompressor one byte at a time, so it consumes exactly its own
    /// bytes (slow, but only for files the quick ISIZE check did not settle).
    /// </summary>
    private long EndOfLastMember(long length)
    {
        using var file = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var input = new OneByteAtATime(file);
        var sink = new byte[1 << 16];
        while (true)
        {
            long start = input.Served;
            int id1 = input.ReadByte(), id2 = input.ReadByte();
            if (start > 0 && (id1 != 0x1f || id2 != 0x8b)) return start;
            if (id1 != 0x1f || id2 != 0x8b || input.ReadByte() != 8) throw Corrupt(start);
            int flags = input.ReadByte();
            for (int i = 0; i < 6; i++) input.ReadByte();                                // MTIME, XFL, OS
            if ((flags & 4) != 0) Skip(input, input.ReadByte() | (input.ReadByte() << 8)); // FEXTRA
            if ((flags & 8) != 0) while (input.ReadByte() is > 0) { }                    // FNAME
            if ((flags & 16) != 0) while (input.ReadByte() is > 0) { }                   // FCOMMENT
            if ((flags & 2) != 0) Skip(input, 2);                                          // FHCRC
            using (var deflate = new DeflateStream(input, CompressionMode.Decompress, leaveOpen: true))
                while (deflate.Read(sink) > 0) { }
            Skip(input, 8);                                                                // CRC32, ISIZE
            if (input.Served > length) throw Corrupt(start);
            if (input.Served == length) return length;
        }
    }

    private static void Skip(Stream s, int n)
    {
        for (int i = 0; i < n; i++) s.ReadByte();
    }

    private DataFormatException Corrupt(long at) =>
        new($"{_path}: corrupt gzip data: the gzip member starting at byte {at} is damaged.", _path, at);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _gzip.Dispose();
            if (_ownsFile) _file.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>Serves its stream's bytes one per read, so that what the decompressor consumed is known exactly.</summary>
    private sealed class OneByteAtATime(Stream inner) : ReadOnlyStream
    {
        public long Served;

        public override long Position { get => Served; set => throw new NotSupportedException(); }

        public override int Read(Span<byte> buffer)
        {
            if (buffer.IsEmpty) return 0;
            int n = inner.Read(buffer[..1]);
            Served += n;
            return n;
        }
    }
}

/// <summary>A forward-only, read-only stream: everything but reading (and the position) is not supported.</summary>
internal abstract class ReadOnlyStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
}
