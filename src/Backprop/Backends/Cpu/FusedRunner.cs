using System.Runtime.Intrinsics;

namespace Backprop.Backends.Cpu;

/// <summary>
/// The body of a fused optimizer update: one pass that reads a parameter, its gradient and its
/// state buffers once and writes them once, over elements [i, end) of the whole parameter.
/// </summary>
internal interface IFusedKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Updates elements from <paramref name="i"/> while a full register of <typeparamref name="V"/> fits before <paramref name="end"/>; returns where it stopped.</summary>
    int Loop<V>(int i, int end) where V : struct, ILanes<V, T>;
}

/// <summary>
/// Runs a fused kernel over a parameter at the widest hardware vector width with a scalar tail, and
/// splits parameters past a million elements across <see cref="Threads"/>. The CPU backend keeps one
/// runner per kernel type, dtype and thread and reuses it for every parameter, so a step allocates nothing.
/// </summary>
internal sealed class FusedRunner<T, K> : IParallelWork
    where T : unmanaged, IFloatingPointIeee754<T>
    where K : struct, IFusedKernel<T>
{
    /// <summary>Below this many elements per chunk, waking a worker costs more than the memory traffic it shares.</summary>
    internal const int MinChunk = 1 << 19;

    /// <summary>The update to run; set its fields, then call <see cref="Execute"/>.</summary>
    public K Kernel;

    private int _length;

    /// <summary>Applies <see cref="Kernel"/> to elements [0, length).</summary>
    public void Execute(int length)
    {
        _length = length;
        int chunks = Threads.ChunksFor(length, MinChunk);
        if (chunks <= 1) RunRange(0, length);
        else Threads.For(chunks, this);
    }

    void IParallelWork.Run(int chunk, int chunks)
    {
        // Chunk borders on multiples of 64 elements keep every chunk's vectors cache-line aligned alike.
        long per = ((long)_length + chunks - 1) / chunks;
        per = (per + 63) & ~63L;
        int start = (int)Math.Min(per * chunk, _length);
        int end = (int)Math.Min(per * (chunk + 1), _length);
        if (end > start) RunRange(start, end);
    }

    private void RunRange(int start, int end)
    {
        int i = start;
        if (Vector512.IsHardwareAccelerated) i = Kernel.Loop<Lanes512<T>>(i, end);
        else if (Vector256.IsHardwareAccelerated) i = Kernel.Loop<Lanes256<T>>(i, end);
        else if (Vector128.IsHardwareAccelerated) i = Kernel.Loop<Lanes128<T>>(i, end);
        Kernel.Loop<Lane1<T>>(i, end);
    }
}
