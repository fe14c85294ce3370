using System.CommandLine;

namespace Backprop.Cli.Training;

public static partial class TrainCommand
{
    /// <summary>
    /// <c>train --distributed</c>: this process is one rank of an mpirun job. Only rank 0 writes to
    /// stdout and stderr; an error before MPI starts (an option, the batch size) is the same on every
    /// rank and rank 0 prints it; a failure after it prints one line naming the rank and ends every rank.
    /// </summary>
    private static int RunDistributed(ParseResult r, Options o)
    {
        var dist = new DistributedTraining();
        // The cores are shared by the ranks on this machine (--threads or a resumed run's count win).
        Threads.Count = DistributedTraining.DefaultThreads();
        try
        {
            int code = RunWithThreads(r, o, dist.IsRoot ? r.InvocationConfiguration.Output : TextWriter.Null,
                dist.IsRoot ? r.InvocationConfiguration.Error : TextWriter.Null, dist);
            dist.Dispose();
            return code;
        }
        catch (Exception e) when (dist.Started)
        {
            dist.Fail(e, e is CliException ? 2 : 1);
            throw;
        }
        catch (CliException) when (!dist.IsRoot)
        {
            return 2;
        }
    }

    /// <summary>The command that continues a run from its checkpoint: under mpirun, an mpirun line with the same number of ranks.</summary>
    internal static string ResumeCommand(int? ranks, string savePath) => ranks == null
        ? $"backprop train --resume {savePath} --save {savePath}"
        : $"mpirun -np {ranks} backprop train --resume {savePath} --save {savePath} --distributed (any -np continues at the same global sample)";
}
