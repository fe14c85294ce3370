using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Backprop.Text;

/// <summary>
/// Word-level tokens: runs of letters and digits (with inner apostrophes), single punctuation marks,
/// and line breaks are tokens; other whitespace separates them. Id 0 is <c>&lt;unk&gt;</c>, which stands
/// for every word outside the vocabulary. The vocabulary comes from the training text: words seen at
/// least a minimum number of times, the most frequent first, at most a maximum number. Decoding joins
/// tokens with single spaces (no space before punctuation or after a line break), so it gives the
/// text back up to spacing.
/// </summary>
public sealed partial class WordTokenizer : ITokenizer
{
    /// <summary>The unknown token's text (id 0).</summary>
    public const string Unknown = "<unk>";

    private readonly string[] _words;
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);

    [GeneratedRegex(@"\n|[\p{L}\p{N}]+(?:'[\p{L}\p{N}]+)*|[^\s\p{L}\p{N}]")]
    private static partial Regex TokenPattern();

    /// <summary>A tokenizer over these words in id order; the first must be <see cref="Unknown"/>.</summary>
    public WordTokenizer(IReadOnlyList<string> words)
    {
        ArgumentNullException.ThrowIfNull(words);
        if (words.Count == 0 || words[0] != Unknown)
            throw new ArgumentException($"WordTokenizer: the first word must be the unknown token {Unknown}.", nameof(words));
        _words = [.. words];
        for (int i = 0; i < _words.Length; i++)
            if (!_ids.TryAdd(_words[i], i))
                throw new ArgumentException($"WordTokenizer: '{_words[i]}' appears twice in the vocabulary.", nameof(words));
    }

    /// <summary>The pieces the tokenizer sees in <paramref name="text"/> (before the vocabulary applies).</summary>
    public static IEnumerable<string> Split(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (Match m in TokenPattern().Matches(text)) yield return m.Value;
    }

    /// <summary>The vocabulary of <paramref name="text"/>: words seen at least <paramref name="minCount"/> times, most frequent first (ties in ordinal order), at most <paramref name="maxSize"/> tokens including <c>&lt;unk&gt;</c>.</summary>
    public static WordTokenizer Train(string text, int minCount = 1, int maxSize = int.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSize, 2);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var w in Split(text)) counts[w] = counts.GetValueOrDefault(w) + 1;
        counts.Remove(Unknown);
        var words = counts.Where(kv => kv.Value >= minCount)
            .OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Take(maxSize - 1).Select(kv => kv.Key);
        return new WordTokenizer([Unknown, .. words]);
    }

    /// <inheritdoc/>
    public string Kind => "word";

    /// <inheritdoc/>
    public int VocabSize => _words.Length;

    /// <summary>The id of a word, 0 (unknown) when it is not in the vocabulary.</summary>
    public int IdOf(string word) => _ids.GetValueOrDefault(word, 0);

    /// <inheritdoc/>
    public int[] Encode(string text) => [.. Split(text).Select(IdOf)];

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> tokens)
    {
        var sb = new StringBuilder();
        string prev = "\n";
        foreach (int t in tokens)
        {
            string w = TokenText(t);
            bool glue = prev == "\n" || w == "\n" || (w.Length == 1 && char.IsPunctuation(w[0]) && w is not ("(" or "[" or "{" or "\"")) || prev is "(" or "[" or "{";
            if (!glue && sb.Length > 0) sb.Append(' ');
            sb.Append(w);
            prev = w;
        }
        return sb.ToString();
    }

    /// <inheritdoc/>
    public string TokenText(int id) => (uint)id < (uint)_words.Length
        ? _words[id]
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"WordTokenizer: token {id} is not in 0..{_words.Length - 1}.");

    /// <inheritdoc/>
    public JsonObject ToJson() => new() { ["type"] = Kind, ["words"] = new JsonArray([.. _words.Select(w => (JsonNode)w)]) };

    internal static WordTokenizer FromJson(JsonObject o) => new(Tokenizers.Strings(o, "words"));
}
