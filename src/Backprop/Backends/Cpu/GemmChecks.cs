namespace Backprop.Backends.Cpu;

// Argument validation shared by the float and double entry points. Messages name the argument,
// the shape that determines its requirement, and the needed and actual sizes; they are only
// formatted on failure, so a valid call allocates nothing.
public static partial class Gemm
{
    private static void CheckShape(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (lda < Math.Max(1, transA ? m : k)) ThrowLeading(nameof(lda), lda, 'A', transA, transA ? k : m, transA ? m : k);
        if (ldb < Math.Max(1, transB ? k : n)) ThrowLeading(nameof(ldb), ldb, 'B', transB, transB ? n : k, transB ? k : n);
        if (ldc < Math.Max(1, n)) ThrowLeading(nameof(ldc), ldc, 'C', false, m, n);
    }

    private static void ThrowLeading(string name, int ld, char matrix, bool transposed, int rows, int cols) =>
        throw new ArgumentException(
            $"{name} = {ld} is smaller than the row length of {matrix} as stored ({ShapeText(matrix, transposed, rows, cols)}); " +
            $"it must be at least {Math.Max(1, cols)}.", name);

    private static string ShapeText(char matrix, bool transposed, int rows, int cols) => matrix switch
    {
        'A' => transposed ? $"stored k×m = {rows}×{cols}, transA" : $"m×k = {rows}×{cols}",
        'B' => transposed ? $"stored n×k = {rows}×{cols}, transB" : $"k×n = {rows}×{cols}",
        _ => $"m×n = {rows}×{cols}",
    };

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
        CheckLength("a", aLength, batch, strideA, 'A', transA, transA ? k : m, transA ? m : k, lda);
        CheckLength("b", bLength, batch, strideB, 'B', transB, transB ? n : k, transB ? k : n, ldb);
        CheckLength("c", cLength, batch, strideC, 'C', false, m, n, ldc);
    }

    private static void CheckLength(string name, int length, int batch, long stride, char matrix, bool transposed,
        int rows, int cols, int ld)
    {
        long one = rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;
        long needed = one == 0 ? 0 : (batch - 1) * stride + one;
        if (length >= needed) return;
        string batchText = batch > 1 ? $" for {batch} items {stride} apart" : "";
        throw new ArgumentException(
            $"{name} is too short: {matrix} ({ShapeText(matrix, transposed, rows, cols)}, ld{char.ToLowerInvariant(matrix)} = {ld}){batchText} " +
            $"needs at least {needed} elements, but it has {length}.", name);
    }
}
