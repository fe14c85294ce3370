using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Backprop.Cli.Training;

/// <summary>
/// Typed reads of what a checkpoint recorded (options, trainer state): a missing entry, a value of
/// the wrong type or one out of range is a <see cref="FormatException"/> whose one-line message
/// names the field and the value found.
/// </summary>
internal static class RecordedJson
{
    public static string Text(JsonObject o, string key, string prefix = "") =>
        o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.GetValue<string>() is { Length: > 0 and <= 4096 } s
            ? s : throw Wrong(prefix + key, "a non-empty string", o[key]);

    public static double Number(JsonObject o, string key, double min, double max, string prefix = "") =>
        IsNumber(o[key], out string text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d >= min && d <= max
            ? d : throw Wrong(prefix + key, $"a number in [{F(min)}, {F(max)}]", o[key]);

    /// <summary>A number, or NaN where the JSON holds null (how NaN and infinity are recorded).</summary>
    public static double NumberOrNaN(JsonObject o, string key, string prefix = "") =>
        o[key] is null ? double.NaN : Number(o, key, double.MinValue, double.MaxValue, prefix);

    public static int Int(JsonObject o, string key, int min, int max, string prefix = "") =>
        IsNumber(o[key], out string text) && int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i) && i >= min && i <= max
            ? i : throw Wrong(prefix + key, $"an integer in [{min}, {max}]", o[key]);

    /// <summary>By text: a value built in memory converts only to its own .NET type, one parsed from a file to any.</summary>
    private static bool IsNumber(JsonNode? n, out string text)
    {
        bool number = n is JsonValue v && v.GetValueKind() == JsonValueKind.Number;
        text = number ? n!.ToJsonString() : "";
        return number;
    }

    private static FormatException Wrong(string field, string expected, JsonNode? found)
    {
        string text = found?.ToJsonString() ?? "nothing";
        if (text.Length > 80) text = text[..77] + "...";
        return new FormatException($"'{field}' must be {expected}, found {text}");
    }

    private static string F(double v) => v.ToString("G", CultureInfo.InvariantCulture);
}
