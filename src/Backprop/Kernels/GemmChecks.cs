namespace Backprop.Kernels;

// Argument validation shared by the float and double entry points. Messages name the argument,
// the shape that determines its requirement, and the needed and actual sizes.
public static partial class Gemm
{
    private static void CheckShape(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        CheckLeading(nameof(lda), lda, transA ? m : k, "A", transA ? $"k×m = {k}×{m} (transA)" : $"m×k = {m}×{k}");
        CheckLeading(nameof(ldb), ldb, transB ? k : n, "B", transB ? $"n×k = {n}×{k} (transB)" : $"k×n = {k}×{n}");
        CheckLeading(nameof(ldc), ldc, n, "C", $"m×n = {m}×{n}");
    }

    private static void CheckLeading(string name, int ld, int rowLength, string matrix, string shape)
    {
        if (ld < Math.Max(1, rowLength))
            throw new ArgumentException(
                $"{name} = {ld} is smaller than the row length of {matrix} as stored ({shape}); it must be at least {Math.Max(1, rowLength)}.", name);
    }

    private static void CheckBatch(int batch, long strideA, long strideB, long strideC)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        ArgumentOutOfRangeException.ThrowIfNegative(strideA);
        ArgumentOutOfRangeException.ThrowIfNegative(strideB);
        ArgumentOutOfRangeException.ThrowIfNegative(strideC);
    }

    private static void CheckSpans(int batch, bool transA, bool transB, int m, int n, int k,
        int aLength, int lda, long strideA, int bLength, int ldb, long strideB, int cLength, int ldc, long strideC)
    {
        // Nothing is read or written when the product is empty, so any span will do.
        if (batch == 0 || m == 0 || n == 0) return;
        CheckLength("a", aLength, batch, strideA, transA ? k : m, transA ? m : k, lda,
            transA ? $"A (stored k×m = {k}×{m}, lda = {lda})" : $"A (m×k = {m}×{k}, lda = {lda})");
        CheckLength("b", bLength, batch, strideB, transB ? n : k, transB ? k : n, ldb,
            transB ? $"B (stored n×k = {n}×{k}, ldb = {ldb})" : $"B (k×n = {k}×{n}, ldb = {ldb})");
        CheckLength("c", cLength, batch, strideC, m, n, ldc, $"C (m×n = {m}×{n}, ldc = {ldc})");
    }

    private static void CheckLength(string name, int length, int batch, long stride, int rows, int cols, int ld, string what)
    {
        long one = rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;
        long needed = one == 0 ? 0 : (batch - 1) * stride + one;
        if (length < needed)
        {
            string batchText = batch > 1 ? $" for {batch} items {stride} apart" : "";
            throw new ArgumentException($"{name} is too short: {what}{batchText} needs at least {needed} elements, but it has {length}.", name);
        }
    }
}
