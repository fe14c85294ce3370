using System.Buffers.Binary;

namespace Backprop.Plot.TensorBoard;

/// <summary>
/// TFRecord framing, the container of TensorBoard event files: each record is its length (u64,
/// little-endian), the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data.
/// </summary>
public static class RecordWriter
{
    /// <summary>Appends one framed record to <paramref name="output"/>.</summary>
    public static void Write(Stream output, ReadOnlySpan<byte> data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.Masked(header[..8]));
        output.Write(header);
        output.Write(data);
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32C.Masked(data));
        output.Write(footer);
    }

    /// <summary>
    /// Reads the records of a framed file back, checking both CRCs; throws <see cref="InvalidDataException"/>
    /// naming the record and offset where the framing is wrong.
    /// </summary>
    public static List<byte[]> ReadAll(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var records = new List<byte[]>();
        int pos = 0;
        while (pos < bytes.Length)
        {
            if (bytes.Length - pos < 12) throw new InvalidDataException($"{path}: record {records.Count} at byte {pos}: truncated header.");
            ulong len = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(pos));
            uint lenCrc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 8));
            if (lenCrc != Crc32C.Masked(bytes.AsSpan(pos, 8)))
                throw new InvalidDataException($"{path}: record {records.Count} at byte {pos}: the length's CRC does not match.");
            if (len > (ulong)(bytes.Length - pos - 16)) throw new InvalidDataException($"{path}: record {records.Count} at byte {pos}: length {len} runs past the end.");
            var data = bytes.AsSpan(pos + 12, (int)len);
            uint dataCrc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 12 + (int)len));
            if (dataCrc != Crc32C.Masked(data))
                throw new InvalidDataException($"{path}: record {records.Count} at byte {pos}: the data's CRC does not match.");
            records.Add(data.ToArray());
            pos += 16 + (int)len;
        }
        return records;
    }
}
