using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using Backprop.IO;

namespace Backprop.Tests;

public class SafeTensorsTests
{
    internal static string FixturePath(string name, [CallerFilePath] string source = "")
    {
        var nearBinary = Path.Combine(AppContext.BaseDirectory, "fixtures", name);
        return File.Exists(nearBinary) ? nearBinary : Path.Combine(Path.GetDirectoryName(source)!, "fixtures", name);
    }

    /// <summary>A safetensors file from a header written by hand, with <paramref name="dataBytes"/> bytes of data (0, 1, 2, ...).</summary>
    internal static byte[] Raw(string header, int dataBytes, ulong? declaredLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(b, declaredLength ?? (ulong)h.Length);
        h.CopyTo(b, 8);
        for (int i = 0; i < dataBytes; i++) b[8 + h.Length + i] = (byte)i;
        return b;
    }

    private static SafeTensorsFile Read(byte[] bytes) => SafeTensors.Read(new MemoryStream(bytes), "test.safetensors");

    private static byte[] Bytes(IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? meta = null)
    {
        var ms = new MemoryStream();
        SafeTensors.Write(ms, tensors, meta);
        return ms.ToArray();
    }

    [Fact]
    public void RoundTripsEveryDTypeScalarsEmptyAndNonContiguousTensors()
    {
        var g = new Generator(3);
        var w = Tensor.Randn([3, 4], g);
        var tensors = new Dictionary<string, Tensor>
        {
            ["w"] = w,
            ["wt"] = w.Transpose(0, 1),                      // a view: written row-major
            ["d"] = Tensor.Randn([2, 2], g, DType.Float64),
            ["i"] = Tensor.FromArray(new long[] { long.MinValue, -1, 0, long.MaxValue }, 4),
            ["scalar"] = Tensor.Scalar(1.5),
            ["empty"] = Tensor.Zeros([0, 7], DType.Float32),
            ["empty2"] = Tensor.Zeros([0, 0], DType.Int64),
            ["nan"] = Tensor.FromArray(new[] { float.NaN, float.PositiveInfinity, -0f }, 3),
        };
        var bytes = Bytes(tensors, new Dictionary<string, string> { ["k"] = "v ü" });
        Assert.Equal(0, (8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes)) % 8); // data starts 8-byte aligned
        var back = Read(bytes);
        Assert.Equal(tensors.Keys, back.Tensors.Keys);                                   // header order kept
        foreach (var (k, t) in tensors)
        {
            Assert.Equal(t.Shape, back.Tensors[k].Shape);
            Assert.Equal(t.DType, back.Tensors[k].DType);
            if (t.DType == DType.Int64) Assert.Equal(t.ToLongArray(), back.Tensors[k].ToLongArray());
            else Assert.Equal(t.ToDoubleArray().Select(BitConverter.DoubleToInt64Bits), back.Tensors[k].ToDoubleArray().Select(BitConverter.DoubleToInt64Bits));
        }
        Assert.Equal("v ü", back.Metadata["k"]);
        Assert.Equal(w.Transpose(0, 1).Contiguous().ToArray(), back.Tensors["wt"].ToArray());
    }

    [Fact]
    public void ReadsAFileLaidOutByTheReferenceWriter()
    {
        // tools/safetensors_fixture.py: the reference implementation's layout (dtype-aligned order,
        // compact JSON, metadata first, space padding); values from torch.manual_seed(7).
        var f = SafeTensors.Load(FixturePath("reference.safetensors"));
        Assert.Equal(["counts", "scale", "empty", "linear.bias", "linear.weight"], f.Tensors.Keys);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal([1L, -2L, 3_000_000_000L], f.Tensors["counts"].ToLongArray());
        Assert.Equal(0, f.Tensors["scale"].Rank);
        Assert.Equal(2.5, f.Tensors["scale"].ItemDouble());
        Assert.Equal(new Shape(0, 5), f.Tensors["empty"].Shape);
        Assert.Equal(new Shape(3, 4), f.Tensors["linear.weight"].Shape);
        Assert.Equal(-0.1467950940132141f, f.Tensors["linear.weight"][0, 0]);
        Assert.Equal(0.13280697166919708f, f.Tensors["linear.weight"][2, 3]);
        Assert.Equal([0.13732409477233887f, 0.2405461221933365f, 1.3954508304595947f], f.Tensors["linear.bias"].ToArray());

        // Written back by Backprop and read again: same tensors.
        var again = Read(Bytes(f.Tensors, f.Metadata));
        Assert.Equal(f.Tensors["linear.weight"].ToArray(), again.Tensors["linear.weight"].ToArray());
        Assert.Equal(f.Tensors["counts"].ToLongArray(), again.Tensors["counts"].ToLongArray());
    }

    [Fact]
    public void WritesTheLayoutOfTheSpecification()
    {
        var bytes = Bytes([new("a", Tensor.FromArray(new float[] { 1, 2 }, 2)), new("b", Tensor.FromArray(new long[] { 7 }, 1))]);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.Equal("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}""", header.TrimEnd(' '));
        Assert.Equal(8 + n + 16, bytes.Length);
        Assert.Equal(1f, BitConverter.ToSingle(bytes, (int)(8 + n)));
        Assert.Equal(7L, BitConverter.ToInt64(bytes, (int)(8 + n + 8)));
    }

    [Theory]
    [InlineData("truncated: the file has 5 bytes", null, 5)]
    [InlineData("more than the 100000000 accepted", "big", 0)]
    [InlineData("only 3 bytes follow", "short", 0)]
    public void RejectsImplausibleHeaderLengths(string message, string? kind, long offset)
    {
        byte[] b = kind switch
        {
            null => [1, 2, 3, 4, 5],
            "big" => Raw("{}", 0, declaredLength: 1UL << 40),
            _ => Raw("{ }", 0, declaredLength: 100),
        };
        var e = Assert.Throws<CheckpointFormatException>(() => Read(b));
        Assert.Contains(message, e.Message);
        Assert.Contains("test.safetensors", e.Message);
        Assert.Equal(offset, e.Offset);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}""", 8, "not valid JSON", "a")]
    [InlineData("""[1, 2]""", 0, "not a JSON object", null)]
    [InlineData("""{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}""", 4, "dtype F16, which Backprop does not support", "a")]
    [InlineData("""{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,4]}}""", 4, "unknown dtype 'Q7'", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "shape [3] of F32 needs 12 bytes, but data_offsets [0, 8] cover 8", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "shape[0] must be a non-negative integer, found -2", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}""", 8, "found 2.5", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4294967296],"data_offsets":[0,8]}}""", 8, "larger than the 2147483647 supported", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[65536,65536],"data_offsets":[0,8]}}""", 8, "more than the 2147483647 elements", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "end before they begin", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}""", 8, "data_offsets must be [begin, end]", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2]}}""", 8, "lacks data_offsets", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}""", 8, "unknown field 'x'", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, "appears twice", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlaps tensor 'a'", "b")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}""", 16, "belong to no tensor (a gap before tensor 'b')", "b")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 12, "4 bytes of trailing data", "a")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 5, "truncated: tensor 'a' occupies bytes", "a")]
    [InlineData("""{"__metadata__":{"k":1}}""", 0, "metadata entry 'k' must be a string", "__metadata__.k")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} x""", 8, "not valid JSON", "a")]
    public void MalformedHeadersNameTheKeyAndTheProblem(string header, int dataBytes, string message, string? key)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => Read(Raw(header, dataBytes)));
        Assert.Contains(message, e.Message);
        Assert.StartsWith("test.safetensors: ", e.Message);
        Assert.Equal(key, e.Key);
        Assert.NotNull(e.Offset);
        Assert.Contains($"byte {e.Offset}", e.Message);
    }

    [Fact]
    public void TruncationAtEveryByteIsAClearError()
    {
        var full = Bytes([new("w", Tensor.Randn([4, 3], new Generator(1))), new("b", Tensor.Zeros(3))], new Dictionary<string, string> { ["m"] = "x" });
        for (int len = 0; len < full.Length; len++)
        {
            var e = Assert.Throws<CheckpointFormatException>(() => Read(full[..len]));
            Assert.Contains("truncated", e.Message, StringComparison.OrdinalIgnoreCase);
        }
        Assert.Equal(2, Read(full).Tensors.Count);
    }

    [Fact]
    public void SaveIsAtomicAndLoadNamesTheFile()
    {
        var dir = Directory.CreateTempSubdirectory("bp-st").FullName;
        try
        {
            string path = Path.Combine(dir, "sub", "t.safetensors");   // the folder is created
            SafeTensors.Save(path, [new("x", Tensor.Ones(2))]);
            Assert.Equal([1f, 1f], SafeTensors.Load(path).Tensors["x"].ToArray());
            // A writer that fails halfway leaves the old file and no temporary file.
            Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [new("y", Tensor.Ones(3)), new("y", Tensor.Ones(3))]));
            Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
            {
                s.Write(new byte[100]);
                throw new InvalidOperationException("disk on fire");
            }));
            Assert.Equal([1f, 1f], SafeTensors.Load(path).Tensors["x"].ToArray());
            Assert.Empty(AtomicFile.StaleTemporaries(path));
            // Stale temporaries from a killed writer (of this host, no longer running) are removed by
            // the next successful write; a user's file that merely starts with the same prefix is not.
            int deadPid;
            using (var p = System.Diagnostics.Process.Start("true"))
            {
                p.WaitForExit();
                deadPid = p.Id;
            }
            File.WriteAllBytes(path + $".tmp-{deadPid}-{AtomicFile.LocalHostId}-0123456789ab", [1, 2, 3]);
            File.WriteAllBytes(path + ".tmp-dead", [1, 2, 3]);
            Assert.Single(AtomicFile.StaleTemporaries(path));
            SafeTensors.Save(path, [new("x", Tensor.Zeros(2))]);
            Assert.Empty(AtomicFile.StaleTemporaries(path));
            Assert.True(File.Exists(path + ".tmp-dead"));
            Assert.Throws<FileNotFoundException>(() => SafeTensors.Load(Path.Combine(dir, "none.safetensors")));
            File.WriteAllBytes(path, [9, 9, 9]);
            var e = Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path));
            Assert.Equal(path, e.FilePath);
            Assert.Throws<IOException>(() => SafeTensors.Save(dir, [new("x", Tensor.Zeros(2))]));   // a directory
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void RejectsBadNamesOnWrite()
    {
        Assert.Throws<ArgumentException>(() => Bytes([new("", Tensor.Zeros(1))]));
        Assert.Throws<ArgumentException>(() => Bytes([new("__metadata__", Tensor.Zeros(1))]));
    }
}
