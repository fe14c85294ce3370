using System.CommandLine;

namespace Backprop.Cli.Training;

public static partial class TrainCommand
{
    /// <summary>
    /// <c>train --distributed</c>: this process is one rank of an mpirun job. Only rank 0 writes to
    /// stdout and stderr; an error before MPI starts (an option, the batch size) is the same on every
    /// rank and rank 0 prints it; a failure after it prints one line naming the rank and ends every rank.
    /// </summary>
    private static int RunDistributed(ParseResult r, Options o) =>
        DistributedTraining.RunRank(r, (dist, stdout, stderr) => RunWithThreads(r, o, stdout, stderr, dist));

    /// <summary>The command that continues a run from its checkpoint: under mpirun, an mpirun line with the same number of ranks.</summary>
    internal static string ResumeCommand(int? ranks, string savePath, string command = "train") => ranks == null
        ? $"backprop {command} --resume {savePath} --save {savePath}"
        : $"mpirun -np {ranks} backprop {command} --resume {savePath} --save {savePath} --distributed (any -np continues at the same global sample)";
}
