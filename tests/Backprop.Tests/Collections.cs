namespace Backprop.Tests;

/// <summary>
/// Tests that change the process-wide <see cref="Threads.Count"/> run alone, after the parallel ones,
/// so that no other test sees the setting change under it.
/// </summary>
[CollectionDefinition("Threads", DisableParallelization = true)]
public class ThreadsCollection;
