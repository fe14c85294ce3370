using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Backprop.Cli;
using Backprop.Data;
using Backprop.IO;
using Xunit.Abstractions;

namespace Backprop.Tests;

/// <summary>
/// Seeded, time-bounded fuzzing of every reader of untrusted bytes: IDX files, safetensors files,
/// checkpoints (read and restored), text corpora. Each must either accept the input or throw its
/// documented exception (DataFormatException, CheckpointFormatException, CheckpointMismatchException)
/// with a message naming the file; never hang, never allocate much more than the input's size.
/// </summary>
public class FuzzTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-fuzz").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private const long MiB = 1 << 20;

    private void Report(Fuzzer.Report r)
    {
        output.WriteLine(r.ToString());
        Assert.True(r.Cases > 0, $"{r.Target}: no case ran");
    }

    // ------------------------------------------------------------------ IDX

    private byte[][] IdxSeeds()
    {
        var seeds = new List<byte[]>();
        void Add(IdxType type, int[] dims, byte[] data)
        {
            string p = Path.Combine(_dir, "seed.idx");
            Idx.Write(p, type, dims, data);
            seeds.Add(File.ReadAllBytes(p));
            Idx.Write(p, type, dims, data, gzip: true);
            seeds.Add(File.ReadAllBytes(p));
        }
        var r = new Random(1);
        byte[] Bytes(int n) => [.. Enumerable.Range(0, n).Select(_ => (byte)r.Next(256))];
        Add(IdxType.UInt8, [3, 4, 4], Bytes(48));
        Add(IdxType.UInt8, [5], [1, 2, 3, 4, 5]);
        Add(IdxType.Float32, [2, 3], Bytes(24));
        Add(IdxType.Int16, [4], Bytes(8));
        Add(IdxType.Int32, [2, 2], Bytes(16));
        Add(IdxType.Float64, [1, 2], Bytes(16));
        return [.. seeds];
    }

    /// <summary>The decompressed size of gzip bytes (at most 64 MiB), for the allocation bound.</summary>
    private static long Inflated(byte[] bytes)
    {
        if (bytes.Length < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b) return bytes.Length;
        long n = 0;
        try
        {
            using var z = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            var buf = new byte[1 << 16];
            int k;
            while ((k = z.Read(buf)) > 0 && n < 64 * MiB) n += k;
        }
        catch (InvalidDataException)
        {
        }
        return Math.Max(n, bytes.Length);
    }

    [Fact]
    public void IdxReader()
    {
        var seeds = IdxSeeds();
        string path = Path.Combine(_dir, "case-idx3-ubyte");
        Report(Fuzzer.Run("idx",
            make: r =>
            {
                var bytes = Fuzzer.Mutate(r, seeds[r.Next(seeds.Length)]);
                if (r.Next(4) == 0 && bytes.Length > 2 && bytes[0] == 0x1f && bytes[1] == 0x8b)
                    bytes = Gzip(Fuzzer.Mutate(r, seeds[2 * r.Next(seeds.Length / 2)]));    // a well-formed gzip of a mutated file
                int? limit = r.Next(4) == 0 ? r.Next(0, 6) : null;
                return (Bytes: bytes, Limit: limit);
            },
            run: c =>
            {
                File.WriteAllBytes(path, c.Bytes);
                var f = Idx.Read(path, c.Limit);
                f.ToTensor();
                return true;
            },
            size: c => Inflated(c.Bytes),
            dump: c => c.Bytes,
            documented: [typeof(DataFormatException)],
            // Read (data plus a first chunk of at most 1 MiB), then ToTensor (8 bytes per element).
            allocFactor: 24, allocSlack: 4 * MiB,
            checkException: (_, e) => Assert.Contains(path, e.Message)));
    }

    private static byte[] Gzip(byte[] raw)
    {
        var ms = new MemoryStream();
        using (var z = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) z.Write(raw);
        return ms.ToArray();
    }

    // ------------------------------------------------------------------ safetensors and checkpoints

    internal static byte[] SafeTensorsBytes(IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? meta = null)
    {
        var ms = new MemoryStream();
        SafeTensors.Write(ms, tensors, meta);
        return ms.ToArray();
    }

    private static byte[] CheckpointBytes(CheckpointContent c)
    {
        var ms = new MemoryStream();
        Checkpoint.Write(ms, c);
        return ms.ToArray();
    }

    private static byte[][] SafeTensorsSeeds()
    {
        var g = new Generator(2);
        var run = new CheckpointTests.Run(1);
        run.TrainTo(3);
        return
        [
            SafeTensorsBytes([new("w", Tensor.Randn([3, 2], g)), new("b", Tensor.Zeros(2))]),
            SafeTensorsBytes([new("i", Tensor.FromArray(new long[] { 1, 2, 3 }, 3)), new("d", Tensor.Scalar(2.0, DType.Float64)), new("e", Tensor.Zeros([0, 4], DType.Float32))],
                new Dictionary<string, string> { ["format"] = "pt", ["k"] = "v" }),
            File.ReadAllBytes(SafeTensorsTests.FixturePath("reference.safetensors")),
            CheckpointBytes(run.Capture()),
        ];
    }

    /// <summary>A safetensors file whose JSON header was mutated, its length field rewritten to fit (so the mutation reaches the parser).</summary>
    private static byte[] MutateHeader(Random r, byte[] file)
    {
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        var header = Fuzzer.Mutate(r, file[8..(int)(8 + n)]);
        var data = file[(int)(8 + n)..];
        if (r.Next(3) == 0) data = data[..r.Next(data.Length + 1)];
        var b = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)header.Length);
        header.CopyTo(b, 8);
        data.CopyTo(b, 8 + header.Length);
        return b;
    }

    [Fact]
    public void SafeTensorsReader()
    {
        var seeds = SafeTensorsSeeds();
        string path = Path.Combine(_dir, "case.safetensors");
        Report(Fuzzer.Run("safetensors",
            make: r =>
            {
                var seed = seeds[r.Next(seeds.Length)];
                return r.Next(2) == 0 ? Fuzzer.Mutate(r, seed) : MutateHeader(r, seed);
            },
            run: bytes =>
            {
                // Mostly in memory; now and then through a file, the path most callers take.
                if (bytes.Length % 16 == 0)
                {
                    File.WriteAllBytes(path, bytes);
                    SafeTensors.Load(path);
                }
                else SafeTensors.Read(new MemoryStream(bytes), path);
                return true;
            },
            size: b => b.Length,
            dump: b => b,
            documented: [typeof(CheckpointFormatException)],
            // Tensors take at most the file's data bytes; parsing the header costs a small multiple of it.
            allocFactor: 16, allocSlack: 1 * MiB,
            checkException: (_, e) => Assert.StartsWith(path + ": ", e.Message)));
    }

    private static readonly Func<Random, JsonNode?>[] OddValues =
    [
        _ => null, _ => -1, _ => 0, _ => 1e308, _ => "x", _ => true, _ => new JsonArray(), _ => new JsonObject(),
        _ => long.MaxValue, _ => "18446744073709551615", _ => 0.5, r => r.Next(-3, 100),
    ];

    /// <summary>Replaces or removes one random node of the checkpoint's metadata, or drops, renames or reshapes a tensor.</summary>
    private static byte[] MutateCheckpoint(Random r, byte[] file)
    {
        var f = SafeTensors.Read(new MemoryStream(file), "seed");
        var meta = f.Metadata.ToDictionary();
        var tensors = f.Tensors.ToList();
        if (r.Next(3) > 0)
        {
            var root = JsonNode.Parse(meta["checkpoint"])!;
            var nodes = new List<JsonNode>();
            void Walk(JsonNode n)
            {
                nodes.Add(n);
                if (n is JsonObject o) foreach (var (_, v) in o) { if (v != null) Walk(v); }
                if (n is JsonArray a) foreach (var v in a) { if (v != null) Walk(v); }
            }
            Walk(root);
            var target = nodes[r.Next(1, nodes.Count)];
            var parent = target.Parent!;
            if (parent is JsonObject po)
            {
                string key = po.First(kv => ReferenceEquals(kv.Value, target)).Key;
                if (r.Next(4) == 0) po.Remove(key);
                else po[key] = OddValues[r.Next(OddValues.Length)](r);
            }
            else if (parent is JsonArray pa)
                pa[pa.IndexOf(target)] = OddValues[r.Next(OddValues.Length)](r);
            meta["checkpoint"] = root.ToJsonString();
        }
        else
        {
            int i = r.Next(tensors.Count);
            var (name, t) = tensors[i];
            switch (r.Next(3))
            {
                case 0: tensors.RemoveAt(i); break;
                case 1: tensors[i] = new(name + "x", t); break;
                default: tensors[i] = new(name, Tensor.Zeros([t.NumElements + 1], t.DType)); break;
            }
        }
        return SafeTensorsBytes(tensors, meta);
    }

    [Fact]
    public void CheckpointReaderAndRestore()
    {
        var run = new CheckpointTests.Run(1);
        run.TrainTo(20);
        var seed = CheckpointBytes(run.Capture());
        Report(Fuzzer.Run("checkpoint",
            make: r =>
            {
                var bytes = r.Next(3) switch
                {
                    0 => Fuzzer.Mutate(r, seed),
                    1 => MutateHeader(r, seed),
                    _ => MutateCheckpoint(r, seed),
                };
                return (Bytes: bytes, Target: new CheckpointTests.Run(2));
            },
            run: c =>
            {
                var content = Checkpoint.Read(new MemoryStream(c.Bytes), "case.ckpt");
                c.Target.Restore(content);
                return true;
            },
            size: c => c.Bytes.Length,
            dump: c => c.Bytes,
            documented: [typeof(CheckpointFormatException), typeof(CheckpointMismatchException)],
            // The metadata JSON becomes a node tree (tens of bytes per input byte) and restoring copies the state.
            allocFactor: 64, allocSlack: 2 * MiB,
            checkException: (_, e) => Assert.StartsWith("case.ckpt: ", e.Message)));
    }

    // ------------------------------------------------------------------ text

    [Fact]
    public void TextCorpusLoader()
    {
        byte[][] seeds =
        [
            Encoding.UTF8.GetBytes("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"),
            Encoding.UTF8.GetBytes("Grüße aus Köln – naïve café, 東京, 🙂 and 𝄞\n"),
            [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes("with a byte-order mark\n")],
            Encoding.UTF8.GetBytes("x"),
        ];
        string path = Path.Combine(_dir, "case.txt");
        Report(Fuzzer.Run("text",
            make: r => Fuzzer.Mutate(r, seeds[r.Next(seeds.Length)]),
            run: bytes =>
            {
                File.WriteAllBytes(path, bytes);
                var c = TextCorpus.Load(path);
                if (c.Tokens.Length >= 2) c.Split();
                Assert.Equal(c.Text, c.Decode(c.Tokens));
                return true;
            },
            size: b => b.Length,
            dump: b => b,
            documented: [typeof(DataFormatException)],
            // UTF-16 text (2 bytes a byte), tokens (4 bytes a character) and the vocabulary.
            allocFactor: 48, allocSlack: 1 * MiB,
            checkException: (_, e) => Assert.Contains(path, e.Message)));
    }
}

/// <summary>
/// Fuzzing of the command line: the argument parser with random token lists, and <c>backprop train</c>
/// with random (bounded) options, which must either run or fail with exit code 2 (or 1 for a
/// diverged run, 3 below --min-accuracy) and exactly one line on stderr, never an exception.
/// </summary>
[Collection("Threads")]
public class FuzzCliTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-fuzz-cli").FullName;
    private readonly int _threads = Threads.Count;

    public void Dispose()
    {
        Threads.Count = _threads;
        Directory.Delete(_dir, true);
    }

    private static readonly string[] Tokens =
    [
        "--", "-", "--=", "--x=", "--lr", "--lr=", "--lr=0.1", "--epochs", "--json", "--json=1", "--quiet", "--help", "-h", "-5", "-1e3",
        "--seed", "1", "0", "abc", "", " ", "--a=b=c", "--ü", "\0", "--save", "x.safetensors", "--detect-anomaly", "--batch-size", "1e400", "NaN",
    ];

    [Fact]
    public void ArgumentParser()
    {
        var report = Fuzzer.Run("cli-args",
            make: r => Enumerable.Range(0, r.Next(0, 12)).Select(_ => r.Next(5) == 0 ? RandomString(r) : Tokens[r.Next(Tokens.Length)]).ToArray(),
            run: args =>
            {
                // Parsing and checking the values only: nothing runs.
                var (_, error) = Cli.Cli.Parse(["train", .. args]);
                if (error != null) throw new CliException(error);
                return true;
            },
            size: args => args.Sum(a => a.Length) + 8 * args.Length,
            dump: args => Encoding.UTF8.GetBytes(string.Join("\n", args)),
            documented: [typeof(CliException)],
            allocFactor: 64, allocSlack: 256 << 10,
            checkException: (_, e) => Assert.DoesNotContain('\n', Cli.Cli.OneLine(e.Message)));
        output.WriteLine(report.ToString());
    }

    private static string RandomString(Random r)
    {
        var sb = new StringBuilder(r.Next(2) == 0 ? "--" : "");
        for (int i = r.Next(0, 12); i > 0; i--) sb.Append((char)r.Next(r.Next(4) == 0 ? 0x3000 : 0x7F));
        return sb.ToString();
    }

    /// <summary>Option values: valid, invalid and extreme, but never a long run (epochs and samples stay small).</summary>
    private Dictionary<string, string[]> Values() => new()
    {
        ["model"] = ["mlp:64-16-10", "mlp:2-8-2", "mlp:2-4", "mlp:784-10", "mlp:", "mlp:2--2", "mlp:2-0-2", "cnn:3", "mlp:2-99999999999-2", "MLP:2-3-2", ""],
        ["activation"] = ["relu", "tanh", "sigmoid", "gelu", "softplus", "identity", "leaky-relu", "swish", "RELU", ""],
        ["loss"] = ["cross-entropy", "mse", "hinge", ""],
        ["optimizer"] = ["sgd", "momentum", "nesterov", "adam", "adamw", "adagrad", "rmsprop", "lbfgs", "ADAM"],
        ["lr"] = ["0.1", "0.01", "1e6", "0", "-1", "NaN", "Infinity", "1e-320", "x", "1e400"],
        ["momentum"] = ["0", "0.9", "1", "2", "-0.5", "nan"],
        ["weight-decay"] = ["0", "0.01", "1000", "1001", "-1"],
        ["batch-size"] = ["1", "7", "32", "0", "-4", "1048577", "x", "5e2"],
        ["epochs"] = ["1", "2", "0", "-1", "100001", "1.5", "x", " 2"],
        ["seed"] = ["0", "1", "18446744073709551615", "18446744073709551616", "-1", "x"],
        ["limit"] = ["1", "5", "20", "40", "0", "-2", "x"],
        ["threads"] = ["1", "2", "0", "1025", "x"],
        ["data"] = [_dir, "/no/such/folder", Path.Combine(_dir, "corrupt-mnist")],
        ["min-accuracy"] = ["0", "0.5", "1", "1.5", "x"],
        ["save"] = [Path.Combine(_dir, "out.safetensors"), _dir, Path.Combine(_dir, "sub", "dir", "ck"), "", " ", "a\0b", "/proc/no/such/dir/ck"],
        ["save-every"] = ["1", "3", "0", "x"],
        ["resume"] = [Path.Combine(_dir, "xor.safetensors"), Path.Combine(_dir, "junk.safetensors"), Path.Combine(_dir, "none.safetensors"), _dir, "", "a\0b", "/proc/self/mem"],
        ["bogus"] = ["1"],
    };

    private static readonly string[] Datasets = ["digits", "xor", "circles", "spirals", "cities", "tangled-border", "mnist", "nope", "XOR"];
    private static readonly string[] TrainFlags = ["--json", "--quiet", "--detect-anomaly", "--help"];

    [Fact]
    public void TrainWithRandomOptions()
    {
        // Files the options point at: a real checkpoint, junk, and MNIST files that are cut short.
        Assert.Equal(0, Cli.Cli.Run(["train", "xor", "--epochs", "1", "--save", Path.Combine(_dir, "xor.safetensors"), "--quiet"], TextWriter.Null, TextWriter.Null));
        File.WriteAllBytes(Path.Combine(_dir, "junk.safetensors"), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        Directory.CreateDirectory(Path.Combine(_dir, "corrupt-mnist"));
        File.WriteAllBytes(Path.Combine(_dir, "corrupt-mnist", "train-images-idx3-ubyte"), [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1]);
        var values = Values();
        var names = values.Keys.ToArray();
        var report = Fuzzer.Run("cli-train",
            make: r =>
            {
                var args = new List<string> { "train" };
                if (r.Next(3) > 0) args.Add(Datasets[r.Next(Datasets.Length)]);
                for (int k = r.Next(0, 7); k > 0; k--)
                {
                    if (r.Next(6) == 0) { args.Add(TrainFlags[r.Next(TrainFlags.Length)]); continue; }
                    string name = names[r.Next(names.Length)];
                    var v = r.Next(10) == 0 ? RandomString(r) : values[name][r.Next(values[name].Length)];
                    if (r.Next(8) == 0) args.Add($"--{name}={v}");
                    else { args.Add($"--{name}"); args.Add(v); }
                }
                // Bounded work: few samples and epochs unless the case already chose (or broke) them.
                if (!args.Any(a => a.StartsWith("--limit", StringComparison.Ordinal))) args.AddRange(["--limit", r.Next(1, 60).ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                if (!args.Any(a => a.StartsWith("--epochs", StringComparison.Ordinal))) args.AddRange(["--epochs", r.Next(1, 3).ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                if (!args.Contains("--quiet") && r.Next(2) == 0) args.Add("--quiet");
                return args.ToArray();
            },
            run: args =>
            {
                var (o, e) = (new StringWriter(), new StringWriter());
                int code = Cli.Cli.Run(args, o, e);
                string err = e.ToString();
                Assert.True(code is 0 or 1 or 2 or 3, $"exit code {code}");
                if (code != 0)
                {
                    Assert.StartsWith("error: ", err);
                    Assert.True(err.TrimEnd().Split('\n').Length == 1, $"exit code {code} with more than one line on stderr: {err}");
                }
                else Assert.DoesNotContain("error:", err);
                return code == 0;
            },
            size: args => 0,
            dump: args => Encoding.UTF8.GetBytes(string.Join("\n", args)),
            documented: [],
            allocFactor: 0, allocSlack: long.MaxValue / 2,
            caseTimeout: 120);
        output.WriteLine(report.ToString());
        Assert.True(report.Accepted > 0 || report.Cases < 10, "no random option list ever trained: the generator is too hostile to test the runs");
    }
}
