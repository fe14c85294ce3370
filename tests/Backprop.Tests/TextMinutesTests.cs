namespace Backprop.Tests;

/// <summary>'train text --minutes' that stops before any step still writes a checkpoint that resumes.</summary>
[Collection("Threads")]
public sealed class TextMinutesTests
{
    [Fact]
    public void MinutesZeroWithSaveWritesACheckpointThatResumes()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"textmin-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string data = Path.Combine(dir, "t.txt"), ck = Path.Combine(dir, "ck.safetensors");
            File.WriteAllText(data, string.Concat(Enumerable.Repeat("abcdefgh ", 50)));
            string[] common = ["--context", "2", "--width", "4", "--embedding", "2", "--threads", "1", "--quiet", "--save", ck];
            var err = new StringWriter();
            // no step runs: the validation records no training loss (NaN), which the checkpoint's JSON must hold as null
            Assert.Equal(0, Cli.Cli.Run(["train", "text", "--data", data, "--minutes", "0", "--steps", "4", .. common], new StringWriter(), err));
            Assert.Equal("", err.ToString());
            Assert.True(File.Exists(ck));
            Assert.Equal(0, Cli.Cli.Run(["train", "text", "--resume", ck, .. common], new StringWriter(), err));
            Assert.Equal("", err.ToString());
        }
        finally { Directory.Delete(dir, true); }
    }
}
