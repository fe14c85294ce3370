using System.Text.Json.Nodes;

namespace Backprop.Tests;

/// <summary>
/// <c>backprop bench cnn-split</c>: the CNN preset (the model of <c>bench model cnn</c>, the CNN row of
/// bench/compare, here at batch 4 to keep the test short) timed part by part and whole.
/// </summary>
[Collection("Threads")]
public class CnnBenchTests
{
    private static JsonObject RunJson(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.True(Cli.Cli.Run(args, o, e) == 0, e.ToString());
        return JsonNode.Parse(o.ToString().Trim().Split('\n')[^1])!.AsObject();
    }

    [Fact]
    public void CnnSplitTimesEveryLayerTheLossAndTheOptimizer()
    {
        var r = RunJson("bench", "cnn-split", "--batch", "4", "--seconds", "0.01", "--threads", "1", "--json");
        var parts = r["parts"]!.AsArray().Select(p => (string)p!["part"]!).ToArray();
        Assert.Equal(13, parts.Length); // 11 layers after the input reshape, the loss, Adam
        Assert.StartsWith("1 Conv2d 1x28x28 -> 32x28x28", parts[0]);
        Assert.StartsWith("4 MaxPool2d 32x28x28 -> 32x14x14", parts[3]);
        Assert.StartsWith("11 Linear 3136 -> 10", parts[10]);
        Assert.Equal("Adam step", parts[^1]);
        Assert.All(r["parts"]!.AsArray(), p => Assert.True((double)p!["milliseconds"]! > 0));
        Assert.True((double)r["whole_step_milliseconds"]! > 0);
        Assert.Equal(4, (int)r["batch"]!);
        Assert.Equal(50378, Cli.Training.CnnSpec.Parse(Cli.Training.CnnSpec.Preset, "cnn").Parameters); // as torch_models.py asserts
    }
}
