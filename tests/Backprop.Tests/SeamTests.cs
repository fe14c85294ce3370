using System.Text.RegularExpressions;

namespace Backprop.Tests;

/// <summary>The backend seam holds in the source: the library reaches buffers only through IBackend.</summary>
public partial class SeamTests
{
    private static IEnumerable<(string File, int Line, string Text)> Matches(string folder, Regex pattern)
    {
        var root = Path.Combine(DataTestFiles.RepoRoot, "src", "Backprop", folder);
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                var code = lines[i].Split("//")[0];
                if (pattern.IsMatch(code)) yield return (Path.GetRelativePath(root, file), i + 1, lines[i].Trim());
            }
        }
    }

    [GeneratedRegex(@"\.Span<|\.Data<|_storage\b")]
    private static partial Regex StorageAccess();

    [GeneratedRegex(@"\bTensor\b(?!Primitives)|\bNode\b|\bEngine\b|Backprop\.Autograd")]
    private static partial Regex GraphTypes();

    [Theory]
    [InlineData("Ops"), InlineData("NN"), InlineData("Optim"), InlineData("Autograd")]
    public void OpsLayersOptimizersAndTheEngineNeverTouchABuffer(string folder)
    {
        var hits = Matches(folder, StorageAccess()).ToList();
        Assert.True(hits.Count == 0, $"src/Backprop/{folder} reaches tensor storage directly instead of through the backend:\n" +
            string.Join("\n", hits.Select(h => $"  {h.File}:{h.Line}: {h.Text}")));
    }

    [Fact]
    public void BackendsNeverSeeTensorsNodesOrTheEngine()
    {
        var hits = Matches("Backends", GraphTypes())
            .Where(h => !h.Text.TrimStart().StartsWith("///", StringComparison.Ordinal)) // documentation may name them
            .ToList();
        Assert.True(hits.Count == 0, "a backend refers to Tensor, Node or the engine:\n" +
            string.Join("\n", hits.Select(h => $"  {h.File}:{h.Line}: {h.Text}")));
    }
}
