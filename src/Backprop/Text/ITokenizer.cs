using System.Text.Json;
using System.Text.Json.Nodes;

namespace Backprop.Text;

/// <summary>
/// Text to token ids and back: the character, word and byte-level BPE tokenizers share this shape, so
/// datasets, training and generation do not care which one a run uses.
/// </summary>
public interface ITokenizer
{
    /// <summary>The kind, as <see cref="Tokenizers.FromJson"/> reads it back: "char", "word" or "bpe".</summary>
    string Kind { get; }

    /// <summary>Number of token ids (ids are 0..VocabSize-1).</summary>
    int VocabSize { get; }

    /// <summary>The token ids of <paramref name="text"/>.</summary>
    int[] Encode(string text);

    /// <summary>The text of <paramref name="tokens"/>.</summary>
    string Decode(ReadOnlySpan<int> tokens);

    /// <summary>The readable form of one token (for listings and the boundary token).</summary>
    string TokenText(int id);

    /// <summary>Everything needed to rebuild the tokenizer (<see cref="Tokenizers.FromJson"/>).</summary>
    JsonObject ToJson();
}

/// <summary>Saving, loading and rebuilding tokenizers of any kind.</summary>
public static class Tokenizers
{
    /// <summary>Rebuilds a tokenizer from <see cref="ITokenizer.ToJson"/>; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="FormatException">The JSON is not a tokenizer this build knows.</exception>
    public static ITokenizer FromJson(JsonObject json, string source = "tokenizer")
    {
        ArgumentNullException.ThrowIfNull(json);
        string kind = json["type"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";
        try
        {
            return kind switch
            {
                "char" => CharTokenizer.FromJson(json),
                "word" => WordTokenizer.FromJson(json),
                "bpe" => BpeTokenizer.FromJson(json),
                _ => throw new FormatException($"'type' must be char, word or bpe, found {json["type"]?.ToJsonString() ?? "nothing"}"),
            };
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or ArgumentException or JsonException)
        {
            throw new FormatException($"{source}: not a valid tokenizer: {e.Message.TrimEnd('.')}.", e);
        }
    }

    /// <summary>Writes <see cref="ITokenizer.ToJson"/> to <paramref name="path"/> (indented JSON).</summary>
    public static void Save(ITokenizer tokenizer, string path)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        File.WriteAllText(path, tokenizer.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Reads a tokenizer written by <see cref="Save"/>.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="FormatException">The file is not a tokenizer's JSON.</exception>
    public static ITokenizer Load(string path)
    {
        string text = TextFile.Read(path);
        JsonObject json;
        try
        {
            json = JsonNode.Parse(text) as JsonObject ?? throw new FormatException($"{path}: not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path}: not valid JSON: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        return FromJson(json, path);
    }

    /// <summary>
    /// Parses a tokenizer spec: "char", "word", "word:N" (at most N words), "bpe:N" (a vocabulary of N
    /// tokens); null when it is valid, else a one-line problem.
    /// </summary>
    public static string? CheckSpec(string spec)
    {
        var (kind, n) = ParseSpec(spec);
        return kind switch
        {
            null => $"unknown tokenizer '{spec}'; expected char, word, word:N or bpe:N (e.g. bpe:512).",
            "bpe" when n is null or < 257 => $"tokenizer '{spec}': bpe needs a vocabulary size above 256 (the bytes), e.g. bpe:512.",
            "word" when n is < 2 => $"tokenizer '{spec}': word:N needs N of at least 2 (the unknown token and one word).",
            "char" when n != null => $"tokenizer '{spec}': char takes no size.",
            _ => null,
        };
    }

    /// <summary>The kind and size of a spec ("bpe:512" → ("bpe", 512)); kind null when unknown.</summary>
    public static (string? Kind, int? Size) ParseSpec(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var parts = spec.Trim().ToLowerInvariant().Split(':');
        string kind = parts[0];
        if (kind is not ("char" or "word" or "bpe") || parts.Length > 2) return (null, null);
        if (parts.Length == 1) return (kind, null);
        return int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) ? (kind, n) : (null, null);
    }

    /// <summary>Trains (builds) the tokenizer a spec names on <paramref name="text"/>; <paramref name="minCount"/> applies to words (rarer ones become &lt;unk&gt;).</summary>
    public static ITokenizer Train(string spec, string text, int minCount = 1)
    {
        if (CheckSpec(spec) is string problem) throw new ArgumentException(problem, nameof(spec));
        var (kind, n) = ParseSpec(spec);
        return kind switch
        {
            "char" => CharTokenizer.FromText(text),
            "word" => WordTokenizer.Train(text, minCount, maxSize: n ?? int.MaxValue),
            _ => BpeTokenizer.Train(text, n!.Value),
        };
    }

    internal static int Int(JsonObject o, string key) =>
        o[key] is JsonValue v && v.TryGetValue<int>(out int i) ? i : throw new FormatException($"'{key}' must be an integer, found {o[key]?.ToJsonString() ?? "nothing"}");

    internal static string[] Strings(JsonObject o, string key) =>
        o[key] is JsonArray a
            ? [.. a.Select((n, i) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new FormatException($"'{key}[{i}]' must be a string"))]
            : throw new FormatException($"'{key}' must be an array of strings");
}
