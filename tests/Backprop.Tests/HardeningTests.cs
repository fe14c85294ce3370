using System.Diagnostics;
using System.Text;
using Backprop.Data;
using Backprop.IO;

namespace Backprop.Tests;

/// <summary>
/// Saving and reading where the file system is not friendly: special files, symbolic links, long
/// names, concurrent writers, other programs' files, file modes (docs/reliability.md).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class HardeningTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bp-hard").FullName;

    public void Dispose()
    {
        Directory.Delete(_dir, true);
        GC.SuppressFinalize(this);
    }

    private string P(string name) => Path.Combine(_dir, name);

    private static void Save(string path, float value) => SafeTensors.Save(path, [new("x", Tensor.Full([3], value))]);

    private static float Saved(string path) => SafeTensors.Load(path).Tensors["x"].ToArray()[0];

    private static void MakeFifo(string path)
    {
        using var p = Process.Start("mkfifo", path);
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    /// <summary>Runs <paramref name="read"/> on a worker thread; a reader that blocks (on a FIFO) fails the test instead of hanging it.</summary>
    private static Exception ThrowsWithoutBlocking(Action read)
    {
        var task = Task.Run(() => Record.Exception(read));
        Assert.True(task.Wait(TimeSpan.FromSeconds(10)), "the reader blocked on a FIFO");
        return task.Result ?? throw new Xunit.Sdk.XunitException("the reader accepted a FIFO");
    }

    [Fact]
    public void ALongNameFailsUpFrontNamingThePathNotTheTemporaryFile()
    {
        string path = P(new string('c', 250));
        var e = Assert.Throws<IOException>(() => Checkpoint.ValidatePath(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("250 bytes", e.Message);
        Assert.DoesNotContain(AtomicFile.TempMarker, e.Message);
        var save = Assert.Throws<IOException>(() => Save(path, 1));
        Assert.DoesNotContain(AtomicFile.TempMarker, save.Message);
        Assert.Empty(Directory.GetFiles(_dir));

        // The longest name allowed works, and the check leaves nothing behind.
        string longest = P(new string('c', AtomicFile.MaxNameBytes));
        Assert.Equal(longest, Checkpoint.ValidatePath(longest));
        Assert.Empty(Directory.GetFiles(_dir));
        Save(longest, 2);
        Assert.Equal(2f, Saved(longest));
    }

    [Fact]
    public void ValidatePathRefusesDirectoriesSpecialFilesAndUnwritableFolders()
    {
        Assert.Contains("is a directory", Assert.Throws<IOException>(() => Checkpoint.ValidatePath(_dir)).Message);
        MakeFifo(P("fifo"));
        Assert.Contains("FIFO", Assert.Throws<IOException>(() => Checkpoint.ValidatePath(P("fifo"))).Message);
        File.WriteAllText(P("file"), "not a folder");
        var e = Assert.Throws<IOException>(() => Checkpoint.ValidatePath(Path.Combine(P("file"), "ck.safetensors")));
        Assert.Contains(P("file"), e.Message);
        Assert.Equal(P("new/ck.safetensors"), Checkpoint.ValidatePath(P("new/ck.safetensors")));
        Assert.Empty(Directory.GetFiles(P("new")));
    }

    [Fact]
    public void SpecialFilesAreRefusedAndLeftAsTheyWere()
    {
        // A FIFO, and a link to a character device (never /dev/null itself: a faulty save would replace it).
        MakeFifo(P("fifo"));
        File.CreateSymbolicLink(P("null"), "/dev/null");
        foreach (var (path, kind) in new[] { (P("fifo"), FileKind.Fifo), (P("null"), FileKind.CharacterDevice) })
        {
            var e = Assert.Throws<IOException>(() => Save(path, 1));
            Assert.Contains("refusing to replace it", e.Message);
            Assert.Equal(kind, FileKinds.Of(path));
        }
        Assert.Equal("/dev/null", new FileInfo(P("null")).LinkTarget);
        Assert.Equal(FileKind.CharacterDevice, FileKinds.Of("/dev/null"));
        Assert.Contains("is a directory", Assert.Throws<IOException>(() => Save(_dir, 1)).Message);
        Assert.Equal(2, Directory.GetFileSystemEntries(_dir).Length);   // no temporary file left
    }

    [Fact]
    public void ASymbolicLinkIsFollowedAndItsTargetReplaced()
    {
        Directory.CreateDirectory(P("real"));
        Save(P("real/ck"), 1);
        File.CreateSymbolicLink(P("link"), Path.Combine("real", "ck"));   // relative, as users make them
        File.CreateSymbolicLink(P("link2"), P("link"));                   // a chain
        Save(P("link2"), 2);
        Assert.Equal(Path.Combine("real", "ck"), new FileInfo(P("link")).LinkTarget);
        Assert.Equal(P("link"), new FileInfo(P("link2")).LinkTarget);
        Assert.Equal(2f, Saved(P("real/ck")));
        Assert.Equal(2f, Saved(P("link2")));
        Assert.Empty(AtomicFile.StaleTemporaries(P("real/ck")));
        Assert.Empty(AtomicFile.StaleTemporaries(P("link2")));
        // A dangling link: its target is created.
        File.CreateSymbolicLink(P("dangling"), P("real/new"));
        Save(P("dangling"), 3);
        Assert.Equal(3f, Saved(P("real/new")));
        Assert.NotNull(new FileInfo(P("dangling")).LinkTarget);
    }

    [Fact]
    public void TheFileModeIsKeptAcrossSaves()
    {
        Save(P("ck"), 1);
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        File.SetUnixFileMode(P("ck"), mode);
        Save(P("ck"), 2);
        Assert.Equal(mode, File.GetUnixFileMode(P("ck")));
        Checkpoint.Save(P("ck"), new CheckpointContent());
        Assert.Equal(mode, File.GetUnixFileMode(P("ck")));
    }

    [Fact]
    public void CleanUpRemovesOnlyProvablyAbandonedTemporaries()
    {
        string ck = P("ck");
        string host = AtomicFile.LocalHostId;
        int deadPid = DeadProcessId();
        string[] userFiles = [ck + ".tmp-notes.txt", ck + ".tmp-0123456789ab", ck + ".tmp-12-abc", ck + ".tmp-1-" + host + "-0123456789ab.bak"];
        string live = ck + $".tmp-1-{host}-0123456789ab";                        // pid 1 runs: another writer, maybe mid-save
        string dead = ck + $".tmp-{deadPid}-{host}-0123456789ab";                // its writer is gone
        string foreignFresh = ck + ".tmp-5-0badc0de-0123456789ab";               // another host: cannot tell
        string foreignOld = ck + ".tmp-6-0badc0de-0123456789ab";
        foreach (var f in userFiles.Append(live).Append(dead).Append(foreignFresh).Append(foreignOld)) File.WriteAllText(f, "x");
        File.SetLastWriteTimeUtc(foreignOld, DateTime.UtcNow - AtomicFile.ForeignStaleAfter - TimeSpan.FromMinutes(1));

        Save(ck, 1);
        foreach (var f in userFiles.Append(live).Append(foreignFresh)) Assert.True(File.Exists(f), $"{Path.GetFileName(f)} was deleted");
        Assert.False(File.Exists(dead));
        Assert.False(File.Exists(foreignOld));
        Assert.Equal([live, foreignFresh], AtomicFile.StaleTemporaries(ck).Order(StringComparer.Ordinal));
    }

    private static int DeadProcessId()
    {
        using var p = Process.Start("true");
        p.WaitForExit();
        return p.Id;
    }

    [Fact]
    public async Task ConcurrentWritersAllFinishAndTheLastRenameWins()
    {
        string ck = P("ck");
        var big = Tensor.Zeros(64 * 1024);
        using var start = new Barrier(4);
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < 25; i++)
                SafeTensors.Save(ck, [new("x", Tensor.Full([3], w)), new("big", big)]);
        })).ToArray();
        await Task.WhenAll(writers);   // a writer whose temporary file another's clean-up deleted throws here
        float last = Saved(ck);
        Assert.InRange(last, 0, 3);
        Assert.Empty(AtomicFile.StaleTemporaries(ck));
    }

    [Fact]
    public void ResumingADirectorySaysItIsADirectory()
    {
        var e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.Load(_dir));
        Assert.Contains("is a directory", e.Message);
        Assert.Contains("is a directory", Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(_dir)).Message);
        Assert.Contains("is a directory", Assert.Throws<DataFormatException>(() => Idx.Read(_dir)).Message);
    }

    [Fact]
    public void ReadersRefuseFifosAndDevicesWithoutBlocking()
    {
        string fifo = P("fifo");
        MakeFifo(fifo);
        File.CreateSymbolicLink(P("zero"), "/dev/zero");   // reading it never ends
        foreach (var path in new[] { fifo, P("zero") })
        {
            Assert.IsType<CheckpointFormatException>(ThrowsWithoutBlocking(() => Checkpoint.Load(path)));
            Assert.IsType<CheckpointFormatException>(ThrowsWithoutBlocking(() => SafeTensors.Load(path)));
            var e = Assert.IsType<DataFormatException>(ThrowsWithoutBlocking(() => Idx.Read(path)));
            Assert.Contains(path, e.Message);
            Assert.IsType<DataFormatException>(ThrowsWithoutBlocking(() => TextCorpus.Load(path)));
            Assert.IsType<DataFormatException>(ThrowsWithoutBlocking(() => WordCorpus.Load(path)));
        }
        Assert.Contains("FIFO", ThrowsWithoutBlocking(() => Idx.Read(fifo)).Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(9)]
    [InlineData(100_000)]
    public void TrailingBytesAfterAGzipStreamAreAnError(int junk)
    {
        var raw = DataTestFiles.IdxBytes(0x08, [4, 3], [.. Enumerable.Range(0, 12).Select(i => (byte)i)]);
        var gz = DataTestFiles.Gzip(raw);
        File.WriteAllBytes(P("ok.gz"), gz);
        Assert.Equal(12, Idx.Read(P("ok.gz")).Count);
        // Two members, as cat a.gz b.gz writes them, are one valid stream.
        var half = raw.Length / 2;
        File.WriteAllBytes(P("two.gz"), [.. DataTestFiles.Gzip(raw[..half]), .. DataTestFiles.Gzip(raw[half..])]);
        Assert.Equal(12, Idx.Read(P("two.gz")).Count);

        var tail = new byte[junk];
        new Random(junk).NextBytes(tail);
        tail[0] = 0x42;   // not the start of another member
        foreach (var (name, bytes) in new[] { ("junk.gz", gz.Concat(tail)), ("two-junk.gz", File.ReadAllBytes(P("two.gz")).Concat(tail)) })
        {
            File.WriteAllBytes(P(name), [.. bytes]);
            var e = Assert.Throws<DataFormatException>(() => Idx.Read(P(name)));
            Assert.Contains(P(name), e.Message);
            Assert.Contains($"{junk} bytes of trailing data after the end of the gzip stream", e.Message);
        }
    }

    [Fact]
    public void ASaveInAnotherProcessDoesNotDeleteATemporaryFileMidSave()
    {
        // The audit's case: two runs saving to the same path, one's clean-up deleting the other's
        // temporary file mid-save. Process A is held in the middle of its save (the test hook) while
        // this process saves the same path; A must then finish its save, and its file win.
        string ck = P("ck");
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "Backprop.Cli.dll"), "train", "xor", "--epochs", "1", "--threads", "1", "--quiet", "--save", ck })
            psi.ArgumentList.Add(arg);
        psi.Environment[AtomicFile.PauseVariable] = "1500";
        psi.Environment.Remove("BACKPROP_THREADS");
        using var a = Process.Start(psi)!;
        _ = a.StandardOutput.ReadToEndAsync();
        string? line;
        var err = new StringBuilder();
        while ((line = a.StandardError.ReadLine()) != null && !line.Contains("save paused mid-write", StringComparison.Ordinal)) err.AppendLine(line);
        Assert.True(line != null, $"the other process never reached its save: {err}");
        Assert.Single(AtomicFile.StaleTemporaries(ck));

        Save(ck, 7);   // this process: a complete save of the same path, with its clean-up
        Assert.Single(AtomicFile.StaleTemporaries(ck));   // A's temporary file is still there
        Assert.Equal(7f, Saved(ck));

        string rest = a.StandardError.ReadToEnd();
        Assert.True(a.WaitForExit(60_000), "the other process did not finish");
        Assert.True(a.ExitCode == 0, $"the other process failed: {rest}");
        Assert.Equal(1, Checkpoint.Load(ck).Epoch);   // A renamed last: its checkpoint won
        Assert.Empty(AtomicFile.StaleTemporaries(ck));
    }
}
