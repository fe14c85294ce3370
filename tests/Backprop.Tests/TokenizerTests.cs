using System.Text;
using Backprop.Data;
using Backprop.Text;

namespace Backprop.Tests;

public class TokenizerTests
{
    private const string Mixed = "Hello, world! Ünïcödé 日本語 🙂 tabs\tand\r\nnewlines  double  spaces 12345 it's";

    [Fact]
    public void CharTokenizerRoundTripsAndPutsTheBoundaryFirst()
    {
        var t = CharTokenizer.FromText("emma\nolivia\nava".Replace("\n", ""), boundary: '.');
        Assert.Equal(".aeilmov", t.Characters);
        Assert.Equal([0, 2, 5, 5, 1, 0], t.Encode(".emma."));
        Assert.Equal(".emma.", t.Decode(t.Encode(".emma.")));
        var u = CharTokenizer.FromText(Mixed);
        Assert.Equal(Mixed, u.Decode(u.Encode(Mixed)));
        Assert.Equal(Mixed.EnumerateRunes().Count(), u.Encode(Mixed).Length);   // 🙂 is one token, not two UTF-16 halves
        var e = Assert.Throws<ArgumentException>(() => t.Encode("emz"));
        Assert.Contains("'z'", e.Message);
        Assert.Contains("position 2", e.Message);
    }

    [Fact]
    public void WordTokenizerMapsRareAndUnseenWordsToUnknown()
    {
        var t = WordTokenizer.Train("the cat sat on the mat. the cat ran.", minCount: 2);
        Assert.Equal(["<unk>", "the", ".", "cat"], Enumerable.Range(0, t.VocabSize).Select(t.TokenText));
        Assert.Equal([1, 3, 0, 0, 1, 0, 2], t.Encode("the cat sat on the dog."));
        Assert.Equal("the cat <unk> <unk> the <unk>.", t.Decode(t.Encode("the cat sat on the dog.")));
        var capped = WordTokenizer.Train("a a a b b c", maxSize: 3);
        Assert.Equal(3, capped.VocabSize);
        Assert.Equal([1, 2, 0], capped.Encode("a b c"));
        // Without unknowns, decoding gives the text back up to spacing.
        var all = WordTokenizer.Train("To be, or not to be:\nthat is the question.");
        Assert.Equal("To be, or not to be:\nthat is the question.", all.Decode(all.Encode("To be, or not to be:\nthat is the question.")));
        var json = WordTokenizer.Train(Mixed);
        Assert.Equal(json.Encode(Mixed), Tokenizers.FromJson(json.ToJson()).Encode(Mixed));
    }

    [Fact]
    public void BpeMergesMatchTheHandComputedExample()
    {
        // Wikipedia's example: aaabdaaabac → aa (4 times) becomes Z = 256: ZabdZabac; then ab and Za tie
        // at 2 and the lower pair (a, b) wins: Y = 257, ZYdZYac; then ZY (2 times): X = 258, XdXac.
        var t = BpeTokenizer.Train("aaabdaaabac", 259);
        Assert.Equal([(97, 97), (97, 98), (256, 257)], t.Merges);
        Assert.Equal([258, 100, 258, 97, 99], t.Encode("aaabdaaabac"));
        Assert.Equal("aaab", t.TokenText(258));
        // Merges stay inside pieces ("ab", " ab", " ab", " xy"): " ab" is a token, "ab ab" never is.
        var u = BpeTokenizer.Train("ab ab ab xy", 258);
        Assert.Equal([(97, 98), (32, 256)], u.Merges);
        Assert.Equal([256, 257, 257, 32, 120, 121], u.Encode("ab ab ab xy"));
    }

    [Fact]
    public void BpeTrainingMatchesANaiveRecountEveryMerge()
    {
        var g = new Generator(3);
        var sb = new StringBuilder();
        string[] words = ["the", "then", "there", "other", "hat", "that", "ethic", "éthé", "3333", "!!"];
        for (int i = 0; i < 400; i++) sb.Append(i % 7 == 0 ? "\n" : " ").Append(words[g.NextInt(words.Length)]);
        string text = sb.ToString();
        var fast = BpeTokenizer.Train(text, 256 + 40);
        Assert.Equal(NaiveMerges(text, 40), fast.Merges);
    }

    /// <summary>The definition: recount every adjacent pair over the whole corpus before each merge.</summary>
    private static List<(int, int)> NaiveMerges(string text, int n)
    {
        var pieces = BpeTokenizer.Pieces(text).Select(p => Encoding.UTF8.GetBytes(p).Select(b => (int)b).ToList()).ToList();
        var merges = new List<(int, int)>();
        for (int m = 0; m < n; m++)
        {
            var counts = new Dictionary<(int, int), int>();
            foreach (var s in pieces)
                for (int i = 0; i + 1 < s.Count; i++) counts[(s[i], s[i + 1])] = counts.GetValueOrDefault((s[i], s[i + 1])) + 1;
            if (counts.Count == 0) break;
            var best = counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key.Item1).ThenBy(kv => kv.Key.Item2).First().Key;
            merges.Add(best);
            foreach (var s in pieces)
                for (int i = 0; i + 1 < s.Count; i++)
                    if ((s[i], s[i + 1]) == best) { s[i] = 256 + m; s.RemoveAt(i + 1); }
        }
        return merges;
    }

    [Fact]
    public void BpeRoundTripsAnyTextAndSurvivesJson()
    {
        var t = BpeTokenizer.Train(Mixed + " hello hello world world", 300);
        Assert.Equal(Mixed, t.Decode(t.Encode(Mixed)));
        // Text the vocabulary never saw: byte tokens cover it.
        const string unseen = "Ωμέγα — ∑ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u0000 end";
        Assert.Equal(unseen, t.Decode(t.Encode(unseen)));
        var back = Tokenizers.FromJson(t.ToJson());
        Assert.Equal(t.Merges, ((BpeTokenizer)back).Merges);
        Assert.Equal(t.Encode(Mixed), back.Encode(Mixed));
        string path = Path.Combine(Path.GetTempPath(), $"bpe-{Guid.NewGuid():N}.json");
        try
        {
            Tokenizers.Save(t, path);
            Assert.Equal(t.Encode(unseen), Tokenizers.Load(path).Encode(unseen));
        }
        finally { File.Delete(path); }
        Assert.Throws<ArgumentException>(() => new BpeTokenizer([(97, 300)]));
    }

    [Fact]
    public void TokenizerSpecsAreCheckedInOneLine()
    {
        Assert.Null(Tokenizers.CheckSpec("char"));
        Assert.Null(Tokenizers.CheckSpec("bpe:512"));
        Assert.Null(Tokenizers.CheckSpec("word:1000"));
        Assert.Contains("above 256", Tokenizers.CheckSpec("bpe:100"));
        Assert.Contains("unknown tokenizer", Tokenizers.CheckSpec("sentencepiece"));
        Assert.Contains("no size", Tokenizers.CheckSpec("char:5"));
        var e = Assert.Throws<FormatException>(() => Tokenizers.FromJson(new System.Text.Json.Nodes.JsonObject { ["type"] = "bpe", ["merges"] = "x" }, "t.json"));
        Assert.StartsWith("t.json: not a valid tokenizer: 'merges'", e.Message);
    }

    [Fact]
    public void TextFilesGiveOneLineErrorsNamingTheFileAndTheByte()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"textfile-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string missing = Path.Combine(dir, "missing.txt");
            var nf = Assert.Throws<FileNotFoundException>(() => TextFile.Read(missing));
            Assert.Contains(missing, nf.Message);
            string empty = Path.Combine(dir, "empty.txt");
            File.WriteAllBytes(empty, []);
            var ee = Assert.Throws<DataFormatException>(() => TextFile.Read(empty));
            Assert.Contains("empty.txt: the file is empty", ee.Message);
            string bad = Path.Combine(dir, "bad.txt");
            File.WriteAllBytes(bad, [(byte)'a', (byte)'\n', (byte)'b', 0xFF, (byte)'c']);
            var be = Assert.Throws<DataFormatException>(() => TextFile.Read(bad));
            Assert.Contains("bad.txt: invalid UTF-8 (byte 0xFF) at byte 3 (line 2)", be.Message);
            Assert.DoesNotContain('\n', be.Message);
            string blank = Path.Combine(dir, "blank.txt");
            File.WriteAllText(blank, "\n\r\n\n");
            Assert.Contains("only blank lines", Assert.Throws<DataFormatException>(() => TextFile.ReadLines(blank)).Message);
            string ok = Path.Combine(dir, "names.txt");
            File.WriteAllText(ok, "\uFEFFemma\r\n\r\nava\n");
            Assert.Equal(["emma", "ava"], TextFile.ReadLines(ok));
        }
        finally { Directory.Delete(dir, true); }
    }
}
