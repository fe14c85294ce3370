namespace Backprop;

/// <summary>The flat buffer behind one or more tensors (views share it).</summary>
/// <remarks>
/// Each backend has its own storage type (the CPU's wraps a managed array from a pool). A storage is given back to the pool (and marked
/// <see cref="Released"/>) only when the library can prove nothing the user holds still reads it:
/// backward-pass temporaries, op-internal scratch, or everything produced inside a
/// <see cref="TensorScope"/> when that scope ends. A tensor over a released storage throws on access.
/// </remarks>
internal abstract class Storage
{
    /// <summary>Incremented by every in-place write, so backward can detect a saved tensor that changed.</summary>
    public int Version;

    /// <summary>True once the buffer went back to the pool; the storage must not be read or written again.</summary>
    public bool Released;

    /// <summary>Never give this buffer back (a leaf's gradient, a detached tensor, optimizer state).</summary>
    public bool Escaped;

    /// <summary>Allocated during a backward pass: a temporary unless it escaped into a leaf's Grad.</summary>
    public bool BackwardTemp;

    /// <summary>Op-internal scratch saved for backward (never returned to the caller): released with its node.</summary>
    public bool Scratch;

    /// <summary>Pending-gradient slots of the backward pass that refer to this storage.</summary>
    public int EngineRefs;

    public abstract DType DType { get; }
    public abstract int Length { get; }

    /// <summary>The backend that owns this buffer and computes on it.</summary>
    public abstract Backends.IBackend Backend { get; }

    /// <summary>Gives the buffer back to the pool unless it escaped or was already released.</summary>
    public abstract void Release();

    protected Exception ReleasedError() => new ObjectDisposedException("Tensor",
        "this tensor's buffer was recycled: it was produced inside a Tensor.Scope() that has ended (or is an internal temporary). " +
        "Keep a tensor beyond its scope with Detach() before the scope ends, or read it inside the scope.");
}

