using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Backprop.Plot.TensorBoard;
using Google.Protobuf;

namespace Backprop.Tests;

/// <summary>TensorBoard event files: CRC-32C and its mask, TFRecord framing, and the Event/Summary payloads read back.</summary>
[Collection("Threads")]
public class TensorBoardTests
{
    [Fact]
    public void Crc32CMatchesPublishedCheckValues()
    {
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));   // the CRC catalogue's check value
        Assert.Equal(0x62A8AB43u, Crc32C.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()));  // RFC 3720 B.4
        Assert.Equal(0x46DD794Eu, Crc32C.Compute(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()));
    }

    [Fact]
    public void TheMaskRotatesBy15AndAddsTheConstant()
    {
        uint crc = 0x8A9136AA;
        uint expected = unchecked((uint)((((ulong)crc >> 15) | (((ulong)crc << 17) & 0xFFFFFFFF)) + 0xA282EAD8) & 0xFFFFFFFF);
        Assert.Equal(expected, Crc32C.Mask(crc));
        Assert.Equal(0x0FD7FFFAu, Crc32C.Masked(new byte[32]));   // worked out by hand (Python) from 0x8A9136AA
        Assert.Equal(0xA282EAD8u, Crc32C.Mask(0));
    }

    [Fact]
    public void ARecordIsLengthCrcDataCrc()
    {
        var ms = new MemoryStream();
        var data = "hello"u8.ToArray();
        RecordWriter.Write(ms, data);
        var bytes = ms.ToArray();
        Assert.Equal(8 + 4 + data.Length + 4, bytes.Length);
        Assert.Equal(5ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        Assert.Equal(Crc32C.Mask(Crc32C.Compute(bytes.AsSpan(0, 8))), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        Assert.Equal(data, bytes.AsSpan(12, 5).ToArray());
        Assert.Equal(Crc32C.Mask(Crc32C.Compute(data)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(17)));
    }

    /// <summary>A protocol-buffer message as (field number, value): ulong for varints, double/float for fixed, byte[] for length-delimited.</summary>
    internal static List<(int Field, object Value)> Decode(byte[] message)
    {
        var r = new List<(int, object)>();
        var s = new CodedInputStream(message);
        uint tag;
        while ((tag = s.ReadTag()) != 0)
        {
            int field = WireFormat.GetTagFieldNumber(tag);
            r.Add((field, WireFormat.GetTagWireType(tag) switch
            {
                WireFormat.WireType.Varint => s.ReadUInt64(),
                WireFormat.WireType.Fixed64 => s.ReadDouble(),
                WireFormat.WireType.Fixed32 => s.ReadFloat(),
                WireFormat.WireType.LengthDelimited => s.ReadBytes().ToByteArray(),
                var w => throw new InvalidDataException($"field {field}: unexpected wire type {w}"),
            }));
        }
        return r;
    }

    private static byte[] One(List<(int Field, object Value)> m, int field) => (byte[])m.Single(f => f.Field == field).Value;

    /// <summary>The Summary.Value of an event, or null for an event without a summary.</summary>
    private static List<(int Field, object Value)>? ValueOf(byte[] ev)
    {
        var e = Decode(ev);
        if (!e.Any(f => f.Field == 5)) return null;
        return Decode(One(Decode(One(e, 5)), 1));
    }

    [Fact]
    public void AWrittenFileParsesBack()
    {
        var dir = Path.Combine(Path.GetTempPath(), "backprop-tb-" + Guid.NewGuid().ToString("N"));
        try
        {
            string file;
            using (var w = new SummaryWriter(dir))
            {
                file = w.FilePath;
                w.AddScalar("loss", 0.25, 3);
                w.AddHistogram("w", [1, 2, 2, 3, 10], 4, bins: 3);
                w.AddImage("img", [0x89, 0x50, 0x4E, 0x47], 7, 5, 5);
                w.AddText("note", "héllo", 6);
            }
            Assert.StartsWith("events.out.tfevents.", Path.GetFileName(file));
            var records = RecordWriter.ReadAll(file);
            Assert.Equal(5, records.Count);
            var first = Decode(records[0]);
            Assert.Equal("brain.Event:2", Encoding.UTF8.GetString(One(first, 3)));
            Assert.True((double)first.Single(f => f.Field == 1).Value > 1.7e9); // wall_time, seconds

            var ev = Decode(records[1]);
            Assert.Equal(3ul, ev.Single(f => f.Field == 2).Value);
            var scalar = ValueOf(records[1])!;
            Assert.Equal("loss", Encoding.UTF8.GetString(One(scalar, 1)));
            Assert.Equal(0.25f, scalar.Single(f => f.Field == 2).Value);

            var histo = Decode(One(ValueOf(records[2])!, 5));
            double D(int field) => (double)histo.Single(f => f.Field == field).Value;
            Assert.Equal((1.0, 10.0, 5.0, 18.0, 118.0), (D(1), D(2), D(3), D(4), D(5)));
            double[] Packed(int field) => Enumerable.Range(0, One(histo, field).Length / 8)
                .Select(i => BitConverter.ToDouble(One(histo, field), 8 * i)).ToArray();
            Assert.Equal([4.0, 7.0, 10.0], Packed(6));
            Assert.Equal([4.0, 0.0, 1.0], Packed(7));

            var image = Decode(One(ValueOf(records[3])!, 4));
            Assert.Equal(5ul, image.Single(f => f.Field == 1).Value);  // height
            Assert.Equal(7ul, image.Single(f => f.Field == 2).Value);  // width
            Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, One(image, 4));

            var text = ValueOf(records[4])!;
            var plugin = Decode(One(Decode(One(text, 9)), 1));
            Assert.Equal("text", Encoding.UTF8.GetString(One(plugin, 1)));
            var tensor = Decode(One(text, 8));
            Assert.Equal(7ul, tensor.Single(f => f.Field == 1).Value); // DT_STRING
            Assert.Equal("héllo", Encoding.UTF8.GetString(One(tensor, 8)));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ACorruptedByteIsFoundByTheReader()
    {
        var dir = Path.Combine(Path.GetTempPath(), "backprop-tb-" + Guid.NewGuid().ToString("N"));
        try
        {
            string file;
            using (var w = new SummaryWriter(dir))
            {
                file = w.FilePath;
                w.AddScalar("a", 1, 1);
            }
            var bytes = File.ReadAllBytes(file);
            bytes[^6] ^= 1;
            File.WriteAllBytes(file, bytes);
            var e = Assert.Throws<InvalidDataException>(() => RecordWriter.ReadAll(file));
            Assert.Contains("record 1", e.Message);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void TrainLogdirWritesTheEpochScalarsAndHistograms()
    {
        var dir = Path.Combine(Path.GetTempPath(), "backprop-tb-" + Guid.NewGuid().ToString("N"));
        try
        {
            var o = new StringWriter();
            var err = new StringWriter();
            int code = Cli.Cli.Run(["train", "digits", "--model", "mlp:64-8-10", "--epochs", "2", "--limit", "200", "--logdir", dir, "--json", "--quiet"], o, err);
            Assert.True(code == 0, err.ToString());
            var json = JsonNode.Parse(o.ToString().TrimEnd().Split('\n')[^1])!;
            var file = Directory.GetFiles(dir).Single();
            var tags = new Dictionary<string, List<float>>();
            foreach (var rec in RecordWriter.ReadAll(file))
                if (ValueOf(rec) is { } v)
                {
                    var tag = Encoding.UTF8.GetString(One(v, 1));
                    if (!tags.TryGetValue(tag, out var list)) tags[tag] = list = [];
                    if (v.FirstOrDefault(f => f.Field == 2).Value is float x) list.Add(x);
                }
            var history = json["history"]!.AsArray();
            Assert.Equal(history.Select(h => (float)(double)h!["test_accuracy"]!), tags["accuracy/test"]);
            Assert.Equal(history.Select(h => (float)(double)h!["train_loss"]!), tags["loss/train"]);
            Assert.Contains("weights/0.weight", tags.Keys);
            Assert.Contains("gradients/2.bias", tags.Keys);
            Assert.Contains("config", tags.Keys);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
