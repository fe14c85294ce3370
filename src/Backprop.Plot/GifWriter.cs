using SkiaSharp;

namespace Backprop.Plot;

/// <summary>
/// Writes an animated GIF (GIF89a, looping) from frames of one size. Each frame gets its own
/// 256-colour table: the most frequent colours of the frame at 5 bits per channel, every pixel mapped
/// to the nearest of them; its indices are compressed with GIF's variable-length LZW. SkiaSharp
/// decodes GIFs but does not write them.
/// </summary>
public sealed class GifWriter : IDisposable
{
    private readonly Stream _out;
    private readonly bool _ownsStream;
    private readonly int _width, _height;
    private readonly int _delayCentiseconds;
    private bool _finished;

    /// <summary>Starts a GIF of <paramref name="width"/>×<paramref name="height"/> pixels in <paramref name="path"/>.</summary>
    public GifWriter(string path, int width, int height, int delayMilliseconds = 200)
        : this(File.Create(path), width, height, delayMilliseconds, ownsStream: true) { }

    /// <summary>Starts a GIF on <paramref name="output"/>.</summary>
    public GifWriter(Stream output, int width, int height, int delayMilliseconds = 200, bool ownsStream = false)
    {
        if (width is < 1 or > 65535 || height is < 1 or > 65535)
            throw new ArgumentOutOfRangeException(nameof(width), $"GifWriter: a GIF is 1 to 65535 pixels on each side, not {width}x{height}.");
        (_out, _width, _height, _ownsStream) = (output, width, height, ownsStream);
        _delayCentiseconds = Math.Clamp((delayMilliseconds + 5) / 10, 1, 65535);
        WriteAscii("GIF89a");
        WriteU16(width);
        WriteU16(height);
        _out.WriteByte(0x70); // no global colour table (each frame has its own), 8 bits per channel
        _out.WriteByte(0);    // background colour index
        _out.WriteByte(0);    // no aspect ratio
        // NETSCAPE2.0 application extension: loop forever.
        _out.Write([0x21, 0xFF, 0x0B]);
        WriteAscii("NETSCAPE2.0");
        _out.Write([0x03, 0x01, 0x00, 0x00, 0x00]);
    }

    /// <summary>Frames written so far.</summary>
    public int Frames { get; private set; }

    /// <summary>Appends a frame (scaled to the GIF's size if it differs).</summary>
    public void Add(SKBitmap frame)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        SKBitmap? scaled = null;
        if (frame.Width != _width || frame.Height != _height)
        {
            scaled = frame.Resize(new SKImageInfo(_width, _height), new SKSamplingOptions(SKFilterMode.Linear));
            frame = scaled;
        }
        var pixels = new SKColor[_width * _height];
        for (int y = 0; y < _height; y++)
            for (int x = 0; x < _width; x++)
                pixels[y * _width + x] = frame.GetPixel(x, y);
        scaled?.Dispose();
        var (palette, indices) = Quantize(pixels);
        // Graphic control extension: the delay, no transparency.
        _out.Write([0x21, 0xF9, 0x04, 0x04]);
        WriteU16(_delayCentiseconds);
        _out.Write([0x00, 0x00]);
        // Image descriptor: the whole canvas, no local colour table.
        _out.WriteByte(0x2C);
        WriteU16(0);
        WriteU16(0);
        WriteU16(_width);
        WriteU16(_height);
        _out.WriteByte(0x87); // a local colour table of 256 entries
        foreach (var c in palette)
        {
            _out.WriteByte(c.Red);
            _out.WriteByte(c.Green);
            _out.WriteByte(c.Blue);
        }
        _out.WriteByte(8); // LZW minimum code size
        WriteSubBlocks(Lzw(indices, 8));
        Frames++;
    }

    /// <summary>
    /// A frame's 256-colour table (the most frequent colours at 5 bits per channel, padded with black)
    /// and each pixel's index of the nearest table colour.
    /// </summary>
    internal static (SKColor[] Palette, byte[] Indices) Quantize(ReadOnlySpan<SKColor> pixels)
    {
        static int Key(SKColor c) => (c.Red >> 3) << 10 | (c.Green >> 3) << 5 | (c.Blue >> 3);
        static SKColor FromKey(int k) => new((byte)((k >> 10 & 31) * 255 / 31), (byte)((k >> 5 & 31) * 255 / 31), (byte)((k & 31) * 255 / 31));
        var counts = new int[1 << 15];
        foreach (var c in pixels) counts[Key(c)]++;
        var used = Enumerable.Range(0, counts.Length).Where(k => counts[k] > 0).OrderByDescending(k => counts[k]).ThenBy(k => k).ToArray();
        var palette = new SKColor[256];
        Array.Fill(palette, SKColors.Black);
        int n = Math.Min(256, used.Length);
        for (int i = 0; i < n; i++) palette[i] = FromKey(used[i]);
        var map = new short[1 << 15];
        foreach (int k in used)
        {
            var c = FromKey(k);
            int best = 0, bestDist = int.MaxValue;
            for (int i = 0; i < n; i++)
            {
                int dr = c.Red - palette[i].Red, dg = c.Green - palette[i].Green, db = c.Blue - palette[i].Blue;
                int d = 2 * dr * dr + 4 * dg * dg + 3 * db * db;
                if (d < bestDist) (best, bestDist) = (i, d);
            }
            map[k] = (short)best;
        }
        var indices = new byte[pixels.Length];
        for (int i = 0; i < pixels.Length; i++) indices[i] = (byte)map[Key(pixels[i])];
        return (palette, indices);
    }

    /// <summary>GIF's LZW: codes of growing width (up to 12 bits), least significant bit first, a clear code when the table is full.</summary>
    internal static byte[] Lzw(ReadOnlySpan<byte> data, int minCodeSize)
    {
        int clear = 1 << minCodeSize, end = clear + 1;
        var output = new List<byte>(data.Length / 2 + 16);
        int bitBuffer = 0, bitCount = 0;
        void Emit(int code, int width)
        {
            bitBuffer |= code << bitCount;
            bitCount += width;
            while (bitCount >= 8)
            {
                output.Add((byte)bitBuffer);
                bitBuffer >>= 8;
                bitCount -= 8;
            }
        }
        var table = new Dictionary<int, int>(); // (prefix code << 8 | byte) -> code
        int next = end + 1, width = minCodeSize + 1;
        Emit(clear, width);
        if (data.Length == 0)
        {
            Emit(end, width);
        }
        else
        {
            int prefix = data[0];
            for (int i = 1; i < data.Length; i++)
            {
                int key = prefix << 8 | data[i];
                if (table.TryGetValue(key, out int code))
                {
                    prefix = code;
                    continue;
                }
                Emit(prefix, width);
                if (next < 4096)
                {
                    table[key] = next++;
                    // The decoder widens its codes one code later than the encoder adds them.
                    if (next > (1 << width) && width < 12) width++;
                }
                else
                {
                    Emit(clear, width);
                    table.Clear();
                    next = end + 1;
                    width = minCodeSize + 1;
                }
                prefix = data[i];
            }
            Emit(prefix, width);
            Emit(end, width);
        }
        if (bitCount > 0) output.Add((byte)bitBuffer);
        return [.. output];
    }

    private void WriteSubBlocks(byte[] data)
    {
        for (int i = 0; i < data.Length; i += 255)
        {
            int n = Math.Min(255, data.Length - i);
            _out.WriteByte((byte)n);
            _out.Write(data, i, n);
        }
        _out.WriteByte(0);
    }

    private void WriteU16(int v)
    {
        _out.WriteByte((byte)v);
        _out.WriteByte((byte)(v >> 8));
    }

    private void WriteAscii(string s)
    {
        foreach (char ch in s) _out.WriteByte((byte)ch);
    }

    /// <summary>Writes the trailer and closes the file.</summary>
    public void Dispose()
    {
        if (_finished) return;
        _finished = true;
        _out.WriteByte(0x3B);
        _out.Flush();
        if (_ownsStream) _out.Dispose();
    }
}
