using System.CommandLine;
using System.Net.Sockets;

namespace Backprop.Cli.Viz;

/// <summary><c>backprop viz [--port N] [--dataset NAME]</c>: the live page (see docs/visualization.md).</summary>
public static class VizCommand
{
    /// <summary>The command, for the command tree of <see cref="Cli"/>.</summary>
    internal static Command Create()
    {
        var port = CliOptions.Int("--port", "port on 127.0.0.1 (default: a free one)", 0, 65535);
        var dataset = CliOptions.Choice("--dataset", "dataset", VizData.Names.Where(n => n != "csv").ToArray(), "dataset to start with (default spirals)");
        var command = new NotedCommand("viz", "Serve a live page on 127.0.0.1 that trains a network and shows backprop at work.")
        {
            Notes = "The printed URL carries a random token; every request must present it.\n" +
                "The page picks the dataset, features, layers, activation, loss, optimizer and learning rate,\n" +
                "plays, pauses, steps and resets training, and shows the numbers behind each gradient.\n" +
                "Stop with Ctrl+C. See docs/visualization.md.",
        };
        command.Add(port);
        command.Add(dataset);
        command.SetAction(r => Run(r.GetValue(port) ?? 0, r.GetValue(dataset), r.InvocationConfiguration.Output));
        return command;
    }

    private static int Run(int port, string? dataset, TextWriter output)
    {
        VizServer server;
        try
        {
            server = VizServer.StartAsync(port, new VizConfig { Dataset = dataset ?? "spirals" }).GetAwaiter().GetResult();
        }
        catch (IOException e) when (e.InnerException is SocketException || e.Message.Contains("address", StringComparison.OrdinalIgnoreCase))
        {
            throw new CliException($"--port {port}: cannot listen on 127.0.0.1:{port} ({e.Message.TrimEnd('.')}).");
        }
        output.WriteLine($"backprop viz: open {server.Url}");
        output.WriteLine("(only this machine can connect; the token in the URL is required. Ctrl+C stops.)");
        output.Flush();
        using var stop = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            stop.Token.WaitHandle.WaitOne();
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        return 0;
    }
}
