using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Backprop.IO;

/// <summary>The tensors and the string metadata of a safetensors file.</summary>
public sealed class SafeTensorsFile
{
    internal SafeTensorsFile(string source, OrderedDictionary<string, Tensor> tensors, Dictionary<string, string> metadata)
    {
        Source = source;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file (or stream name) it was read from.</summary>
    public string Source { get; }

    /// <summary>The tensors by name, in the order of the file's header.</summary>
    public OrderedDictionary<string, Tensor> Tensors { get; }

    /// <summary>The <c>__metadata__</c> entries (string to string; empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
}

/// <summary>
/// Reads and writes the safetensors format (Hugging Face's, also written by PyTorch tools): an
/// 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// <c>{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "value"}}</c>
/// padded with spaces to a multiple of 8, then the raw little-endian tensor data, each tensor's
/// bytes at [begin, end) from the start of the data.
/// </summary>
/// <remarks>
/// The reader checks everything before it allocates tensor memory: the header length against the
/// file length and <see cref="MaxHeaderBytes"/>, the JSON, the dtypes, each shape's byte size
/// against its range, and that the ranges lie inside the file and cover the data exactly, without
/// gaps or overlaps. A malformed file raises <see cref="CheckpointFormatException"/>, which names the
/// file, the tensor and the byte offset. Supported dtypes: F32, F64 and I64 (Backprop's three).
/// </remarks>
public static class SafeTensors
{
    /// <summary>The largest header accepted (bytes), the limit of the reference implementation: anything larger is taken as corrupt.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The key of the string-to-string metadata in the header.</summary>
    public const string MetadataKey = "__metadata__";

    private static readonly string[] OtherKnownDTypes =
        ["F16", "BF16", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"];

    /// <summary>The safetensors name of a dtype: F32, F64, I64 or BOOL.</summary>
    public static string DTypeName(DType dtype) => dtype switch
    {
        DType.Float32 => "F32",
        DType.Float64 => "F64",
        DType.Int64 => "I64",
        DType.Bool => "BOOL",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "SafeTensors: unknown dtype."),
    };

    // ------------------------------------------------------------------ writing

    /// <summary>Writes a safetensors file atomically (see <see cref="AtomicFile"/>): a crash leaves the previous file intact.</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="tensors">Names and tensors, written in this order.</param>
    /// <param name="metadata">String entries for <c>__metadata__</c>, or null for none.</param>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = Checked(tensors);
        AtomicFile.Write(path, s => Write(s, list, metadata));
    }

    /// <summary>Writes the safetensors bytes of <paramref name="tensors"/> to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors as List<KeyValuePair<string, Tensor>> ?? Checked(tensors);
        var header = new ArrayBufferWriter<byte>(256 + 96 * list.Count);
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata)
                {
                    ArgumentNullException.ThrowIfNull(v, $"metadata['{k}']");
                    w.WriteString(k, v);
                }
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in list)
            {
                long bytes = (long)t.NumElements * t.DType.ElementSize();
                w.WriteStartObject(name);
                w.WriteString("dtype", DTypeName(t.DType));
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        // Spaces pad the header so the data starts 8-byte aligned, as the reference writer does.
        int padded = (header.WrittenCount + 7) / 8 * 8;
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
        stream.Write(len);
        stream.Write(header.WrittenSpan);
        for (int i = header.WrittenCount; i < padded; i++) stream.WriteByte((byte)' ');
        foreach (var (_, t) in list) WriteData(stream, t);
        stream.Flush();
    }

    private static List<KeyValuePair<string, Tensor>> Checked(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var list = new List<KeyValuePair<string, Tensor>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, t) in tensors)
        {
            if (string.IsNullOrEmpty(name) || name == MetadataKey)
                throw new ArgumentException($"SafeTensors: invalid tensor name '{name}': names must be non-empty and not '{MetadataKey}'.", nameof(tensors));
            ArgumentNullException.ThrowIfNull(t, $"tensors['{name}']");
            if (!seen.Add(name)) throw new ArgumentException($"SafeTensors: tensor name '{name}' appears twice.", nameof(tensors));
            list.Add(new(name, t));
        }
        return list;
    }

    private static void WriteData(Stream stream, Tensor t)
    {
        if (t.NumElements == 0) return;
        var c = t.ContiguousData();
        ReadOnlySpan<byte> bytes = t.DType switch
        {
            DType.Float32 => MemoryMarshal.AsBytes((ReadOnlySpan<float>)c.Span<float>()),
            DType.Float64 => MemoryMarshal.AsBytes((ReadOnlySpan<double>)c.Span<double>()),
            DType.Bool => MemoryMarshal.AsBytes((ReadOnlySpan<bool>)c.Span<bool>()),
            _ => MemoryMarshal.AsBytes((ReadOnlySpan<long>)c.Span<long>()),
        };
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(bytes);
            return;
        }
        var swapped = bytes.ToArray();
        SwapEndianness(swapped, t.DType.ElementSize());
        stream.Write(swapped);
    }

    private static void SwapEndianness(Span<byte> bytes, int size)
    {
        if (size == 4) BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, uint>(bytes), MemoryMarshal.Cast<byte, uint>(bytes));
        else BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, ulong>(bytes), MemoryMarshal.Cast<byte, ulong>(bytes));
    }

    // ------------------------------------------------------------------ reading

    /// <summary>Reads a safetensors file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The path is a directory, FIFO or device, or the file is not a well-formed safetensors file, or holds a dtype other than F32, F64, I64.</exception>
    public static SafeTensorsFile Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (FileKinds.RefuseToRead(path) is string refused)
            throw new CheckpointFormatException($"safetensors file {Path.GetFullPath(path)} {refused}.", path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"safetensors file not found: {Path.GetFullPath(path)}", path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(file, path);
    }

    /// <summary>Reads safetensors bytes from the current position to the end of a seekable stream; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="CheckpointFormatException">The bytes are not a well-formed safetensors file, or hold a dtype other than F32, F64, I64.</exception>
    public static SafeTensorsFile Read(Stream stream, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(source);
        if (!stream.CanSeek) throw new ArgumentException("SafeTensors.Read: the stream must be seekable (its length bounds the header).", nameof(stream));
        long length = stream.Length - stream.Position;
        if (length < 8)
            throw new CheckpointFormatException(
                $"{source}: truncated: the file has {length} bytes; a safetensors file starts with an 8-byte header length.", source, null, length);
        Span<byte> len = stackalloc byte[8];
        stream.ReadExactly(len);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n > MaxHeaderBytes)
            throw new CheckpointFormatException(
                $"{source}: the header length at byte 0 is {n} bytes, more than the {MaxHeaderBytes} accepted; the file is corrupt or not a safetensors file.", source, null, 0);
        if ((long)n > length - 8)
            throw new CheckpointFormatException(
                $"{source}: truncated or not a safetensors file: the header length at byte 0 is {n} bytes, but only {length - 8} bytes follow.", source, null, 0);
        if (n < 2)
            throw new CheckpointFormatException($"{source}: the header length at byte 0 is {n}; a header is a JSON object of at least 2 bytes.", source, null, 0);

        var header = new byte[n];
        stream.ReadExactly(header);
        var (entries, metadata) = ParseHeader(header, source);
        long dataStart = 8 + (long)n, dataLength = length - dataStart;
        CheckRanges(entries, dataStart, dataLength, source);

        // Everything checked: the tensor memory is at most the file's own data size.
        var tensors = new OrderedDictionary<string, Tensor>(entries.Count, StringComparer.Ordinal);
        foreach (var e in entries) tensors[e.Name] = Tensor.HostEmpty([.. e.Shape], e.DType);
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.End == e.Begin) continue;
            var bytes = Bytes(tensors[e.Name]);
            try
            {
                stream.ReadExactly(bytes);
            }
            catch (EndOfStreamException ex)
            {
                throw new CheckpointFormatException(
                    $"{source}: truncated while reading tensor '{e.Name}' (bytes {dataStart + e.Begin}..{dataStart + e.End}): the file became shorter while it was read.",
                    source, e.Name, dataStart + e.Begin, ex);
            }
            if (!BitConverter.IsLittleEndian) SwapEndianness(bytes, e.DType.ElementSize());
            if (e.DType == DType.Bool)
                foreach (ref byte b in bytes) b = b != 0 ? (byte)1 : (byte)0; // any nonzero byte is true; a .NET bool must be 0 or 1
        }
        return new SafeTensorsFile(source, tensors, metadata);
    }

    private static Span<byte> Bytes(Tensor t) => t.DType switch
    {
        DType.Float32 => MemoryMarshal.AsBytes(t.Span<float>()),
        DType.Float64 => MemoryMarshal.AsBytes(t.Span<double>()),
        DType.Bool => MemoryMarshal.AsBytes(t.Span<bool>()),
        _ => MemoryMarshal.AsBytes(t.Span<long>()),
    };

    private sealed record Entry(string Name, DType DType, int[] Shape, long Begin, long End, long HeaderOffset);

    /// <summary>Parses and checks the JSON header; offsets in messages are file offsets (the header starts at byte 8).</summary>
    private static (List<Entry>, Dictionary<string, string>) ParseHeader(byte[] header, string source)
    {
        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        bool sawMetadata = false;
        var r = new Utf8JsonReader(header, new JsonReaderOptions { MaxDepth = 8, CommentHandling = JsonCommentHandling.Disallow });
        string? key = null;
        try
        {
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
                throw Bad(source, null, 8, "the header is not a JSON object");
            while (true)
            {
                Next(ref r, source, key);
                if (r.TokenType == JsonTokenType.EndObject) break;
                long at = 8 + r.TokenStartIndex;
                key = r.GetString()!;
                if (key == MetadataKey)
                {
                    if (sawMetadata) throw Bad(source, key, at, $"'{MetadataKey}' appears twice in the header");
                    sawMetadata = true;
                    ReadMetadata(ref r, source, metadata);
                    continue;
                }
                if (!names.Add(key)) throw Bad(source, key, at, $"tensor '{key}' appears twice in the header");
                entries.Add(ReadEntry(ref r, source, key, at));
            }
            // Only the padding may follow the object; the reader rejects anything else.
            if (r.Read()) throw Bad(source, null, 8 + r.TokenStartIndex, "unexpected data after the header's JSON object");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            long at = e is JsonException je && je.LineNumber == 0 && je.BytePositionInLine is long p ? 8 + p : 8;
            throw new CheckpointFormatException(
                $"{source}: the header (bytes 8..{8 + header.Length - 1}) is not valid JSON near byte {at}{(key != null ? $", after key '{key}'" : "")}: {FirstSentence(e.Message)}",
                source, key, at, e);
        }
        return (entries, metadata);
    }

    private static void ReadMetadata(ref Utf8JsonReader r, string source, Dictionary<string, string> metadata)
    {
        Next(ref r, source, MetadataKey);
        if (r.TokenType == JsonTokenType.Null) return;
        if (r.TokenType != JsonTokenType.StartObject)
            throw Bad(source, MetadataKey, 8 + r.TokenStartIndex, $"'{MetadataKey}' must be an object of strings, found {Describe(r.TokenType)}");
        while (true)
        {
            Next(ref r, source, MetadataKey);
            if (r.TokenType == JsonTokenType.EndObject) return;
            long at = 8 + r.TokenStartIndex;
            string k = r.GetString()!;
            Next(ref r, source, MetadataKey);
            if (r.TokenType != JsonTokenType.String)
                throw Bad(source, $"{MetadataKey}.{k}", 8 + r.TokenStartIndex, $"metadata entry '{k}' must be a string, found {Describe(r.TokenType)}");
            if (!metadata.TryAdd(k, r.GetString()!)) throw Bad(source, $"{MetadataKey}.{k}", at, $"metadata entry '{k}' appears twice");
        }
    }

    private static Entry ReadEntry(ref Utf8JsonReader r, string source, string name, long at)
    {
        Next(ref r, source, name);
        if (r.TokenType != JsonTokenType.StartObject)
            throw Bad(source, name, 8 + r.TokenStartIndex, $"tensor '{name}' must be an object with dtype, shape and data_offsets, found {Describe(r.TokenType)}");
        string? dtypeName = null;
        List<int>? shape = null;
        long[]? offsets = null;
        while (true)
        {
            Next(ref r, source, name);
            if (r.TokenType == JsonTokenType.EndObject) break;
            long fieldAt = 8 + r.TokenStartIndex;
            string field = r.GetString()!;
            Next(ref r, source, name);
            switch (field)
            {
                case "dtype" when dtypeName == null:
                    if (r.TokenType != JsonTokenType.String) throw Bad(source, name, fieldAt, $"tensor '{name}': dtype must be a string, found {Describe(r.TokenType)}");
                    dtypeName = r.GetString()!;
                    break;
                case "shape" when shape == null:
                    shape = [];
                    foreach (var v in Integers(ref r, source, name, "shape", fieldAt))
                    {
                        if (v > int.MaxValue)
                            throw Bad(source, name, fieldAt, $"tensor '{name}': dimension {shape.Count} of the shape is {v}, larger than the {int.MaxValue} supported");
                        shape.Add((int)v);
                    }
                    break;
                case "data_offsets" when offsets == null:
                    offsets = [.. Integers(ref r, source, name, "data_offsets", fieldAt)];
                    if (offsets.Length != 2)
                        throw Bad(source, name, fieldAt, $"tensor '{name}': data_offsets must be [begin, end], found {offsets.Length} number(s)");
                    break;
                case "dtype" or "shape" or "data_offsets":
                    throw Bad(source, name, fieldAt, $"tensor '{name}': '{field}' appears twice");
                default:
                    throw Bad(source, name, fieldAt, $"tensor '{name}': unknown field '{field}' (expected dtype, shape and data_offsets)");
            }
        }
        if (dtypeName == null || shape == null || offsets == null)
            throw Bad(source, name, at, $"tensor '{name}' lacks {(dtypeName == null ? "dtype" : shape == null ? "shape" : "data_offsets")}");
        DType dtype = dtypeName switch
        {
            "F32" => DType.Float32,
            "F64" => DType.Float64,
            "I64" => DType.Int64,
            "BOOL" => DType.Bool,
            _ => throw Bad(source, name, at, OtherKnownDTypes.Contains(dtypeName)
                ? $"tensor '{name}' has dtype {dtypeName}, which Backprop does not support (it reads F32, F64 and I64)"
                : $"tensor '{name}' has unknown dtype '{dtypeName}' (safetensors dtypes are F32, F64, I64, F16, BF16, I32, ...)"),
        };
        return new Entry(name, dtype, [.. shape], offsets[0], offsets[1], at);
    }

    /// <summary>The non-negative integers of a JSON array (each at most long.MaxValue).</summary>
    private static List<long> Integers(ref Utf8JsonReader r, string source, string name, string field, long at)
    {
        if (r.TokenType != JsonTokenType.StartArray)
            throw Bad(source, name, at, $"tensor '{name}': {field} must be an array of integers, found {Describe(r.TokenType)}");
        var values = new List<long>();
        while (true)
        {
            Next(ref r, source, name);
            if (r.TokenType == JsonTokenType.EndArray) return values;
            if (r.TokenType != JsonTokenType.Number || !r.TryGetInt64(out long v) || v < 0)
                throw Bad(source, name, 8 + r.TokenStartIndex,
                    $"tensor '{name}': {field}[{values.Count}] must be a non-negative integer, found {(r.TokenType == JsonTokenType.Number ? Encoding.UTF8.GetString(r.ValueSpan) : Describe(r.TokenType))}");
            values.Add(v);
        }
    }

    /// <summary>Checks each entry's byte size, then that the ranges tile [0, dataLength) exactly.</summary>
    private static void CheckRanges(List<Entry> entries, long dataStart, long dataLength, string source)
    {
        foreach (var e in entries)
        {
            if (e.Begin > e.End)
                throw Bad(source, e.Name, e.HeaderOffset, $"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] end before they begin");
            long elements = Elements(e.Shape);
            long need = elements > int.MaxValue ? -1 : elements * e.DType.ElementSize();
            if (need < 0)
                throw Bad(source, e.Name, e.HeaderOffset, $"tensor '{e.Name}': shape {Backprop.Shape.Format(e.Shape)} has more than the {int.MaxValue} elements a tensor can hold");
            if (need != e.End - e.Begin)
                throw Bad(source, e.Name, e.HeaderOffset,
                    $"tensor '{e.Name}': shape {Backprop.Shape.Format(e.Shape)} of {SafeTensors.DTypeName(e.DType)} needs {need} bytes, but data_offsets [{e.Begin}, {e.End}] cover {e.End - e.Begin}");
        }
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        foreach (var e in sorted)
            if (e.End > dataLength)
                throw Bad(source, e.Name, dataStart + Math.Min(e.Begin, dataLength),
                    $"truncated: tensor '{e.Name}' occupies bytes {dataStart + e.Begin}..{dataStart + e.End - 1}, but the file ends at byte {dataStart + dataLength}");
        long expected = 0;
        Entry? previous = null;
        foreach (var e in sorted)
        {
            if (e.Begin < expected)
                throw Bad(source, e.Name, dataStart + e.Begin,
                    $"tensor '{e.Name}' (data_offsets [{e.Begin}, {e.End}]) overlaps tensor '{previous!.Name}' (data_offsets [{previous.Begin}, {previous.End}])");
            if (e.Begin > expected)
                throw Bad(source, e.Name, dataStart + expected,
                    $"bytes {dataStart + expected}..{dataStart + e.Begin - 1} belong to no tensor (a gap before tensor '{e.Name}')");
            expected = e.End;
            previous = e;
        }
        if (expected != dataLength)
            throw Bad(source, previous?.Name, dataStart + expected,
                $"{dataLength - expected} bytes of trailing data from byte {dataStart + expected} belong to no tensor; the header and the file disagree");
    }

    /// <summary>The element count, or int.MaxValue + 1 when larger (so it never overflows).</summary>
    private static long Elements(int[] shape)
    {
        if (shape.Contains(0)) return 0;
        long n = 1;
        foreach (var d in shape)
        {
            n *= d;
            if (n > int.MaxValue) return (long)int.MaxValue + 1;
        }
        return n;
    }

    private static void Next(ref Utf8JsonReader r, string source, string? key)
    {
        if (!r.Read()) throw Bad(source, key, 8 + r.BytesConsumed, "the header's JSON ends too early");
    }

    private static string Describe(JsonTokenType t) => t switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => t.ToString(),
    };

    private static string FirstSentence(string message)
    {
        int i = message.IndexOf(". ", StringComparison.Ordinal);
        return (i > 0 ? message[..(i + 1)] : message).ReplaceLineEndings(" ");
    }

    private static CheckpointFormatException Bad(string source, string? key, long offset, string what) =>
        new($"{source}: {what} (byte {offset}).", source, key, offset);
}
