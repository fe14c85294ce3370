using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Backprop;

/// <summary>
/// Typed reads of state-dict metadata (JSON that may come from a file): a value of the wrong type is
/// an <see cref="ArgumentException"/> whose one-line message names the field and the value found,
/// never System.Text.Json's "An element of type 'String' cannot be converted to a 'System.Double'".
/// </summary>
internal static class MetaValues
{
    /// <summary>A number, or null when absent (JSON null or no entry).</summary>
    public static double? Number(JsonNode? n, string field) =>
        n is null ? null : IsNumber(n, out string text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : throw Wrong(field, "a number", n);

    /// <summary>An integer in [<paramref name="min"/>, <paramref name="max"/>], or null when absent.</summary>
    public static long? Integer(JsonNode? n, string field, long min = long.MinValue, long max = long.MaxValue)
    {
        if (n is null) return null;
        if (IsNumber(n, out string text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l) && l >= min && l <= max) return l;
        throw Wrong(field, min == long.MinValue && max == long.MaxValue ? "an integer" : $"an integer in [{min}, {max}]", n);
    }

    /// <summary>true or false, or null when absent.</summary>
    public static bool? Flag(JsonNode? n, string field) =>
        n is null ? null : n is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValue<bool>() : throw Wrong(field, "true or false", n);

    /// <summary>A string, or null when absent.</summary>
    public static string? Text(JsonNode? n, string field) =>
        n is null ? null : n is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw Wrong(field, "a string", n);

    /// <summary>
    /// Whether <paramref name="n"/> is a JSON number, and its text. By text because a value built in
    /// memory (JsonValue.Create(3)) converts only to its own .NET type, one parsed from a file to any.
    /// </summary>
    private static bool IsNumber(JsonNode n, out string text)
    {
        bool number = n is JsonValue v && v.GetValueKind() == JsonValueKind.Number;
        text = number ? n.ToJsonString() : "";
        return number;
    }

    private static ArgumentException Wrong(string field, string expected, JsonNode n)
    {
        string found = n.ToJsonString();
        if (found.Length > 80) found = found[..77] + "...";
        return new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"'{field}' must be {expected}, found {found}."));
    }

    /// <summary>
    /// An exception's message as one line without the framework's additions: an
    /// <see cref="ArgumentException"/>'s " (Parameter 'x')" and an <see cref="ArgumentOutOfRangeException"/>'s
    /// "Actual value was x." line (the messages here already name the field and the value).
    /// </summary>
    public static string PlainMessage(Exception e)
    {
        string m = e.Message;
        if (e is ArgumentOutOfRangeException { ActualValue: not null })
        {
            int nl = m.LastIndexOf('\n');
            if (nl >= 0) m = m[..nl].TrimEnd('\r');
        }
        if (e is ArgumentException { ParamName: string p })
            m = m.Replace($" (Parameter '{p}')", "", StringComparison.Ordinal);
        return m.ReplaceLineEndings(" ").TrimEnd('.', ' ');
    }
}
