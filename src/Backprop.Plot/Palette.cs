using SkiaSharp;

namespace Backprop.Plot;

/// <summary>Colours for classes (one hue each) and for signed values (blue, white, red).</summary>
public static class Palette
{
    // Hues in degrees, spread so that neighbouring class numbers differ clearly (up to 10 classes).
    private static readonly double[] Hues = [210, 25, 120, 0, 275, 50, 180, 320, 90, 240];

    /// <summary>The hue, in degrees, of class <paramref name="c"/>.</summary>
    public static double Hue(int c) => Hues[((c % Hues.Length) + Hues.Length) % Hues.Length];

    /// <summary>HSL (hue in degrees, saturation and lightness in [0, 1]) to an opaque colour.</summary>
    public static SKColor Hsl(double hue, double saturation, double lightness)
    {
        double c = (1 - Math.Abs(2 * lightness - 1)) * saturation;
        double h = (hue % 360 + 360) % 360 / 60;
        double x = c * (1 - Math.Abs(h % 2 - 1));
        var (r, g, b) = h switch
        {
            < 1 => (c, x, 0.0),
            < 2 => (x, c, 0.0),
            < 3 => (0.0, c, x),
            < 4 => (0.0, x, c),
            < 5 => (x, 0.0, c),
            _ => (c, 0.0, x),
        };
        double m = lightness - c / 2;
        static byte B(double v) => (byte)Math.Clamp(Math.Round(v * 255), 0, 255);
        return new SKColor(B(r + m), B(g + m), B(b + m));
    }

    /// <summary>
    /// The colour of a point of the decision map: the hue of the most probable class, lightness from
    /// its probability (white where the model is undecided among <paramref name="classes"/>, the full
    /// colour where it is sure).
    /// </summary>
    public static SKColor Region(int cls, double probability, int classes)
    {
        double chance = 1.0 / Math.Max(classes, 2);
        double sure = Math.Clamp((probability - chance) / (1 - chance), 0, 1);
        return Hsl(Hue(cls), 0.75, 0.95 - 0.4 * sure);
    }

    /// <summary>The colour of a point of class <paramref name="cls"/> (darker than any region).</summary>
    public static SKColor Point(int cls) => Hsl(Hue(cls), 0.8, 0.35);

    /// <summary>Blue for negative, white for zero, red for positive; <paramref name="v"/> in [-1, 1].</summary>
    public static SKColor Diverging(double v)
    {
        v = Math.Clamp(v, -1, 1);
        byte Fade(double t) => (byte)Math.Round(255 * (1 - Math.Abs(t)));
        return v >= 0 ? new SKColor(255, Fade(v), Fade(v)) : new SKColor(Fade(v), Fade(v), 255);
    }

    /// <summary>A ScottPlot colour from a Skia one.</summary>
    public static ScottPlot.Color ToScott(this SKColor c) => new(c.Red, c.Green, c.Blue, c.Alpha);
}
