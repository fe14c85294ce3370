using System.Buffers;
using System.Text;

namespace Backprop.Data;

/// <summary>
/// A text for character-level language modelling: the text, its sorted character vocabulary (by
/// Unicode code point, like Python's <c>sorted(set(text))</c>), and the text encoded as token ids.
/// </summary>
public sealed class TextCorpus
{
    private readonly Rune[] _vocabulary;
    private readonly Dictionary<int, int> _ids = [];
    private readonly int[] _ascii = new int[128];   // ids of ASCII characters (-1 if absent): the common case without hashing

    private TextCorpus(string text, string name)
    {
        Name = name;
        Text = text;
        var set = new SortedSet<int>();
        foreach (var r in text.EnumerateRunes()) set.Add(r.Value);
        _vocabulary = [.. set.Select(v => new Rune(v))];
        Array.Fill(_ascii, -1);
        for (int i = 0; i < _vocabulary.Length; i++)
        {
            _ids[_vocabulary[i].Value] = i;
            if (_vocabulary[i].Value < 128) _ascii[_vocabulary[i].Value] = i;
        }
        Characters = string.Concat(_vocabulary.Select(r => r.ToString()));
        Tokens = Encode(text);
    }

    /// <summary>Loads a UTF-8 text file (a leading byte-order mark is skipped).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">The file is empty or not valid UTF-8 (the message gives the byte offset and line).</exception>
    public static TextCorpus Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (IO.FileKinds.RefuseToRead(path) is string refused)
            throw new DataFormatException($"{path}: {refused}; a text corpus must be a regular file.", path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Text file not found: {Path.GetFullPath(path)}", path);
        return new TextCorpus(DecodeUtf8(File.ReadAllBytes(path), path), path);
    }

    /// <summary>A corpus over <paramref name="text"/> held in memory.</summary>
    public static TextCorpus FromText(string text, string name = "text")
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) throw new ArgumentException("TextCorpus.FromText: the text is empty; a corpus needs at least one character.", nameof(text));
        return new TextCorpus(text, name);
    }

    /// <summary>Strict UTF-8 decoding whose errors name the file, the byte offset and the line.</summary>
    internal static string DecodeUtf8(byte[] bytes, string path)
    {
        ReadOnlySpan<byte> b = bytes;
        int start = b.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
        if (b.Length - start == 0)
            throw new DataFormatException($"{path}: the file is empty{(start > 0 ? " (it holds only a byte-order mark)" : "")}; a corpus needs at least one character.", path, 0);
        var chars = ArrayPool<char>.Shared.Rent(b.Length);
        try
        {
            var status = System.Text.Unicode.Utf8.ToUtf16(b[start..], chars, out int read, out int written, replaceInvalidSequences: false);
            if (status != OperationStatus.Done)
            {
                int offset = start + read;
                int line = b[..offset].Count((byte)'\n') + 1;
                // ToUtf16 reports a sequence cut by the end of the file as invalid; Rune tells the two apart.
                bool cut = status == OperationStatus.NeedMoreData || Rune.DecodeFromUtf8(b[offset..], out _, out _) == OperationStatus.NeedMoreData;
                string what = cut
                    ? "the file ends inside a multi-byte UTF-8 sequence"
                    : $"invalid UTF-8 (byte 0x{b[offset]:X2})";
                throw new DataFormatException($"{path}: {what} at byte {offset} (line {line}); the file must be UTF-8 text.", path, offset, line);
            }
            return new string(chars, 0, written);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    /// <summary>Where the text came from (the file path, or the name given to <see cref="FromText"/>).</summary>
    public string Name { get; }

    /// <summary>The whole text.</summary>
    public string Text { get; }

    /// <summary>The vocabulary: every distinct character, sorted by code point; token id = index.</summary>
    public IReadOnlyList<Rune> Vocabulary => _vocabulary;

    /// <summary>The vocabulary as one string, in token-id order.</summary>
    public string Characters { get; }

    /// <summary>Number of distinct characters (65 for Tiny Shakespeare).</summary>
    public int VocabularySize => _vocabulary.Length;

    /// <summary>The whole text as token ids (one per character).</summary>
    public int[] Tokens { get; }

    /// <summary>Token ids of <paramref name="text"/>, one per character.</summary>
    /// <exception cref="ArgumentException">A character is not in the vocabulary.</exception>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length);
        int pos = 0;
        foreach (var r in text.EnumerateRunes())
        {
            int id = r.Value < 128 ? _ascii[r.Value] : _ids.GetValueOrDefault(r.Value, -1);
            if (id < 0)
                throw new ArgumentException(
                    $"TextCorpus.Encode: character '{r}' (U+{r.Value:X4}) at position {pos} is not in the vocabulary of {VocabularySize} characters of {Name}.", nameof(text));
            ids.Add(id);
            pos += r.Utf16SequenceLength;
        }
        return [.. ids];
    }

    /// <summary>The text of token ids <paramref name="tokens"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in 0..VocabularySize-1.</exception>
    public string Decode(ReadOnlySpan<int> tokens)
    {
        var sb = new StringBuilder(tokens.Length);
        for (int i = 0; i < tokens.Length; i++)
        {
            int t = tokens[i];
            if ((uint)t >= (uint)_vocabulary.Length)
                throw new ArgumentOutOfRangeException(nameof(tokens), t, $"TextCorpus.Decode: token {t} at position {i} is not in 0..{_vocabulary.Length - 1}.");
            sb.Append(_vocabulary[t].ToString());
        }
        return sb.ToString();
    }

    /// <summary>
    /// The nanoGPT split of <see cref="Tokens"/>: the first <paramref name="trainFraction"/> (floor of
    /// n·fraction tokens) for training, the rest for validation.
    /// </summary>
    public (int[] Train, int[] Validation) Split(double trainFraction = 0.9)
    {
        if (!(trainFraction > 0 && trainFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(trainFraction), trainFraction, "TextCorpus.Split: trainFraction must be between 0 and 1 (exclusive).");
        int cut = (int)(Tokens.Length * trainFraction);
        return (Tokens[..cut], Tokens[cut..]);
    }
}
