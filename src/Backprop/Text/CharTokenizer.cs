using System.Text;
using System.Text.Json.Nodes;

namespace Backprop.Text;

/// <summary>
/// One token per character (Unicode scalar value), the vocabulary sorted by code point like Python's
/// <c>sorted(set(text))</c>. With a boundary character (makemore's '.'), the boundary is id 0 and the
/// text's characters follow: the token that both starts and ends a name.
/// </summary>
public sealed class CharTokenizer : ITokenizer
{
    private readonly Rune[] _vocab;
    private readonly Dictionary<int, int> _ids = [];

    /// <summary>A tokenizer over exactly these characters, in id order (no duplicates).</summary>
    /// <param name="characters">The vocabulary in id order.</param>
    /// <param name="boundary">Whether id 0 is a boundary token (then it must be the first character).</param>
    public CharTokenizer(string characters, bool boundary = false)
    {
        ArgumentNullException.ThrowIfNull(characters);
        _vocab = [.. characters.EnumerateRunes()];
        if (_vocab.Length == 0) throw new ArgumentException("CharTokenizer: the vocabulary is empty.", nameof(characters));
        for (int i = 0; i < _vocab.Length; i++)
            if (!_ids.TryAdd(_vocab[i].Value, i))
                throw new ArgumentException($"CharTokenizer: character '{_vocab[i]}' (U+{_vocab[i].Value:X4}) appears twice in the vocabulary.", nameof(characters));
        HasBoundary = boundary;
    }

    /// <summary>The vocabulary of <paramref name="text"/> (its distinct characters, sorted); with a boundary it comes first as id 0.</summary>
    /// <exception cref="ArgumentException">The text is empty, or contains the boundary character.</exception>
    public static CharTokenizer FromText(string text, char? boundary = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) throw new ArgumentException("CharTokenizer.FromText: the text is empty.", nameof(text));
        var set = new SortedSet<int>();
        foreach (var r in text.EnumerateRunes()) set.Add(r.Value);
        if (boundary is char b && set.Contains(b))
            throw new ArgumentException($"CharTokenizer.FromText: the text contains the boundary character '{b}'; choose another boundary.", nameof(text));
        string chars = (boundary?.ToString() ?? "") + string.Concat(set.Select(v => new Rune(v).ToString()));
        return new CharTokenizer(chars, boundary != null);
    }

    /// <inheritdoc/>
    public string Kind => "char";

    /// <inheritdoc/>
    public int VocabSize => _vocab.Length;

    /// <summary>Whether id 0 is the boundary token.</summary>
    public bool HasBoundary { get; }

    /// <summary>The vocabulary as one string, in id order.</summary>
    public string Characters => string.Concat(_vocab.Select(r => r.ToString()));

    /// <summary>The id of a character, or -1 when it is not in the vocabulary.</summary>
    public int IdOf(Rune r) => _ids.GetValueOrDefault(r.Value, -1);

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">A character is not in the vocabulary (named with its position).</exception>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length);
        int pos = 0;
        foreach (var r in text.EnumerateRunes())
        {
            if (!_ids.TryGetValue(r.Value, out int id))
                throw new ArgumentException($"CharTokenizer: character '{r}' (U+{r.Value:X4}) at position {pos} is not in the vocabulary of {VocabSize} characters.", nameof(text));
            ids.Add(id);
            pos += r.Utf16SequenceLength;
        }
        return [.. ids];
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> tokens)
    {
        var sb = new StringBuilder(tokens.Length);
        for (int i = 0; i < tokens.Length; i++) sb.Append(TokenText(tokens[i]));
        return sb.ToString();
    }

    /// <inheritdoc/>
    public string TokenText(int id) => (uint)id < (uint)_vocab.Length
        ? _vocab[id].ToString()
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"CharTokenizer: token {id} is not in 0..{_vocab.Length - 1}.");

    /// <inheritdoc/>
    public JsonObject ToJson() => new() { ["type"] = Kind, ["characters"] = Characters, ["boundary"] = HasBoundary };

    internal static CharTokenizer FromJson(JsonObject o) =>
        new(o["characters"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new FormatException("'characters' must be a string"),
            o["boundary"] is JsonValue b && b.TryGetValue<bool>(out bool hb) && hb);
}
