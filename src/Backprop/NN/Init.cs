namespace Backprop.NN;

/// <summary>How a layer's weights are initialized.</summary>
public enum WeightInit
{
    /// <summary>PyTorch's default for Linear: Kaiming-uniform with a = √5, i.e. U(−1/√fanIn, 1/√fanIn).</summary>
    Default,
    /// <summary>Kaiming (He) uniform for ReLU: U(−√(6/fanIn), √(6/fanIn)).</summary>
    KaimingUniform,
    /// <summary>Kaiming (He) normal for ReLU: N(0, 2/fanIn).</summary>
    KaimingNormal,
    /// <summary>Xavier (Glorot) uniform: U(−√(6/(fanIn+fanOut)), √(6/(fanIn+fanOut))).</summary>
    XavierUniform,
    /// <summary>Xavier (Glorot) normal: N(0, 2/(fanIn+fanOut)).</summary>
    XavierNormal,
    /// <summary>Standard normal N(0, 1), as in Nielsen's book.</summary>
    StandardNormal,
    /// <summary>All zeros.</summary>
    Zeros,
}

/// <summary>In-place weight initializers (like torch.nn.init); all take a seeded generator.</summary>
public static class Init
{
    /// <summary>Fan-in and fan-out of a weight of shape [out, in, *kernel].</summary>
    public static (int FanIn, int FanOut) Fans(Tensor w)
    {
        if (w.Rank < 2) throw new ArgumentException($"Init: fan-in and fan-out need a tensor with at least 2 dimensions, got shape {w.Shape}.");
        int receptive = 1;
        for (int i = 2; i < w.Rank; i++) receptive *= w.Size(i);
        return (w.Size(1) * receptive, w.Size(0) * receptive);
    }

    /// <summary>Fills with U(a, b): torch.nn.init.uniform_.</summary>
    public static Tensor Uniform_(Tensor t, double a = 0, double b = 1, Generator? generator = null)
    {
        if (!(a <= b)) throw new ArgumentException($"Init.Uniform_: the lower bound {a} must not exceed the upper bound {b}.");
        using (Tensor.NoGrad()) t.CopyFrom(Tensor.Uniform(t.Shape.ToArray(), a, b, generator, t.DType));
        return t;
    }

    /// <summary>Fills with N(mean, std²): torch.nn.init.normal_.</summary>
    public static Tensor Normal_(Tensor t, double mean = 0, double std = 1, Generator? generator = null)
    {
        if (!(std >= 0)) throw new ArgumentOutOfRangeException(nameof(std), std, $"Init.Normal_: std must be >= 0, got {std}.");
        using (Tensor.NoGrad()) t.CopyFrom(Tensor.Normal(t.Shape.ToArray(), mean, std, generator, t.DType));
        return t;
    }

    /// <summary>Fills with zeros.</summary>
    public static Tensor Zeros_(Tensor t)
    {
        using (Tensor.NoGrad()) t.Zero_();
        return t;
    }

    /// <summary>Fills with ones.</summary>
    public static Tensor Ones_(Tensor t) => Constant_(t, 1);

    /// <summary>Fills with <paramref name="value"/>.</summary>
    public static Tensor Constant_(Tensor t, double value)
    {
        using (Tensor.NoGrad()) t.Fill_(value);
        return t;
    }

    /// <summary>
    /// A (semi-)orthogonal matrix times <paramref name="gain"/>: torch.nn.init.orthogonal_. The tensor
    /// is seen as a matrix [rows, cols] (rows = the first dimension, cols = all the others); a standard
    /// normal matrix is orthogonalized (QR, with R's diagonal made positive), so the rows are
    /// orthonormal when rows ≤ cols (W·Wᵀ = I) and the columns when rows ≥ cols (Wᵀ·W = I).
    /// </summary>
    public static Tensor Orthogonal_(Tensor t, double gain = 1, Generator? generator = null)
    {
        if (t.Rank < 2) throw new ArgumentException($"Init.Orthogonal_: needs a tensor with at least 2 dimensions, got shape {t.Shape}.");
        int rows = t.Size(0), cols = t.NumElements / Math.Max(rows, 1);
        if (rows == 0 || cols == 0) return t;
        // orthonormalize the columns of the tall matrix a [m, n] (m ≥ n); the wide case is its transpose
        bool wide = rows < cols;
        int m = wide ? cols : rows, n = wide ? rows : cols;
        var a = Tensor.Normal([m, n], 0, 1, generator, DType.Float64).ToDoubleArray();
        var q = new double[m * n];
        for (int j = 0; j < n; j++)
        {
            var v = new double[m];
            for (int i = 0; i < m; i++) v[i] = a[i * n + j];
            // modified Gram-Schmidt, twice, against the columns already made
            for (int pass = 0; pass < 2; pass++)
                for (int k = 0; k < j; k++)
                {
                    double dot = 0;
                    for (int i = 0; i < m; i++) dot += q[i * n + k] * v[i];
                    for (int i = 0; i < m; i++) v[i] -= dot * q[i * n + k];
                }
            double norm = 0;
            for (int i = 0; i < m; i++) norm += v[i] * v[i];
            norm = Math.Sqrt(norm);
            for (int i = 0; i < m; i++) q[i * n + j] = v[i] / norm;
        }
        var w = new double[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                w[r * cols + c] = gain * (wide ? q[c * n + r] : q[r * n + c]);
        using (Tensor.NoGrad()) t.CopyFrom(Tensor.FromArray(w, [.. t.Shape.AsSpan()]).To(t.DType));
        return t;
    }

    /// <summary>Initializes a weight of shape [out, in, ...] with the chosen scheme.</summary>
    public static Tensor Apply(Tensor w, WeightInit scheme, Generator? generator = null)
    {
        var (fanIn, fanOut) = Fans(w);
        return scheme switch
        {
            WeightInit.Default => Uniform_(w, -1 / Math.Sqrt(fanIn), 1 / Math.Sqrt(fanIn), generator),
            WeightInit.KaimingUniform => Uniform_(w, -Math.Sqrt(6.0 / fanIn), Math.Sqrt(6.0 / fanIn), generator),
            WeightInit.KaimingNormal => Normal_(w, 0, Math.Sqrt(2.0 / fanIn), generator),
            WeightInit.XavierUniform => Uniform_(w, -Math.Sqrt(6.0 / (fanIn + fanOut)), Math.Sqrt(6.0 / (fanIn + fanOut)), generator),
            WeightInit.XavierNormal => Normal_(w, 0, Math.Sqrt(2.0 / (fanIn + fanOut)), generator),
            WeightInit.StandardNormal => Normal_(w, 0, 1, generator),
            WeightInit.Zeros => Zeros_(w),
            _ => throw new ArgumentOutOfRangeException(nameof(scheme), scheme, "Init: unknown scheme."),
        };
    }
}
