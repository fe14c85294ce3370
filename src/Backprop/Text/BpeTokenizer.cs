using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Backprop.Text;

/// <summary>
/// Byte-level byte-pair encoding (GPT-2's scheme): ids 0..255 are the bytes of the UTF-8 text, and
/// each learned merge adds one token that stands for two earlier ones. Text is first cut into
/// pieces (words with their leading space, numbers, punctuation runs, whitespace; GPT-2's pattern)
/// and merges never cross a piece boundary. Any text round-trips: <c>Decode(Encode(s)) == s</c>.
/// </summary>
public sealed partial class BpeTokenizer : ITokenizer
{
    /// <summary>The 256 byte tokens that every vocabulary starts with.</summary>
    public const int ByteTokens = 256;

    private readonly (int A, int B)[] _merges;
    private readonly Dictionary<long, int> _rank = [];      // pair → merge index (lower merges first)
    private readonly byte[][] _bytes;                        // the bytes each token stands for
    private readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly Lock _cacheLock = new();

    [GeneratedRegex(@"'(?:s|t|re|ve|m|ll|d)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex PiecePattern();

    /// <summary>A tokenizer with these merges in order: merge i makes token 256 + i from tokens A and B (both below 256 + i).</summary>
    public BpeTokenizer(IReadOnlyList<(int A, int B)> merges)
    {
        ArgumentNullException.ThrowIfNull(merges);
        _merges = [.. merges];
        _bytes = new byte[ByteTokens + _merges.Length][];
        for (int i = 0; i < ByteTokens; i++) _bytes[i] = [(byte)i];
        for (int i = 0; i < _merges.Length; i++)
        {
            var (a, b) = _merges[i];
            int id = ByteTokens + i;
            if ((uint)a >= (uint)id || (uint)b >= (uint)id)
                throw new ArgumentException($"BpeTokenizer: merge {i} ({a}, {b}) refers to a token not defined before it (ids below {id}).", nameof(merges));
            if (!_rank.TryAdd(Key(a, b), i))
                throw new ArgumentException($"BpeTokenizer: merge {i} ({a}, {b}) repeats an earlier merge.", nameof(merges));
            _bytes[id] = [.. _bytes[a], .. _bytes[b]];
        }
    }

    /// <summary>The merges in order (token 256 + i = A followed by B).</summary>
    public IReadOnlyList<(int A, int B)> Merges => _merges;

    /// <inheritdoc/>
    public string Kind => "bpe";

    /// <inheritdoc/>
    public int VocabSize => ByteTokens + _merges.Length;

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    /// <summary>The pieces merges stay within (they concatenate to <paramref name="text"/>).</summary>
    public static IEnumerable<string> Pieces(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int at = 0;
        foreach (Match m in PiecePattern().Matches(text))
        {
            if (m.Index > at) yield return text[at..m.Index];   // never happens with this pattern; kept so nothing is ever dropped
            yield return m.Value;
            at = m.Index + m.Length;
        }
        if (at < text.Length) yield return text[at..];
    }

    /// <summary>
    /// Learns merges on <paramref name="text"/> until the vocabulary has <paramref name="vocabSize"/>
    /// tokens (or no pair is left to merge). Each step merges the most frequent adjacent pair (ties: the
    /// pair with the lowest ids); pair counts are kept up to date incrementally, touching only the
    /// distinct pieces that contain the merged pair, so a step costs what it changes rather than a
    /// rescan of the corpus.
    /// </summary>
    public static BpeTokenizer Train(string text, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (vocabSize < ByteTokens)
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, $"BpeTokenizer.Train: the vocabulary must have at least {ByteTokens} tokens (the bytes).");
        // Distinct pieces with their counts: merges act on each distinct piece once.
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var p in Pieces(text)) counts[p] = counts.GetValueOrDefault(p) + 1;
        var words = new List<List<int>>(counts.Count);
        var freq = new List<long>(counts.Count);
        foreach (var (p, c) in counts)
        {
            words.Add([.. Encoding.UTF8.GetBytes(p).Select(b => (int)b)]);
            freq.Add(c);
        }
        var pairCount = new Dictionary<long, long>();
        var pairWords = new Dictionary<long, HashSet<int>>();
        for (int w = 0; w < words.Count; w++) AddPairs(w, +1, null);
        // Highest count first, then lowest pair; stale entries (count changed since) are skipped when popped.
        var heap = new PriorityQueue<long, (long Count, long Pair)>(Comparer<(long Count, long Pair)>.Create(
            (x, y) => x.Count != y.Count ? y.Count.CompareTo(x.Count) : x.Pair.CompareTo(y.Pair)));
        foreach (var (pair, c) in pairCount) heap.Enqueue(pair, (c, pair));

        var merges = new List<(int, int)>();
        var changed = new HashSet<long>();
        while (ByteTokens + merges.Count < vocabSize && heap.TryDequeue(out long best, out var pri))
        {
            if (pairCount.GetValueOrDefault(best) != pri.Count || pri.Count <= 0) continue;
            int a = (int)(best >> 32), b = (int)(uint)best, id = ByteTokens + merges.Count;
            merges.Add((a, b));
            changed.Clear();
            foreach (int w in pairWords[best].ToArray())
            {
                var s = words[w];
                if (!Contains(s, a, b)) continue;
                AddPairs(w, -1, changed);
                int o = 0;
                for (int i = 0; i < s.Count; i++)
                    if (i + 1 < s.Count && s[i] == a && s[i + 1] == b) { s[o++] = id; i++; }
                    else s[o++] = s[i];
                s.RemoveRange(o, s.Count - o);
                AddPairs(w, +1, changed);
            }
            pairWords.Remove(best);
            foreach (var p in changed)
                if (pairCount.TryGetValue(p, out long c) && c > 0) heap.Enqueue(p, (c, p));
        }
        return new BpeTokenizer(merges);

        void AddPairs(int w, int sign, HashSet<long>? touched)
        {
            var s = words[w];
            for (int i = 0; i + 1 < s.Count; i++)
            {
                long k = Key(s[i], s[i + 1]);
                long c = pairCount.GetValueOrDefault(k) + sign * freq[w];
                if (c == 0) pairCount.Remove(k); else pairCount[k] = c;
                touched?.Add(k);
                if (sign > 0)
                {
                    if (!pairWords.TryGetValue(k, out var set)) pairWords[k] = set = [];
                    set.Add(w);
                }
            }
        }
    }

    private static bool Contains(List<int> s, int a, int b)
    {
        for (int i = 0; i + 1 < s.Count; i++) if (s[i] == a && s[i + 1] == b) return true;
        return false;
    }

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 2 + 1);
        foreach (var piece in Pieces(text)) ids.AddRange(EncodePiece(piece));
        return [.. ids];
    }

    private int[] EncodePiece(string piece)
    {
        lock (_cacheLock)
            if (_cache.TryGetValue(piece, out var hit)) return hit;
        var s = Encoding.UTF8.GetBytes(piece).Select(b => (int)b).ToList();
        while (s.Count > 1)
        {
            // The earliest-learned merge present, applied everywhere in the piece: the order training used.
            int bestRank = int.MaxValue;
            for (int i = 0; i + 1 < s.Count; i++)
                if (_rank.TryGetValue(Key(s[i], s[i + 1]), out int r) && r < bestRank) bestRank = r;
            if (bestRank == int.MaxValue) break;
            var (a, b) = _merges[bestRank];
            int o = 0;
            for (int i = 0; i < s.Count; i++)
                if (i + 1 < s.Count && s[i] == a && s[i + 1] == b) { s[o++] = ByteTokens + bestRank; i++; }
                else s[o++] = s[i];
            s.RemoveRange(o, s.Count - o);
        }
        int[] result = [.. s];
        lock (_cacheLock)
            if (_cache.Count < 1 << 16) _cache[piece] = result;
        return result;
    }

    /// <summary>The bytes of <paramref name="tokens"/> (their UTF-8 text may end inside a character).</summary>
    public byte[] DecodeBytes(ReadOnlySpan<int> tokens)
    {
        var bytes = new List<byte>(tokens.Length * 2);
        for (int i = 0; i < tokens.Length; i++)
        {
            int t = tokens[i];
            if ((uint)t >= (uint)_bytes.Length)
                throw new ArgumentOutOfRangeException(nameof(tokens), t, $"BpeTokenizer: token {t} at position {i} is not in 0..{_bytes.Length - 1}.");
            bytes.AddRange(_bytes[t]);
        }
        return [.. bytes];
    }

    /// <inheritdoc/>
    /// <remarks>Bytes that do not form whole UTF-8 characters (a sampled sequence may cut one) decode to U+FFFD.</remarks>
    public string Decode(ReadOnlySpan<int> tokens) => Encoding.UTF8.GetString(DecodeBytes(tokens));

    /// <inheritdoc/>
    public string TokenText(int id) => Decode([id]);

    /// <inheritdoc/>
    public JsonObject ToJson() => new()
    {
        ["type"] = Kind,
        ["merges"] = new JsonArray([.. _merges.Select(m => (JsonNode)new JsonArray(m.A, m.B))]),
    };

    internal static BpeTokenizer FromJson(JsonObject o)
    {
        if (o["merges"] is not JsonArray a) throw new FormatException("'merges' must be an array of [a, b] pairs");
        var merges = new List<(int, int)>(a.Count);
        for (int i = 0; i < a.Count; i++)
            merges.Add(a[i] is JsonArray { Count: 2 } p && p[0] is JsonValue x && x.TryGetValue<int>(out int ia) && p[1] is JsonValue y && y.TryGetValue<int>(out int ib)
                ? (ia, ib) : throw new FormatException($"'merges[{i}]' must be a pair of integers, found {a[i]?.ToJsonString() ?? "null"}"));
        return new BpeTokenizer(merges);
    }
}
