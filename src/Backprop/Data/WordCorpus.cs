namespace Backprop.Data;

/// <summary>
/// A list of words (one per line, like makemore's names.txt) for character-level models that
/// generate whole words: the vocabulary is a boundary token (id 0, '.' by default) that marks both
/// the start and the end of a word, followed by the words' characters in sorted order.
/// </summary>
public sealed class WordCorpus
{
    private readonly Dictionary<char, int> _ids = [];

    private WordCorpus(string[] words, char boundary, string name)
    {
        Words = words;
        Boundary = boundary;
        Name = name;
        var set = new SortedSet<char>();
        foreach (var w in words) foreach (var ch in w) set.Add(ch);
        Characters = boundary + string.Concat(set);
        for (int i = 0; i < Characters.Length; i++) _ids[Characters[i]] = i;
    }

    /// <summary>Loads a UTF-8 file of one word per line (blank lines are skipped, a trailing CR is dropped).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">The file is empty, not UTF-8, or a word contains the boundary character.</exception>
    public static WordCorpus Load(string path, char boundary = '.')
    {
        ArgumentNullException.ThrowIfNull(path);
        if (IO.FileKinds.RefuseToRead(path) is string refused)
            throw new DataFormatException($"{path}: {refused}; a word list must be a regular file.", path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Word list not found: {Path.GetFullPath(path)}", path);
        string text = TextCorpus.DecodeUtf8(File.ReadAllBytes(path), path);
        var words = new List<string>();
        int line = 0;
        foreach (var raw in text.Split('\n'))
        {
            line++;
            var w = raw.TrimEnd('\r');
            if (w.Length == 0) continue;
            int bad = w.IndexOf(boundary);
            if (bad >= 0)
                throw new DataFormatException(
                    $"{path}, line {line}: the word '{w}' contains the boundary character '{boundary}' (column {bad + 1}); choose another boundary.", path, line: line);
            words.Add(w);
        }
        if (words.Count == 0)
            throw new DataFormatException($"{path}: no words: the file has only blank lines.", path, 0);
        return new WordCorpus([.. words], boundary, path);
    }

    /// <summary>A corpus over the given words.</summary>
    public static WordCorpus FromWords(IEnumerable<string> words, char boundary = '.')
    {
        ArgumentNullException.ThrowIfNull(words);
        string[] list = [.. words];
        if (list.Length == 0) throw new ArgumentException("WordCorpus.FromWords: no words given.", nameof(words));
        foreach (var w in list)
            if (string.IsNullOrEmpty(w) || w.Contains(boundary))
                throw new ArgumentException($"WordCorpus.FromWords: '{w}' is empty or contains the boundary character '{boundary}'.", nameof(words));
        return new WordCorpus(list, boundary, "words");
    }

    /// <summary>Where the words came from.</summary>
    public string Name { get; }

    /// <summary>The words, in file order.</summary>
    public IReadOnlyList<string> Words { get; }

    /// <summary>The start/end token's character (id 0).</summary>
    public char Boundary { get; }

    /// <summary>The vocabulary in id order: the boundary, then the words' characters sorted (".abc…z" for names.txt).</summary>
    public string Characters { get; }

    /// <summary>Number of tokens (27 for names.txt).</summary>
    public int VocabularySize => Characters.Length;

    /// <summary>Token ids of the characters of <paramref name="word"/> (no boundary tokens added).</summary>
    public int[] Encode(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        var ids = new int[word.Length];
        for (int i = 0; i < word.Length; i++)
            ids[i] = _ids.TryGetValue(word[i], out int id)
                ? id
                : throw new ArgumentException($"WordCorpus.Encode: character '{word[i]}' at position {i} is not in the vocabulary \"{Characters}\".", nameof(word));
        return ids;
    }

    /// <summary>The characters of token ids <paramref name="tokens"/> (the boundary shows as <see cref="Boundary"/>).</summary>
    public string Decode(ReadOnlySpan<int> tokens)
    {
        var chars = new char[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
            chars[i] = (uint)tokens[i] < (uint)Characters.Length
                ? Characters[tokens[i]]
                : throw new ArgumentOutOfRangeException(nameof(tokens), tokens[i], $"WordCorpus.Decode: token {tokens[i]} at position {i} is not in 0..{Characters.Length - 1}.");
        return new string(chars);
    }

    /// <summary>
    /// makemore's training pairs: for each word, and each of its characters followed by the end
    /// boundary, the previous <paramref name="contextLength"/> tokens (padded with the boundary at the
    /// start) and that token. Inputs int64 [N, contextLength], targets int64 [N]; N is the total word
    /// length plus one per word. A context of 1 gives the bigrams.
    /// </summary>
    /// <param name="contextLength">Tokens of context.</param>
    /// <param name="start">First word to use.</param>
    /// <param name="count">Number of words (default: all from <paramref name="start"/>).</param>
    public TensorDataset Windows(int contextLength, int start = 0, int? count = null)
    {
        if (contextLength <= 0)
            throw new ArgumentOutOfRangeException(nameof(contextLength), contextLength, "WordCorpus.Windows: contextLength must be positive.");
        int n = count ?? Words.Count - start;
        if (start < 0 || n < 0 || start > Words.Count - n)
            throw new ArgumentOutOfRangeException(nameof(count), $"WordCorpus.Windows: words {start}..{(long)start + n - 1} are not within the {Words.Count} words.");
        long total = 0;
        for (int w = start; w < start + n; w++) total += Words[w].Length + 1;
        if (total == 0) throw new ArgumentException("WordCorpus.Windows: no words selected.", nameof(count));
        int rows = checked((int)total);
        var x = Tensor.HostEmpty<long>([rows, contextLength]);
        var y = Tensor.HostEmpty<long>([rows]);
        var xs = x.Span<long>();
        var ys = y.Span<long>();
        var context = new long[contextLength];
        int r = 0;
        for (int w = start; w < start + n; w++)
        {
            Array.Clear(context);   // the boundary's id is 0
            var word = Words[w];
            for (int i = 0; i <= word.Length; i++)
            {
                int id = i < word.Length ? _ids[word[i]] : 0;
                context.CopyTo(xs.Slice(r * contextLength, contextLength));
                ys[r++] = id;
                Array.Copy(context, 1, context, 0, contextLength - 1);
                context[^1] = id;
            }
        }
        return new TensorDataset(x, y) { ClassNames = [.. Characters.Select(c => c.ToString())] };
    }
}
