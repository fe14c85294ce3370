using System.Diagnostics;
using Backprop.IO;

namespace Backprop.Tests;

/// <summary>
/// What `backprop train` checks before the first step: a resume that changes the run, data shapes
/// against the model for both sets, and a model too large for memory (docs/reliability.md).
/// </summary>
[Collection("Threads")]
public class TrainChecksTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-checks").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string P(string name) => Path.Combine(_dir, name);

    private static (int Code, string Out, string Err) Run(params string[] args) => ResumeTests.Run(args);

    [Fact]
    public void ResumeListsEveryChangeOfDatasetOptimizerActivationAndLoss()
    {
        Assert.Equal(0, Run("train", "xor", "--epochs", "1", "--save", P("a"), "--quiet", "--threads", "1").Code);
        var r = Run("train", "circles", "--resume", P("a"), "--optimizer", "momentum", "--activation", "relu", "--loss", "mse");
        TestUtil.OneLineError(r.Code, r.Err, $"--resume {P("a")}: does not fit what it is restored into, nothing was changed: ");
        foreach (var m in new[] { "dataset xor, not circles", "optimizer adam, not momentum", "activation tanh, not relu", "loss cross-entropy, not mse" })
            Assert.Contains($"it was trained with {m}", r.Err);
        // SGD and momentum share an optimizer class: only the recorded name tells them apart.
        Assert.Equal(0, Run("train", "xor", "--optimizer", "sgd", "--lr", "0.1", "--epochs", "1", "--save", P("s"), "--quiet").Code);
        var m2 = Run("train", "--resume", P("s"), "--optimizer", "momentum", "--model", "mlp:2-4-2");
        TestUtil.OneLineError(m2.Code, m2.Err, "it was trained with optimizer sgd, not momentum");
        Assert.Contains("'model.0.weight': expected [4, 2] float32, found [8, 2] float32", m2.Err);
    }

    [Theory]
    [InlineData("test", 28, 28, 27, 29)]
    [InlineData("training", 27, 29, 28, 28)]
    public void DataOfAnotherShapeFailsBeforeTraining(string set, int trainRows, int trainCols, int testRows, int testCols)
    {
        var rng = new Random(1);
        void Write(string name, int n, int rows, int cols)
        {
            var pixels = new byte[n * rows * cols];
            rng.NextBytes(pixels);
            File.WriteAllBytes(P($"{name}-images-idx3-ubyte"), DataTestFiles.IdxBytes(0x08, [n, rows, cols], pixels));
            File.WriteAllBytes(P($"{name}-labels-idx1-ubyte"), DataTestFiles.IdxBytes(0x08, [n], [.. Enumerable.Range(0, n).Select(i => (byte)(i % 10))]));
        }
        Write("train", 40, trainRows, trainCols);
        Write("t10k", 20, testRows, testCols);
        var (code, stdout, err) = Run("train", "mnist", "--data", _dir, "--model", "mlp:784-10", "--epochs", "1", "--threads", "1");
        int found = set == "test" ? testRows * testCols : trainRows * trainCols;
        TestUtil.OneLineError(code, err, $"mnist: the {set} set has {found} features per sample; the model mlp:784-10 expects 784");
        Assert.DoesNotContain("epoch", stdout);
    }

    [Fact]
    public async Task AModelTooLargeForMemoryIsRefusedUpFront()
    {
        // Estimates, then a real process under a 256 MiB GC heap limit: 17 million parameters with
        // Adam need about 270 MB before activations; without the check this ended in "Out of memory." (134).
        var spec = Backprop.Cli.Training.ModelSpec.Parse("mlp:64-4096-4096-10");
        Assert.InRange(Backprop.Cli.Training.MemoryEstimate.Bytes(spec, "adam", 32), 4L * 4 * 17_080_000, 4L * 4 * 17_500_000);
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Backprop.Cli.dll"), "train", "--model", "mlp:64-4096-4096-10", "--epochs", "1", "--limit", "64", "--threads", "1" })
            psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_GCHeapHardLimit"] = "0x10000000";
        psi.Environment.Remove(AtomicFile.PauseVariable);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        string stderr;
        try
        {
            stderr = await p.StandardError.ReadToEndAsync(cts.Token);
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill();
            throw;
        }
        await stdout;
        Assert.True(p.ExitCode == 2, $"exit code {p.ExitCode}: {stderr}");
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Matches(@"^error: --model mlp:64-4096-4096-10: training it needs about \d+ MiB .* more than the 256 MiB of memory available", stderr);
    }
}
