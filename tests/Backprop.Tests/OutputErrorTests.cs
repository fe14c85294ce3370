using System.Diagnostics;

namespace Backprop.Tests;

/// <summary>
/// A full or closed standard output ends the command with one line on stderr and exit code 74
/// (<see cref="Cli.OutputGuard.ExitCode"/>), never a stack trace (docs/cli.md, docs/reliability.md).
/// </summary>
public class OutputErrorTests
{
    private static string CliDll => Path.Combine(AppContext.BaseDirectory, "Backprop.Cli.dll");

    private static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

    private static ProcessStartInfo Command(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("BACKPROP_THREADS");
        return psi;
    }

    private static void AssertOneLineOutputError(Process p, string stderr, string reason)
    {
        Assert.True(p.ExitCode == Cli.OutputGuard.ExitCode, $"exit code {p.ExitCode}; stderr: {stderr}");
        var lines = stderr.TrimEnd().Split('\n');
        Assert.Equal($"error: cannot write the output: {reason}.", lines[^1]);
        Assert.DoesNotContain("   at ", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
    }

    [Theory]
    [InlineData("train", "xor", "--epochs", "1", "--json", "--quiet")]
    [InlineData("train", "xor", "--epochs", "1")]
    [InlineData("--help")]
    public void AFullStdoutIsOneLineAndExitCode74(params string[] args)
    {
        Assert.True(File.Exists("/dev/full"), "this test needs /dev/full");
        // The shell redirects; the command sees a stdout whose every write fails with ENOSPC.
        var psi = Command("/bin/sh", ["-c", "exec \"$0\" \"$@\" > /dev/full", Dotnet, CliDll, .. args]);
        using var p = Process.Start(psi)!;
        string stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), "the CLI did not finish");
        AssertOneLineOutputError(p, stderr, "No space left on device");
    }

    [Fact]
    public void AClosedPipeIsOneLineAndExitCode74()
    {
        var psi = Command(Dotnet, CliDll, "train", "xor", "--epochs", "2");
        psi.RedirectStandardOutput = true;
        using var p = Process.Start(psi)!;
        p.StandardOutput.Close();   // like `| head -1` exiting before the command writes
        string stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), "the CLI did not finish");
        AssertOneLineOutputError(p, stderr, "Broken pipe");
    }
}
