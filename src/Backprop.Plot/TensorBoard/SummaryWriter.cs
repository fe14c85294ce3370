using System.Globalization;
using Google.Protobuf;

namespace Backprop.Plot.TensorBoard;

/// <summary>
/// Writes a TensorBoard event file (<c>events.out.tfevents.TIME.HOST</c> in a log folder): scalars,
/// histograms, images (PNG) and text, each an <c>Event</c> protocol-buffer message holding a
/// <c>Summary</c>, framed as TFRecords. The messages are encoded field by field with Google.Protobuf's
/// <see cref="CodedOutputStream"/>, with the field numbers of TensorFlow's event.proto, summary.proto
/// and tensor.proto (see docs/plots.md), so no generated code is needed. Point
/// <c>tensorboard --logdir</c> at the folder.
/// </summary>
public sealed class SummaryWriter : IDisposable
{
    private readonly FileStream _file;
    private bool _disposed;

    /// <summary>The event file being written.</summary>
    public string FilePath { get; }

    /// <summary>Creates the folder if needed and starts a new event file there.</summary>
    public SummaryWriter(string logDir)
    {
        Directory.CreateDirectory(logDir);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string host = System.Text.RegularExpressions.Regex.Replace(Environment.MachineName, "[^A-Za-z0-9_.-]", "_");
        string name = $"events.out.tfevents.{now.ToString(CultureInfo.InvariantCulture)}.{host}";
        // Two writers in the same second get distinct files.
        for (int i = 1; File.Exists(Path.Combine(logDir, name)); i++) name = $"events.out.tfevents.{now}.{host}.{i}";
        FilePath = Path.Combine(logDir, name);
        _file = new FileStream(FilePath, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        WriteEvent(step: 0, e => e.WriteString(3, "brain.Event:2")); // file_version
        Flush();
    }

    /// <summary>A scalar (Summary.Value.simple_value).</summary>
    public void AddScalar(string tag, double value, long step) =>
        WriteSummaryValue(step, tag, v => v.WriteFloat(2, (float)value));

    /// <summary>A histogram of <paramref name="values"/> in <paramref name="bins"/> equal bins (Summary.Value.histo).</summary>
    public void AddHistogram(string tag, ReadOnlySpan<double> values, long step, int bins = 30)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 1);
        double min = double.PositiveInfinity, max = double.NegativeInfinity, sum = 0, sumSq = 0;
        int n = 0;
        foreach (double x in values)
        {
            if (!double.IsFinite(x)) continue;
            (min, max, sum, sumSq, n) = (Math.Min(min, x), Math.Max(max, x), sum + x, sumSq + x * x, n + 1);
        }
        if (n == 0) (min, max) = (0, 0);
        var limits = new double[bins];
        var counts = new double[bins];
        double width = max > min ? (max - min) / bins : 1;
        for (int i = 0; i < bins; i++) limits[i] = i == bins - 1 ? Math.Max(max, min + width * bins) : min + width * (i + 1);
        foreach (double x in values)
        {
            if (!double.IsFinite(x)) continue;
            int b = Math.Clamp((int)((x - min) / width), 0, bins - 1);
            counts[b]++;
        }
        var histo = Message(h =>
        {
            h.WriteDouble(1, min);
            h.WriteDouble(2, max);
            h.WriteDouble(3, n);
            h.WriteDouble(4, sum);
            h.WriteDouble(5, sumSq);
            h.WritePackedDoubles(6, limits);
            h.WritePackedDoubles(7, counts);
        });
        WriteSummaryValue(step, tag, v => v.WriteMessage(5, histo));
    }

    /// <summary>A PNG image (Summary.Value.image) of the given size.</summary>
    public void AddImage(string tag, byte[] png, int width, int height, long step)
    {
        var image = Message(i =>
        {
            i.WriteInt32(1, height);
            i.WriteInt32(2, width);
            i.WriteInt32(3, 4); // RGBA
            i.WriteBytes(4, png);
        });
        WriteSummaryValue(step, tag, v => v.WriteMessage(4, image));
    }

    /// <summary>Text, shown by TensorBoard's text plugin (a DT_STRING tensor with plugin metadata "text").</summary>
    public void AddText(string tag, string text, long step)
    {
        var metadata = Message(m => m.WriteMessage(1, Message(p => p.WriteString(1, "text"))));
        var tensor = Message(t =>
        {
            t.WriteInt32(1, 7); // dtype DT_STRING
            t.WriteMessage(2, Message(s => s.WriteMessage(2, Message(d => d.WriteInt64(1, 1))))); // shape [1]
            t.WriteBytes(8, System.Text.Encoding.UTF8.GetBytes(text)); // string_val
        });
        WriteSummaryValue(step, tag, v =>
        {
            v.WriteMessage(9, metadata);
            v.WriteMessage(8, tensor);
        });
    }

    /// <summary>Writes what is buffered to the file.</summary>
    public void Flush() => _file.Flush(flushToDisk: false);

    private void WriteSummaryValue(long step, string tag, Action<Fields> value)
    {
        var v = Message(f =>
        {
            f.WriteString(1, tag);
            value(f);
        });
        var summary = Message(s => s.WriteMessage(1, v));
        WriteEvent(step, e => e.WriteMessage(5, summary));
    }

    private void WriteEvent(long step, Action<Fields> body)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var ev = Message(e =>
        {
            e.WriteDouble(1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);
            e.WriteInt64(2, step);
            body(e);
        });
        RecordWriter.Write(_file, ev);
        // Each event reaches the file at once, so TensorBoard (or a reader) sees it while the run goes on.
        _file.Flush(flushToDisk: false);
    }

    private static byte[] Message(Action<Fields> write)
    {
        using var ms = new MemoryStream();
        var cos = new CodedOutputStream(ms);
        write(new Fields(cos));
        cos.Flush();
        return ms.ToArray();
    }

    /// <summary>Field writers over a <see cref="CodedOutputStream"/>: tag then value, proto3 wire types.</summary>
    private readonly struct Fields(CodedOutputStream s)
    {
        public void WriteDouble(int field, double v) { s.WriteTag(field, WireFormat.WireType.Fixed64); s.WriteDouble(v); }
        public void WriteFloat(int field, float v) { s.WriteTag(field, WireFormat.WireType.Fixed32); s.WriteFloat(v); }
        public void WriteInt64(int field, long v) { s.WriteTag(field, WireFormat.WireType.Varint); s.WriteInt64(v); }
        public void WriteInt32(int field, int v) { s.WriteTag(field, WireFormat.WireType.Varint); s.WriteInt32(v); }
        public void WriteString(int field, string v) { s.WriteTag(field, WireFormat.WireType.LengthDelimited); s.WriteString(v); }
        public void WriteBytes(int field, byte[] v) { s.WriteTag(field, WireFormat.WireType.LengthDelimited); s.WriteBytes(ByteString.CopyFrom(v)); }
        public void WriteMessage(int field, byte[] encoded) => WriteBytes(field, encoded);
        public void WritePackedDoubles(int field, double[] v)
        {
            s.WriteTag(field, WireFormat.WireType.LengthDelimited);
            s.WriteLength(8 * v.Length);
            foreach (double d in v) s.WriteDouble(d);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _file.Flush(flushToDisk: true);
        _file.Dispose();
    }
}
