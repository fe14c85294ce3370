namespace Backprop.Backends;

/// <summary>Where a tensor's buffer lives and which <see cref="IBackend"/> computes on it.</summary>
public enum Device
{
    /// <summary>Managed arrays and the SIMD, multi-threaded kernels (the default).</summary>
    Cpu,
    /// <summary>
    /// A deliberately plain backend: scalar loops over a buffer type of its own, no SIMD, no threads.
    /// It is the oracle the fast backend is tested against, and proof that the library reaches the
    /// hardware only through <see cref="IBackend"/>.
    /// </summary>
    Reference,
}

/// <summary>Elementwise maps y = f(x) (p0 and p1 are the op's constants where it has any).</summary>
internal enum UnaryOp
{
    /// <summary>y = x (a copy; with a dtype change, a conversion).</summary>
    Copy,
    /// <summary>y = p0·x.</summary>
    Scale,
    Neg, Exp, Log, Sqrt, Abs, Sign, Erf, Tanh, Sigmoid, Relu,
    /// <summary>x for x &gt; 0, p0·x otherwise.</summary>
    LeakyRelu,
    /// <summary>x·Φ(x).</summary>
    Gelu,
    /// <summary>The tanh approximation of GELU.</summary>
    GeluTanh,
    /// <summary>(1/p0)·log(1 + e^(p0·x)), x where p0·x &gt; p1.</summary>
    Softplus,
    /// <summary>min(max(x, p0), p1); NaN stays NaN.</summary>
    Clamp,
    /// <summary>1 where p0 ≤ x ≤ p1, else 0.</summary>
    InRange,
    /// <summary>1 where x ≠ 0, else 0.</summary>
    NonZero,
    /// <summary>x where finite, else 0.</summary>
    FiniteOrZero,
    /// <summary>x^p0.</summary>
    Pow,
    Sin, Cos,
    /// <summary>Rounding to an integer value: down, up, and to the nearest with halves to even (as torch.round).</summary>
    Floor, Ceil, Round,
}

/// <summary>Elementwise y = f(a, b), a and b broadcast to y.</summary>
internal enum BinaryOp
{
    Add, Sub, Mul, Div, Pow, Maximum, Minimum,
    /// <summary>The share of d max(a, b) going to a: 1 where a wins, ½ on ties, 0 where b wins.</summary>
    MaxWinner,
    /// <summary>The same for the minimum.</summary>
    MinWinner,
    /// <summary>Comparisons: 1 or 0.</summary>
    Eq, Ne, Gt, Ge, Lt, Le,
    /// <summary>a·(1 − b²): tanh's backward from the output b.</summary>
    TanhGrad,
    /// <summary>a·b·(1 − b): sigmoid's backward from the output b.</summary>
    SigmoidGrad,
    /// <summary>a where b &gt; 0, else 0: ReLU's backward from the output b.</summary>
    ReluGrad,
    /// <summary>a where b &gt; 0, else p0·a: leaky ReLU's backward from the input b.</summary>
    LeakyReluGrad,
    /// <summary>a·GELU′(b) from the input b.</summary>
    GeluGrad,
    /// <summary>a·GELU′(b) of the tanh approximation.</summary>
    GeluTanhGrad,
    /// <summary>a·sigmoid(p0·b), a where p0·b &gt; p1: softplus's backward from the input b.</summary>
    SoftplusGrad,
    /// <summary>b where a ≠ 0, else 0 (no multiplication: NaN or ∞ elsewhere in b do not leak).</summary>
    SelectNonZero,
    /// <summary>b where a = 0, else 0.</summary>
    KeepZero,
}

/// <summary>
/// The seam between the library and the hardware. Everything in <c>Ops/</c>, <c>NN/</c>, <c>Optim/</c>
/// and <c>Autograd/</c> computes through it; a backend sees <see cref="View"/>s (buffer, offset, shape,
/// strides), lengths and constants, never a tensor, a graph node or the engine. Outputs are allocated by
/// the caller with <see cref="Allocate"/> and passed in; unless a method says otherwise, an output view is
/// contiguous and does not overlap its inputs (except exactly, for in-place maps). A new device is a new
/// folder under <c>Backends/</c> implementing this interface and its storage type.
/// See docs/architecture.md for each method.
/// </summary>
internal partial interface IBackend
{
    /// <summary>The device this backend computes on.</summary>
    Device Device { get; }

    /// <summary>A buffer of <paramref name="length"/> elements of <paramref name="dtype"/>, contents undefined (the CPU backend takes it from a per-thread pool).</summary>
    Storage Allocate(DType dtype, int length);

    /// <summary>Host → device: copies <paramref name="source"/> (of the view's dtype) into the contiguous view <paramref name="y"/>.</summary>
    void Upload<T>(ReadOnlySpan<T> source, in View y) where T : unmanaged;

    /// <summary>Device → host: the elements of <paramref name="x"/> in row-major order into <paramref name="destination"/> (of x's dtype).</summary>
    void Download<T>(in View x, Span<T> destination) where T : unmanaged;

    /// <summary>Sets every element of <paramref name="y"/> (any layout) to <paramref name="value"/>.</summary>
    void Fill(in View y, double value);

    /// <summary>y = x, with x broadcast to y's shape and converted to y's dtype; y may have any layout (not overlapping x).</summary>
    void Copy(in View x, in View y);

    /// <summary>y = f(x) for float32 or float64 views of the same shape; y may be x itself.</summary>
    void Unary(UnaryOp op, in View x, in View y, double p0 = 0, double p1 = 0);

    /// <summary>y = f(a, b) with a and b broadcast to y's shape (same float dtype); y may be a or b exactly.</summary>
    void Binary(BinaryOp op, in View a, in View b, in View y, double p0 = 0, double p1 = 0);

    /// <summary>
    /// Sums <paramref name="x"/> into <paramref name="y"/>, whose shape is x's with the reduced dimensions
    /// set to 1 (same rank), contiguous; with <paramref name="accumulate"/>, adds the sums to y's values.
    /// </summary>
    void Sum(in View x, in View y, bool accumulate = false);

    /// <summary>
    /// Largest (or smallest) value along dimension <paramref name="dim"/> and its index (the first on ties;
    /// NaN wins) into contiguous <paramref name="values"/> and int64 <paramref name="indices"/> of x's shape with dim set to 1.
    /// </summary>
    void ArgExtreme(in View x, int dim, bool max, in View values, in View indices);

    /// <summary>
    /// Cumulative sum of a contiguous float x along <paramref name="dim"/> into contiguous y of x's shape:
    /// y[.., i, ..] = Σ_{j ≤ i} x[.., j, ..]. With <paramref name="reverse"/> the sum runs from the end
    /// (y[i] = Σ_{j ≥ i} x[j]: the cumulative sum's gradient).
    /// </summary>
    void Cumsum(in View x, int dim, bool reverse, in View y);

    /// <summary>Counts the NaN, +∞ and −∞ elements of a contiguous float view.</summary>
    (long NaN, long PosInf, long NegInf) CountNonFinite(in View x);
}

/// <summary>How a loss combines per-sample values (the backend's copy of NN.Reduction).</summary>
internal enum LossReduction
{
    Mean,
    Sum,
    None,
}

internal partial interface IBackend
{
    /// <summary>
    /// y = a·b + beta·y over the last two dimensions (a: [..., m, k], b: [..., k, n], y: [..., m, n]
    /// contiguous), with the leading (batch) dimensions of a and b broadcast to y's; a and b may have
    /// any strides (a transposed view is read as such, not copied, where the backend can).
    /// </summary>
    void MatMul(in View a, in View b, in View y, float beta);

    /// <summary>
    /// c = op(a)·op(b) + beta·c on row-major matrices read from the buffers' offsets (op(a) m×k, op(b) k×n,
    /// c m×n; a transposed operand is read as stored, k×m or n×k): the BLAS form, for layers whose
    /// operands are contiguous whatever their nominal shapes. Only storage and offset of the views are used.
    /// </summary>
    void Gemm(bool transA, bool transB, int m, int n, int k, in View a, in View b, float beta, in View c);

    /// <summary>acc[j] += Σ_i m[i, j] for the contiguous m read as rows × acc.NumElements (a bias gradient).</summary>
    void AddRowSums(in View m, in View acc);

    /// <summary>Softmax (or log-softmax) of each row of the contiguous [rows, cols] x into y, stable (row max subtracted first).</summary>
    void SoftmaxRows(in View x, in View y, bool log);

    /// <summary>
    /// Fused log-softmax + negative log-likelihood for int64 class indices: writes log-probabilities of the
    /// contiguous logits [n, c] into <paramref name="logp"/> and the loss (one value per sample for None, else one)
    /// into <paramref name="output"/>; returns how many samples were counted (not ignored). Target classes out of
    /// range throw <see cref="IndexOutOfRangeException"/> naming the class and position.
    /// </summary>
    int CrossEntropy(in View logits, in View target, in View logp, in View output, LossReduction reduction, long ignoreIndex, double labelSmoothing);

    /// <summary>d loss / d logits = (softmax − q)·dy per row (q the smoothed one-hot target; 0 for ignored rows), divided by <paramref name="denominator"/> unless None.</summary>
    void CrossEntropyBackward(in View logp, in View target, in View dy, in View grad, LossReduction reduction, long ignoreIndex, double denominator, double labelSmoothing);

    /// <summary>y[p] = x[p with dimension dim replaced by index[p]] for the contiguous int64 index (y contiguous, index's shape); indices out of range throw, negative ones count from the end.</summary>
    void Gather(in View x, int dim, in View index, in View y);

    /// <summary>target[p with dim replaced by index[p]] += src[p] for every position p of the contiguous int64 index, in place.</summary>
    void ScatterAdd(in View target, int dim, in View index, in View src);

    /// <summary>y = the slices <paramref name="index"/> (validated positions) of x along dim.</summary>
    void IndexSelect(in View x, int dim, int[] index, in View y);

    /// <summary>target's slice index[i] along dim += src's slice i (repeats add up), in place.</summary>
    void IndexAdd(in View target, int dim, int[] index, in View src);

    /// <summary>Rows of the contiguous weight [num, dim] for the contiguous int64 ids (any shape) into y [..., dim]; an id out of range throws naming it and its position.</summary>
    void EmbeddingForward(in View weight, in View ids, in View y);

    /// <summary>target[ids[i]] += dy row i (target contiguous [num, dim], dy contiguous [ids.Length, dim]).</summary>
    void EmbeddingBackward(in View dy, in View ids, in View target);
}

/// <summary>Error messages the backends share, so that every device reports a bad index alike.</summary>
internal static class IndexErrors
{
    public static IndexOutOfRangeException OutOfRange(string op, long v, int dim, int size, int[] indexShape, int flat)
    {
        var pos = new int[indexShape.Length];
        for (int d = indexShape.Length - 1; d >= 0; d--) { pos[d] = flat % Math.Max(indexShape[d], 1); flat /= Math.Max(indexShape[d], 1); }
        return new IndexOutOfRangeException($"{op}: index {v} is out of range for dimension {dim} of size {size} (at index position {Shape.Format(pos)}).");
    }

    public static IndexOutOfRangeException ClassOutOfRange(string op, long cls, int position, int classes) =>
        new($"{op}: target class {cls} at position {position} is out of range for {classes} classes.");

    public static IndexOutOfRangeException EmbeddingOutOfRange(long id, int position, int num) =>
        new($"Embedding: index {id} (at flat position {position}) is out of range for {num} embeddings.");
}
