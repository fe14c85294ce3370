using System.Buffers.Binary;

namespace Backprop.Data;

/// <summary>Element type of an IDX file: the third byte of its magic number.</summary>
public enum IdxType : byte
{
    /// <summary>Unsigned byte (0x08), the type of MNIST images and labels.</summary>
    UInt8 = 0x08,
    /// <summary>Signed byte (0x09).</summary>
    Int8 = 0x09,
    /// <summary>Big-endian 16-bit integer (0x0B).</summary>
    Int16 = 0x0B,
    /// <summary>Big-endian 32-bit integer (0x0C).</summary>
    Int32 = 0x0C,
    /// <summary>Big-endian 32-bit IEEE float (0x0D).</summary>
    Float32 = 0x0D,
    /// <summary>Big-endian 64-bit IEEE float (0x0E).</summary>
    Float64 = 0x0E,
}

/// <summary>The contents of an IDX file: element type, dimensions and the data bytes as stored.</summary>
public sealed class IdxFile
{
    internal IdxFile(string path, IdxType type, int[] dims, byte[] data)
    {
        Path = path;
        Type = type;
        _dims = dims;
        Data = data;
    }

    private readonly int[] _dims;

    /// <summary>The file it was read from.</summary>
    public string Path { get; }

    /// <summary>Element type.</summary>
    public IdxType Type { get; }

    /// <summary>Dimension sizes, outermost first (e.g. [60000, 28, 28]).</summary>
    public IReadOnlyList<int> Dims => _dims;

    /// <summary>The data in row-major order, exactly as stored (multi-byte types are big-endian).</summary>
    public byte[] Data { get; }

    /// <summary>Number of elements.</summary>
    public long Count => Shape.Product(_dims);

    /// <summary>Bytes per element of <paramref name="type"/>.</summary>
    public static int ElementSize(IdxType type) => type switch
    {
        IdxType.UInt8 or IdxType.Int8 => 1,
        IdxType.Int16 => 2,
        IdxType.Int32 or IdxType.Float32 => 4,
        IdxType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, $"Not an IDX element type: 0x{(byte)type:X2}."),
    };

    /// <summary>
    /// The data as a tensor of shape <see cref="Dims"/>: integer types become int64, float32 stays
    /// float32, float64 stays float64. Values are not rescaled.
    /// </summary>
    public Tensor ToTensor()
    {
        int[] shape = [.. _dims];
        int n = checked((int)Count);
        var d = Data.AsSpan();
        switch (Type)
        {
            case IdxType.Float32:
                {
                    var t = Tensor.HostEmpty<float>(shape);
                    var s = t.Span<float>();
                    for (int i = 0; i < n; i++) s[i] = BinaryPrimitives.ReadSingleBigEndian(d[(4 * i)..]);
                    return t;
                }
            case IdxType.Float64:
                {
                    var t = Tensor.HostEmpty<double>(shape);
                    var s = t.Span<double>();
                    for (int i = 0; i < n; i++) s[i] = BinaryPrimitives.ReadDoubleBigEndian(d[(8 * i)..]);
                    return t;
                }
            default:
                {
                    var t = Tensor.HostEmpty<long>(shape);
                    var s = t.Span<long>();
                    switch (Type)
                    {
                        case IdxType.UInt8: for (int i = 0; i < n; i++) s[i] = d[i]; break;
                        case IdxType.Int8: for (int i = 0; i < n; i++) s[i] = (sbyte)d[i]; break;
                        case IdxType.Int16: for (int i = 0; i < n; i++) s[i] = BinaryPrimitives.ReadInt16BigEndian(d[(2 * i)..]); break;
                        default: for (int i = 0; i < n; i++) s[i] = BinaryPrimitives.ReadInt32BigEndian(d[(4 * i)..]); break;
                    }
                    return t;
                }
        }
    }
}
