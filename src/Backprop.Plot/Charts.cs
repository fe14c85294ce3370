using ScottPlot;
using SkiaSharp;

namespace Backprop.Plot;

/// <summary>A labelled series of a line chart.</summary>
public sealed record Series(string Label, double[] X, double[] Y);

/// <summary>A labelled point of a scatter: its coordinates and class.</summary>
public readonly record struct LabelledPoint(double X, double Y, int Class);

/// <summary>
/// The charts Backprop draws: PNG files (and SVG where a chart is vectors), through ScottPlot and
/// SkiaSharp. Every method takes plain arrays, so it serves code as well as <c>backprop train --plot</c>.
/// </summary>
public static class Charts
{
    /// <summary>Default size of a chart, in pixels.</summary>
    public const int Width = 640, Height = 440;

    /// <summary>
    /// A line chart (loss or accuracy curves, gradient flow): <paramref name="path"/> gets the PNG and,
    /// with <paramref name="svg"/>, the same chart as SVG beside it. <paramref name="logY"/> plots log10 of
    /// the values (non-positive ones dropped). Returns the paths written.
    /// </summary>
    public static string[] Lines(string path, string title, string xLabel, string yLabel, IReadOnlyList<Series> series,
        bool logY = false, bool svg = true, int width = Width, int height = Height)
    {
        var plot = new ScottPlot.Plot();
        int i = 0;
        foreach (var s in series)
        {
            if (s.X.Length != s.Y.Length)
                throw new ArgumentException($"Charts.Lines: series '{s.Label}' has {s.X.Length} x values and {s.Y.Length} y values.");
            var pts = Enumerable.Range(0, s.X.Length)
                .Where(k => double.IsFinite(s.Y[k]) && (!logY || s.Y[k] > 0))
                .Select(k => (s.X[k], logY ? Math.Log10(s.Y[k]) : s.Y[k])).ToArray();
            if (pts.Length == 0) { i++; continue; }
            var sc = plot.Add.Scatter(pts.Select(p => p.Item1).ToArray(), pts.Select(p => p.Item2).ToArray(),
                Palette.Hsl(Palette.Hue(i), 0.8, 0.4).ToScott());
            sc.LegendText = s.Label;
            sc.LineWidth = 2;
            sc.MarkerSize = pts.Length <= 40 ? 5 : 0;
            i++;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(logY ? $"log10 {yLabel}" : yLabel);
        if (series.Count > 3) plot.ShowLegend(Edge.Right);
        else if (series.Count > 1) plot.ShowLegend(Alignment.UpperRight);
        return Save(plot, path, svg, width, height);
    }

    /// <summary>Saves a ScottPlot chart as PNG (and SVG); returns the paths.</summary>
    public static string[] Save(ScottPlot.Plot plot, string path, bool svg, int width = Width, int height = Height)
    {
        EnsureFolder(path);
        plot.SavePng(path, width, height);
        if (!svg) return [path];
        var svgPath = Path.ChangeExtension(path, ".svg");
        plot.SaveSvg(svgPath, width, height);
        return [path, svgPath];
    }

    /// <summary>
    /// The decision-region map as a bitmap: <paramref name="probabilities"/>[row, column, class] over a
    /// grid whose row 0 is the top; each pixel takes the hue of its most probable class and a lightness
    /// from that probability.
    /// </summary>
    public static SKBitmap RegionBitmap(float[,,] probabilities)
    {
        int rows = probabilities.GetLength(0), cols = probabilities.GetLength(1), k = probabilities.GetLength(2);
        var bmp = new SKBitmap(cols, rows, SKColorType.Rgba8888, SKAlphaType.Opaque);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                int best = 0;
                for (int j = 1; j < k; j++)
                    if (probabilities[r, c, j] > probabilities[r, c, best]) best = j;
                bmp.SetPixel(c, r, Palette.Region(best, probabilities[r, c, best], k));
            }
        return bmp;
    }

    /// <summary>
    /// The decision-region heat map with axes: the regions over [xMin, xMax]×[yMin, yMax], training
    /// points as filled dots, test points as open rings, both in their class's darker colour.
    /// </summary>
    public static ScottPlot.Plot DecisionRegions(float[,,] probabilities, double xMin, double xMax, double yMin, double yMax,
        IEnumerable<LabelledPoint> train, IEnumerable<LabelledPoint> test, string title, IReadOnlyList<string>? classNames = null)
    {
        var plot = new ScottPlot.Plot();
        using var bmp = RegionBitmap(probabilities);
        plot.Add.ImageRect(new ScottPlot.Image(bmp), new CoordinateRect(xMin, xMax, yMin, yMax));
        int k = probabilities.GetLength(2);
        for (int c = 0; c < k; c++)
        {
            var trainPts = train.Where(p => p.Class == c).ToArray();
            var testPts = test.Where(p => p.Class == c).ToArray();
            var color = Palette.Point(c).ToScott();
            if (trainPts.Length > 0)
            {
                var m = plot.Add.Markers(trainPts.Select(p => p.X).ToArray(), trainPts.Select(p => p.Y).ToArray(), MarkerShape.FilledCircle, 4, color);
                m.LegendText = classNames != null && c < classNames.Count ? classNames[c] : $"class {c}";
            }
            if (testPts.Length > 0)
                plot.Add.Markers(testPts.Select(p => p.X).ToArray(), testPts.Select(p => p.Y).ToArray(), MarkerShape.OpenCircle, 6, color);
        }
        plot.Axes.SetLimits(xMin, xMax, yMin, yMax);
        plot.Title(title);
        plot.XLabel("x1");
        plot.YLabel("x2");
        plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }

    /// <summary>A chart rendered to a bitmap (for animation frames).</summary>
    public static SKBitmap Render(ScottPlot.Plot plot, int width, int height)
    {
        var bytes = plot.GetImage(width, height).GetImageBytes(ImageFormat.Png);
        return SKBitmap.Decode(bytes);
    }

    /// <summary>
    /// A confusion matrix: <paramref name="counts"/>[true, predicted], each cell's shade its share of the
    /// row, with the count written in it. PNG and SVG.
    /// </summary>
    public static string[] ConfusionMatrix(string path, int[,] counts, IReadOnlyList<string>? classNames = null, string title = "confusion matrix (rows: true class)")
    {
        int k = counts.GetLength(0);
        if (counts.GetLength(1) != k) throw new ArgumentException($"Charts.ConfusionMatrix: {k}x{counts.GetLength(1)} counts; expected a square matrix.");
        var plot = new ScottPlot.Plot();
        for (int t = 0; t < k; t++)
        {
            double rowSum = Math.Max(1, Enumerable.Range(0, k).Sum(p => counts[t, p]));
            for (int p = 0; p < k; p++)
            {
                double share = counts[t, p] / rowSum;
                // Row t at the top: y runs from k - 1 (first class) down to 0.
                double y = k - 1 - t;
                var rect = plot.Add.Rectangle(p - 0.5, p + 0.5, y - 0.5, y + 0.5);
                var fill = t == p ? Palette.Hsl(210, 0.7, 0.95 - 0.55 * share) : Palette.Hsl(0, 0.7, 0.97 - 0.55 * share);
                rect.FillStyle.Color = fill.ToScott();
                rect.LineStyle.Color = Colors.White;
                var label = plot.Add.Text(counts[t, p].ToString(System.Globalization.CultureInfo.InvariantCulture), p, y);
                label.Alignment = Alignment.MiddleCenter;
                label.LabelFontSize = k > 12 ? 8 : 12;
                label.LabelFontColor = share > 0.6 ? Colors.White : Colors.Black;
            }
        }
        string Name(int c) => classNames != null && c < classNames.Count ? classNames[c] : c.ToString(System.Globalization.CultureInfo.InvariantCulture);
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, k).Select(i => (double)i).ToArray(), Enumerable.Range(0, k).Select(Name).ToArray());
        plot.Axes.Left.SetTicks(Enumerable.Range(0, k).Select(i => (double)(k - 1 - i)).ToArray(), Enumerable.Range(0, k).Select(Name).ToArray());
        plot.Axes.SetLimits(-0.5, k - 0.5, -0.5, k - 0.5);
        plot.Title(title);
        plot.XLabel("predicted");
        plot.YLabel("true");
        int side = Math.Max(360, 40 * k + 120);
        return Save(plot, path, svg: true, side + 40, side);
    }

    /// <summary>
    /// Images in a grid of tiles, each scaled by <paramref name="scale"/>: <paramref name="images"/>[i] holds
    /// <paramref name="imageHeight"/>×<paramref name="imageWidth"/> values. <paramref name="signed"/> maps each
    /// tile to blue (negative), white, red (positive) by its largest magnitude (weights); otherwise to
    /// grey levels from its own minimum (black) to maximum (white) (inputs). <paramref name="captions"/>, if
    /// given, are written under each tile (with their colour: green or red when <paramref name="captionOk"/> says).
    /// </summary>
    public static string Tiles(string path, IReadOnlyList<double[]> images, int imageHeight, int imageWidth, bool signed,
        int columns = 0, int scale = 4, IReadOnlyList<string>? captions = null, IReadOnlyList<bool>? captionOk = null, string? title = null)
    {
        int n = images.Count;
        if (n == 0) throw new ArgumentException("Charts.Tiles: no images.");
        foreach (var im in images)
            if (im.Length != imageHeight * imageWidth)
                throw new ArgumentException($"Charts.Tiles: an image has {im.Length} values; expected {imageHeight}x{imageWidth} = {imageHeight * imageWidth}.");
        if (columns <= 0) columns = (int)Math.Ceiling(Math.Sqrt(n));
        int rows = (n + columns - 1) / columns;
        int gap = 4, captionH = captions != null ? 16 : 0, titleH = title != null ? 24 : 0;
        int tileW = imageWidth * scale, tileH = imageHeight * scale;
        int width = Math.Max(columns * (tileW + gap) + gap, title != null ? 8 * title.Length + 2 * gap : 0);
        int height = titleH + rows * (tileH + captionH + gap) + gap;
        using var bmp = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var canvas = new SKCanvas(bmp);
        canvas.Clear(new SKColor(240, 240, 240));
        using var font = new SKFont(SKTypeface.Default, 12);
        using var ink = new SKPaint { IsAntialias = true, Color = SKColors.Black };
        if (title != null) canvas.DrawText(title, gap, 17, font, ink);
        for (int i = 0; i < n; i++)
        {
            var im = images[i];
            int x0 = gap + i % columns * (tileW + gap), y0 = titleH + gap + i / columns * (tileH + captionH + gap);
            double lo = im.Min(), hi = im.Max(), mag = Math.Max(Math.Abs(lo), Math.Abs(hi));
            for (int r = 0; r < imageHeight; r++)
                for (int c = 0; c < imageWidth; c++)
                {
                    double v = im[r * imageWidth + c];
                    SKColor color;
                    if (signed) color = Palette.Diverging(mag > 0 ? v / mag : 0);
                    else
                    {
                        byte g = (byte)Math.Round(255 * (hi > lo ? (v - lo) / (hi - lo) : 0));
                        color = new SKColor(g, g, g);
                    }
                    using var paint = new SKPaint { Color = color };
                    canvas.DrawRect(x0 + c * scale, y0 + r * scale, scale, scale, paint);
                }
            if (captions != null && i < captions.Count)
            {
                ink.Color = captionOk == null || i >= captionOk.Count ? SKColors.Black : captionOk[i] ? new SKColor(0, 120, 0) : new SKColor(190, 0, 0);
                canvas.DrawText(captions[i], x0, y0 + tileH + 13, font, ink);
                ink.Color = SKColors.Black;
            }
        }
        canvas.Flush();
        WritePng(bmp, path);
        return path;
    }

    /// <summary>Writes a bitmap as PNG.</summary>
    public static void WritePng(SKBitmap bmp, string path)
    {
        EnsureFolder(path);
        using var image = SKImage.FromBitmap(bmp);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        using var f = File.Create(path);
        data.SaveTo(f);
    }

    /// <summary>A bitmap's PNG bytes.</summary>
    public static byte[] PngBytes(SKBitmap bmp)
    {
        using var image = SKImage.FromBitmap(bmp);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static void EnsureFolder(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
    }
}
