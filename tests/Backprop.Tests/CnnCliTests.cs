using Backprop.Cli.Training;

namespace Backprop.Tests;

/// <summary>train --model cnn and cnn:SPEC, --augment (issue 14, docs/cli.md "CNN models").</summary>
[Collection("Threads")]
public sealed class CnnCliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => ResumeTests.Run(args);

    [Fact]
    public void ThePresetHasTwoConvBlocksAndFewerThan100kParameters()
    {
        var spec = ModelSpec.Parse("cnn");
        Assert.Equal("cnn:" + CnnSpec.Preset, spec.ToString());
        Assert.Equal([784, 10], spec.Sizes);
        Assert.Equal(50_378, spec.Cnn!.Parameters);
        var model = spec.Build("relu", new Generator(1));
        Assert.Equal(50_378, model.Parameters().Sum(p => (long)p.NumElements));
        Assert.Equal(2, model.NamedModules().Count(m => m.Module is NN.Conv2d));
        Assert.Equal(2, model.NamedModules().Count(m => m.Module is NN.BatchNorm2d));
        var y = model.Forward(Tensor.Rand([3, 784], new Generator(2)));
        Assert.Equal([3, 10], y.Shape.ToArray());
    }

    [Theory]
    [InlineData("cnn:1x28x28-c32-bx-10", "'bx' is not a layer")]
    [InlineData("cnn:28x28-c32-10", "'28x28' is not an input image shape CxHxW")]
    [InlineData("cnn:1x28x28-c32-relu", "'relu' ends the network; the last layer must be a linear layer")]
    [InlineData("cnn:1x4x4-c8k7p0-10", "'c8k7p0' has a 7x7 kernel larger than its padded 4x4 input")]
    [InlineData("cnn:1x28x28-64-c32-10", "'c32' is a convolution after the flatten")]
    [InlineData("cnn:1x28x28-d1.5-10", "'d1.5' needs a dropout probability in [0, 1)")]
    [InlineData("cnn:1x2x2-m4-10", "'m4' pools 4x4 windows over a 2x2 image")]
    public void AMalformedSpecIsOneLineNamingTheBadPart(string spec, string expected)
    {
        var (code, _, err) = Run("train", "digits", "--model", spec, "--epochs", "1");
        TestUtil.OneLineError(code, err, expected);
    }

    [Fact]
    public void ACustomSpecTrainsOnDigitsWithAugmentation()
    {
        var (code, stdout, err) = Run("train", "digits", "--model", "cnn:1x8x8-c8-bn-relu-m2-gap-10", "--augment", "--epochs", "2",
            "--optimizer", "adam", "--lr", "0.01", "--threads", "1", "--json", "--quiet");
        Assert.True(code == 0, err);
        var json = System.Text.Json.Nodes.JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!;
        Assert.Equal("cnn:1x8x8-c8-bn-relu-m2-gap-10", (string)json["model"]!);
        Assert.True((double)json["test_accuracy"]! > 0.3, $"accuracy {json["test_accuracy"]}");
        var xor = Run("train", "xor", "--augment");
        TestUtil.OneLineError(xor.Code, xor.Err, "--augment: xor is not a dataset of square images");
    }
}
