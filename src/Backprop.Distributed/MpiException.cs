namespace Backprop.Distributed;

/// <summary>An MPI problem: the library is missing, the program was not started by mpirun, or an MPI call failed. The message is one line.</summary>
public sealed class MpiException(string message, Exception? inner = null) : Exception(message, inner);
