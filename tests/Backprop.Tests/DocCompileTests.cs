using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Backprop.Tests;

/// <summary>
/// Every <c>```csharp</c> block of the README and of docs/*.md is compiled here against the library
/// (the blocks that <see cref="DocSnippetTests"/> also runs, and all the others), so no snippet can
/// drift from the API. A block may be preceded by an HTML comment:
/// <c>&lt;!-- snippet-run: CODE --&gt;</c> does the same and also runs the block (CODE may be empty);
/// <c>&lt;!-- snippet-setup: CODE --&gt;</c> puts CODE (declarations the block assumes, such as a
/// <c>model</c> or an <c>x</c>) before it; <c>&lt;!-- snippet: not compiled: REASON --&gt;</c> skips it,
/// and the reason is required; <c>&lt;!-- snippet: excerpt of PATH --&gt;</c> marks a quotation of the
/// library's source, whose every line must still be in that file. Blocks are compiled as top-level programs (or as a library when they
/// only declare types), with the usings a program of this library would have.
/// </summary>
public sealed partial class DocCompileTests
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.IO;
        using System.Linq;
        using Backprop;
        using Backprop.Autograd;
        using Backprop.Data;
        using Backprop.IO;
        using Backprop.NN;
        using Backprop.Optim;
        using Backprop.Text;

        """;

    /// <summary>
    /// The names the guides use without declaring them ("a model", "its optimizer", "an input x"),
    /// as static fields, so that a block compiles on its own; a block that declares one of these
    /// names itself shadows it.
    /// </summary>
    private const string Context = """

        internal static class DocContext
        {
            public static Sequential model = new(new Linear(784, 16), new Sigmoid(), new Linear(16, 10));
            public static Module backbone = new Linear(784, 16), head = new Linear(16, 10);
            public static Optimizer opt = new Sgd(model.Parameters(), lr: 0.1);
            public static LrScheduler sched = new StepLr(opt, stepSize: 10);
            public static TensorDataset train = new TensorDataset(Tensor.Zeros(10, 784), Tensor.Zeros([10], DType.Int64)), test = train;
            public static DataLoader loader = new(train, batchSize: 10);
            public static Tensor x = Tensor.Zeros(10, 784), y = Tensor.Zeros([10], DType.Int64), t = Tensor.Zeros(2, 3),
                w = Tensor.Zeros(3), w1 = Tensor.Zeros(3), w2 = Tensor.Zeros(3), b = Tensor.Zeros(3),
                q = Tensor.Zeros(2, 4, 8), k = Tensor.Zeros(2, 4, 8), v = Tensor.Zeros(2, 4, 8),
                batch = Tensor.Zeros(10, 784), prediction = Tensor.Zeros(10, 10), probabilities = Tensor.Zeros(10, 10);
            public static IEnumerable<Tensor> parameters = model.Parameters();
            public static int seed = 1;
            public static long steps = 0;
        }
        """;

    [GeneratedRegex(@"(?:<!--\s*(?<mark>snippet[^>]*?)\s*-->\s*\n)?```csharp\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex Block();

    internal static IEnumerable<string> Documents() =>
        new[] { Path.Combine(DataTestFiles.RepoRoot, "README.md") }
            .Concat(Directory.GetFiles(Path.Combine(DataTestFiles.RepoRoot, "docs"), "*.md").Order(StringComparer.Ordinal));

    private static readonly Lazy<MetadataReference[]> References = new(() =>
    {
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator).ToList();
        paths.Add(typeof(Tensor).Assembly.Location);
        return [.. paths.Where(File.Exists).Distinct().Select(p => MetadataReference.CreateFromFile(p))];
    });

    /// <summary>
    /// One block as a syntax tree of its own: its statements become the body of a method and its types
    /// stay beside it, in a namespace of its own, so that many blocks compile together in one
    /// compilation (one compile for all of them) without clashing.
    /// </summary>
    private static SyntaxTree Tree(string code, string setup, string id)
    {
        var options = CSharpParseOptions.Default.WithLanguageVersion(LanguageVersion.Latest);
        var root = CSharpSyntaxTree.ParseText(code, options).GetCompilationUnitRoot();
        var members = root.Members;
        string usings = string.Concat(root.Usings.Select(u => u.ToFullString()));
        string statements = string.Concat(members.OfType<GlobalStatementSyntax>().Select(p => p.ToFullString()));
        string types = string.Concat(members.Where(p => p is not GlobalStatementSyntax).Select(p => p.ToFullString()));
        string text = Usings + usings + $"namespace {id}\n{{\nusing static global::DocContext;\ninternal static class Snippet\n{{\ninternal static void Run(string[] args)\n{{\n" +
            setup + "\n#line 1\n" + statements + "\n}\n}\n#line 1\n" + types + "\n}\n";
        return CSharpSyntaxTree.ParseText(text, options, path: id);
    }

    /// <summary>
    /// The compile errors of each block (by id; absent when it compiles). When all compile, the blocks
    /// whose ids are in <paramref name="run"/> are then run, in order, and an exception one throws is its error.
    /// </summary>
    internal static Dictionary<string, string> Compile(IReadOnlyList<(string Id, string Code, string Setup)> blocks, ISet<string>? run = null)
    {
        var options = CSharpParseOptions.Default.WithLanguageVersion(LanguageVersion.Latest);
        var trees = blocks.Select(b => Tree(b.Code, b.Setup, b.Id)).Append(CSharpSyntaxTree.ParseText(Usings + Context, options, path: "context"));
        var compilation = CSharpCompilation.Create("Snippets", trees, References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error)
            .GroupBy(d => d.Location.SourceTree?.FilePath ?? "?")
            .ToDictionary(g => g.Key, g => string.Join("; ", g.Take(3).Select(d => $"line {d.Location.GetMappedLineSpan().StartLinePosition.Line + 1}: {d.GetMessage()}")));
        if (errors.Count > 0 || run is not { Count: > 0 }) return errors;
        using var pe = new MemoryStream();
        var emitted = compilation.Emit(pe);
        Assert.True(emitted.Success, "the snippets compiled but could not be emitted");
        var assembly = System.Reflection.Assembly.Load(pe.ToArray());
        foreach (var (id, _, _) in blocks.Where(b => run.Contains(b.Id)))
        {
            var method = assembly.GetType($"{id}.Snippet")!.GetMethod("Run", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)!;
            var console = Console.Out;
            try
            {
                Console.SetOut(TextWriter.Null);    // what the snippet prints is not the test's output
                method.Invoke(null, [Array.Empty<string>()]);
            }
            catch (System.Reflection.TargetInvocationException e) when (e.InnerException is { } inner)
            {
                errors[id] = $"compiled, but running it threw {inner.GetType().Name}: {inner.Message}";
            }
            finally
            {
                Console.SetOut(console);
            }
        }
        return errors;
    }

    /// <summary>The compile errors of one block ("" when it compiles).</summary>
    internal static string Compile(string code, string setup) =>
        Compile([("Block", code, setup)]).Values.FirstOrDefault() ?? "";

    [Fact]
    public void EveryCSharpBlockInTheDocsCompiles()
    {
        var failures = new List<string>();
        var blocks = new List<(string Id, string Code, string Setup)>();
        var where = new Dictionary<string, string>();
        int skipped = 0, excerpts = 0;
        var run = new HashSet<string>(StringComparer.Ordinal);
        foreach (var doc in Documents())
        {
            string text = File.ReadAllText(doc).ReplaceLineEndings("\n");
            string name = Path.GetRelativePath(DataTestFiles.RepoRoot, doc);
            foreach (Match m in Block().Matches(text))
            {
                int line = text[..m.Groups["code"].Index].Count(c => c == '\n') + 1;
                string mark = m.Groups["mark"].Success ? m.Groups["mark"].Value : "";
                if (mark.StartsWith("snippet: not compiled", StringComparison.Ordinal))
                {
                    Assert.True(mark.Length > "snippet: not compiled: ".Length + 5, $"{name}:{line}: a block that is not compiled must say why");
                    skipped++;
                    continue;
                }
                if (mark.StartsWith("snippet: excerpt of ", StringComparison.Ordinal))
                {
                    // Quoted from the library's source: every line (comments and spacing aside) must still be there.
                    string file = mark["snippet: excerpt of ".Length..].Trim();
                    string path = Path.Combine(DataTestFiles.RepoRoot, file);
                    Assert.True(File.Exists(path), $"{name}:{line}: the excerpt's source {file} does not exist");
                    var source = File.ReadAllText(path).Split('\n').Select(Normalize).ToHashSet(StringComparer.Ordinal);
                    foreach (var l in m.Groups["code"].Value.Split('\n').Select(Normalize).Where(l => l.Length > 0))
                        if (!source.Contains(l)) failures.Add($"{name}:{line}: the excerpt's line `{l}` is no longer in {file}");
                    excerpts++;
                    continue;
                }
                string setup = mark.StartsWith("snippet-setup:", StringComparison.Ordinal) ? mark["snippet-setup:".Length..]
                    : mark.StartsWith("snippet-run:", StringComparison.Ordinal) ? mark["snippet-run:".Length..] : "";
                string id = $"Doc{blocks.Count}";
                if (mark.StartsWith("snippet-run:", StringComparison.Ordinal)) run.Add(id);
                blocks.Add((id, m.Groups["code"].Value, setup));
                where[id] = $"{name}:{line}";
            }
        }
        foreach (var (id, errors) in Compile(blocks, run))
            failures.Add($"{(where.TryGetValue(id, out var w) ? w : id)}: {errors}");
        int compiled = blocks.Count;
        Assert.True(failures.Count == 0, $"{failures.Count} of {compiled} C# blocks in the docs do not compile:\n{string.Join("\n", failures)}");
        Assert.True(run.Count >= 4, $"only {run.Count} blocks are run");
        Assert.True(compiled >= 30, $"only {compiled} blocks compiled ({skipped} skipped): is the pattern still finding them?");
    }

    /// <summary>A line without its comment and with its spacing collapsed ("" for a blank or comment-only line).</summary>
    private static string Normalize(string line)
    {
        int comment = line.IndexOf("//", StringComparison.Ordinal);
        if (comment >= 0) line = line[..comment];
        return string.Join(' ', line.Split((char[])[' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void TheCompilerCheckFindsAnError()
    {
        Assert.Equal("", Compile("var t = Tensor.Zeros(2, 3);\nConsole.WriteLine(t.Sum().Item());", ""));
        Assert.Contains("line 2", Compile("var t = Tensor.Zeros(2, 3);\nt.NoSuchMethod();", ""));
        Assert.Equal("", Compile("t.Add_(1);", "var t = Tensor.Zeros(2, 3);"));
        var thrown = Compile([("Throws", "var s = Tensor.Zeros(2, 3).Reshape(4);", "")], new HashSet<string> { "Throws" });
        Assert.Contains("running it threw ShapeException", thrown["Throws"]);
    }
}
