namespace Backprop;

public partial class Tensor
{
    internal static int[] CheckShape(ReadOnlySpan<int> shape, string op)
    {
        foreach (var d in shape)
            if (d < 0)
                throw new ArgumentException($"{op}: shape {Backprop.Shape.Format(shape)} has a negative dimension.", nameof(shape));
        return shape.ToArray();
    }

    /// <summary>
    /// A new contiguous op output whose contents the caller will overwrite entirely (pooled; recycled by
    /// the active <see cref="TensorScope"/>), on the default device. Takes ownership of <paramref name="shape"/>.
    /// </summary>
    internal static Tensor Empty<T>(int[] shape) where T : unmanaged => Empty(shape, DTypeExtensions.Of<T>());

    /// <summary>A new contiguous op output of the given dtype on the default device (see <see cref="Empty{T}"/>).</summary>
    internal static Tensor Empty(int[] shape, DType dtype) => Empty(shape, dtype, Backends.Backend.DefaultBackend);

    /// <summary>A new contiguous op output on <paramref name="backend"/>'s device.</summary>
    internal static Tensor Empty(int[] shape, DType dtype, Backends.IBackend backend) => new(Track(backend.Allocate(dtype, CheckedCount(shape)), opOutput: true), shape);

    /// <summary>
    /// A new contiguous CPU tensor for host code that fills it through spans (data loading, file IO):
    /// datasets live in host memory; move a batch to another device with <see cref="To(Backends.Device)"/>.
    /// </summary>
    internal static Tensor HostEmpty<T>(int[] shape) where T : unmanaged => HostEmpty(shape, DTypeExtensions.Of<T>());

    /// <summary>A new contiguous CPU tensor of the given dtype (see <see cref="HostEmpty{T}"/>).</summary>
    internal static Tensor HostEmpty(int[] shape, DType dtype) => Empty(shape, dtype, Backends.Cpu.CpuBackend.Instance);

    /// <summary>A new tensor for a creation function: pooled memory, but never recycled by a scope.</summary>
    private static Tensor Allocate(int[] shape, DType dtype) => Allocate(shape, dtype, Backends.Backend.DefaultBackend);

    private static Tensor Allocate(int[] shape, DType dtype, Backends.IBackend backend) =>
        new(Track(backend.Allocate(dtype, CheckedCount(shape)), opOutput: false), shape);

    /// <summary>
    /// During a backward pass a new buffer is a backward temporary; otherwise, for an op's output
    /// (<paramref name="opOutput"/>), it belongs to the active <see cref="TensorScope"/>, if any.
    /// </summary>
    private static Storage Track(Storage s, bool opOutput)
    {
        if (s.Length == 0) return s;
        if (Autograd.Engine.AllocatesTemporaries)
        {
            s.BackwardTemp = true;
            Autograd.Engine.TrackTemp(s);
        }
        else if (opOutput) TensorScope.Track(s);
        return s;
    }

    private static int CheckedCount(int[] shape)
    {
        long n = Backprop.Shape.Product(shape);
        if (n > int.MaxValue)
            throw new ArgumentException($"Tensor: shape {Backprop.Shape.Format(shape)} has {n} elements, more than the supported {int.MaxValue}.");
        return (int)n;
    }

    /// <summary>A new uninitialized-by-contract tensor with this tensor's shape and dtype (filled with zeros in practice).</summary>
    internal Tensor EmptyLike() => Empty(_shape, DType, Backend);

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(params int[] shape) => Zeros(shape, DType.Float32);

    /// <summary>A tensor of zeros of the given dtype.</summary>
    public static Tensor Zeros(ReadOnlySpan<int> shape, DType dtype)
    {
        var s = CheckShape(shape, "Zeros");
        var t = Allocate(s, dtype);
        t.ClearStorage();
        return t;
    }

    /// <summary>A tensor of ones.</summary>
    public static Tensor Ones(params int[] shape) => Full(shape, 1.0, DType.Float32);

    /// <summary>A tensor of ones of the given dtype.</summary>
    public static Tensor Ones(ReadOnlySpan<int> shape, DType dtype) => Full(shape, 1.0, dtype);

    /// <summary>A tensor filled with <paramref name="value"/>.</summary>
    public static Tensor Full(ReadOnlySpan<int> shape, double value, DType dtype = DType.Float32)
    {
        var t = Allocate(CheckShape(shape, "Full"), dtype);
        t.FillStorage(value);
        return t;
    }

    /// <summary>Zeros with the shape, dtype and device of <paramref name="like"/>.</summary>
    public static Tensor ZerosLike(Tensor like) => FullOn(like._shape, 0, like.DType, like.Backend);

    /// <summary>Ones with the shape, dtype and device of <paramref name="like"/>.</summary>
    public static Tensor OnesLike(Tensor like) => FullOn(like._shape, 1.0, like.DType, like.Backend);

    /// <summary>A tensor filled with <paramref name="value"/> on <paramref name="backend"/>'s device.</summary>
    internal static Tensor FullOn(int[] shape, double value, DType dtype, Backends.IBackend backend)
    {
        var t = Allocate(CheckShape(shape, "Full"), dtype, backend);
        t.FillStorage(value);
        return t;
    }

    /// <summary>A 0-dimensional tensor holding one value.</summary>
    public static Tensor Scalar(double value, DType dtype = DType.Float32) => Full([], value, dtype);

    /// <summary>Values start, start+step, ... below end (like torch.arange).</summary>
    public static Tensor Arange(double start, double end, double step = 1, DType dtype = DType.Float32)
    {
        if (step == 0 || double.IsNaN(step)) throw new ArgumentException("Arange: step must be nonzero.", nameof(step));
        long n = (long)Math.Ceiling((end - start) / step);
        if (n < 0) n = 0;
        if (n > int.MaxValue) throw new ArgumentException($"Arange: {n} elements is too many.");
        var t = Allocate([(int)n], dtype);
        for (int i = 0; i < n; i++) t.SetFlat(i, start + i * step);
        return t;
    }

    /// <summary>Values 0, 1, ..., end-1.</summary>
    public static Tensor Arange(int end, DType dtype = DType.Float32) => Arange(0, end, 1, dtype);

    /// <summary>n evenly spaced values from start to end inclusive.</summary>
    public static Tensor Linspace(double start, double end, int steps, DType dtype = DType.Float32)
    {
        if (steps < 0) throw new ArgumentException("Linspace: steps must be non-negative.", nameof(steps));
        var t = Allocate([steps], dtype);
        for (int i = 0; i < steps; i++) t.SetFlat(i, steps == 1 ? start : start + (end - start) * i / (steps - 1));
        return t;
    }

    /// <summary>The n×n identity matrix.</summary>
    public static Tensor Eye(int n, DType dtype = DType.Float32)
    {
        var t = Zeros([n, n], dtype);
        for (int i = 0; i < n; i++) t.SetFlat(i * n + i, 1);
        return t;
    }

    /// <summary>A float32 tensor holding <paramref name="data"/> (copied) with the given shape (default: 1-D).</summary>
    public static Tensor FromArray(float[] data, params int[] shape) => FromSpan<float>(data, shape);

    /// <summary>A float64 tensor holding <paramref name="data"/> (copied) with the given shape (default: 1-D).</summary>
    public static Tensor FromArray(double[] data, params int[] shape) => FromSpan<double>(data, shape);

    /// <summary>An int64 tensor holding <paramref name="data"/> (copied) with the given shape (default: 1-D).</summary>
    public static Tensor FromArray(long[] data, params int[] shape) => FromSpan<long>(data, shape);

    /// <summary>A bool tensor holding <paramref name="data"/> (copied) with the given shape (default: 1-D); a mask for Where, MaskedFill and <c>t[mask]</c>.</summary>
    public static Tensor FromArray(bool[] data, params int[] shape) => FromSpan<bool>(data, shape);

    /// <summary>An int64 tensor holding <paramref name="data"/> (converted) with the given shape (default: 1-D).</summary>
    public static Tensor FromArray(int[] data, params int[] shape) => FromSpan<long>(data.Select(v => (long)v).ToArray(), shape);

    /// <summary>A 2-D float32 tensor from a rectangular array.</summary>
    public static Tensor FromArray(float[,] data)
    {
        var flat = new float[data.Length];
        int k = 0;
        foreach (var v in data) flat[k++] = v;
        return FromSpan<float>(flat, [data.GetLength(0), data.GetLength(1)]);
    }

    /// <summary>A 2-D float64 tensor from a rectangular array.</summary>
    public static Tensor FromArray(double[,] data)
    {
        var flat = new double[data.Length];
        int k = 0;
        foreach (var v in data) flat[k++] = v;
        return FromSpan<double>(flat, [data.GetLength(0), data.GetLength(1)]);
    }

    private static Tensor FromSpan<T>(ReadOnlySpan<T> data, int[] shape) where T : unmanaged
    {
        int[] s = shape.Length == 0 ? [data.Length] : CheckShape(shape, "FromArray");
        if (Backprop.Shape.Product(s) != data.Length)
            throw new ShapeException($"FromArray: {data.Length} values do not fill shape {Backprop.Shape.Format(s)} ({Backprop.Shape.Product(s)} elements).");
        var t = Allocate(s, DTypeExtensions.Of<T>());
        t.Backend.Upload(data, t.V); // a host copy
        return t;
    }

    /// <summary>
    /// A tensor over <paramref name="data"/> on the default device: the array itself on the CPU (no copy;
    /// the caller must not reuse it), a host copy on any other device.
    /// </summary>
    internal static Tensor Wrap<T>(T[] data, int[] shape) where T : unmanaged
    {
        if (Backends.Backend.Default == Backends.Device.Cpu) return new(new Backends.Cpu.CpuStorage<T>(data), shape);
        var t = Allocate(shape, DTypeExtensions.Of<T>());
        t.Backend.Upload<T>(data, t.V);
        return t;
    }

    /// <summary>Uniform samples in [0, 1).</summary>
    public static Tensor Rand(int[] shape, Generator? generator = null, DType dtype = DType.Float32) =>
        Uniform(shape, 0, 1, generator, dtype);

    /// <summary>Uniform samples in [low, high).</summary>
    public static Tensor Uniform(int[] shape, double low, double high, Generator? generator = null, DType dtype = DType.Float32)
    {
        var g = generator ?? Generator.Default;
        var s = CheckShape(shape, "Uniform");
        if (dtype == DType.Float32)
        {
            var d = new float[Backprop.Shape.Product(s)];
            for (int i = 0; i < d.Length; i++) d[i] = (float)(low + (high - low) * g.NextDouble());
            return Wrap(d, s);
        }
        if (dtype == DType.Float64)
        {
            var d = new double[Backprop.Shape.Product(s)];
            for (int i = 0; i < d.Length; i++) d[i] = low + (high - low) * g.NextDouble();
            return Wrap(d, s);
        }
        throw new NotSupportedException("Uniform: use RandInt for integer tensors.");
    }

    /// <summary>Standard normal samples (mean 0, standard deviation 1).</summary>
    public static Tensor Randn(int[] shape, Generator? generator = null, DType dtype = DType.Float32) =>
        Normal(shape, 0, 1, generator, dtype);

    /// <summary>Normal samples with the given mean and standard deviation.</summary>
    public static Tensor Normal(int[] shape, double mean, double std, Generator? generator = null, DType dtype = DType.Float32)
    {
        var g = generator ?? Generator.Default;
        var s = CheckShape(shape, "Normal");
        if (dtype == DType.Float32)
        {
            var d = new float[Backprop.Shape.Product(s)];
            for (int i = 0; i < d.Length; i++) d[i] = (float)(mean + std * g.NextNormal());
            return Wrap(d, s);
        }
        if (dtype == DType.Float64)
        {
            var d = new double[Backprop.Shape.Product(s)];
            for (int i = 0; i < d.Length; i++) d[i] = mean + std * g.NextNormal();
            return Wrap(d, s);
        }
        throw new NotSupportedException("Normal: use RandInt for integer tensors.");
    }

    /// <summary>Uniform integers in [low, high) as an int64 tensor.</summary>
    public static Tensor RandInt(long low, long high, int[] shape, Generator? generator = null)
    {
        if (high <= low) throw new ArgumentException($"RandInt: high ({high}) must be greater than low ({low}).");
        var g = generator ?? Generator.Default;
        var s = CheckShape(shape, "RandInt");
        var d = new long[Backprop.Shape.Product(s)];
        for (int i = 0; i < d.Length; i++) d[i] = g.NextInt64(low, high);
        return Wrap(d, s);
    }

    /// <summary>Uniform samples in [0, 1) of the given shape (float32, the default generator): <c>Tensor.Rand(3, 4)</c>.</summary>
    public static Tensor Rand(params int[] shape) => Rand(shape, null);

    /// <summary>Standard normal samples of the given shape (float32, the default generator): <c>Tensor.Randn(3, 4)</c>.</summary>
    public static Tensor Randn(params int[] shape) => Randn(shape, null);

    /// <summary>Uniform integers in [low, high) of the given shape (int64, the default generator).</summary>
    public static Tensor RandInt(long low, long high, params int[] shape) => RandInt(low, high, shape, null);

    /// <summary>The n×m matrix with ones on the main diagonal (torch.eye(n, m)).</summary>
    public static Tensor Eye(int n, int m, DType dtype = DType.Float32)
    {
        var t = Zeros([n, m], dtype);
        for (int i = 0; i < Math.Min(n, m); i++) t.SetFlat(i * m + i, 1);
        return t;
    }

    /// <summary>n evenly spaced values from start to end inclusive, on the device of <paramref name="like"/> with its dtype.</summary>
    public static Tensor Linspace(double start, double end, int steps, Tensor like) =>
        Linspace(start, end, steps, like.DType).To(like.Device);

    /// <summary>A tensor filled with <paramref name="value"/> with the shape, dtype and device of <paramref name="like"/>.</summary>
    public static Tensor FullLike(Tensor like, double value) => FullOn(like._shape, value, like.DType, like.Backend);

    /// <summary>Uniform integers in [low, high) shaped like <paramref name="like"/> (int64, on its device).</summary>
    public static Tensor RandIntLike(Tensor like, long low, long high, Generator? generator = null) =>
        RandInt(low, high, like._shape, generator).To(like.Device);

    /// <summary>Uniform samples in [0, 1) shaped like <paramref name="like"/>.</summary>
    public static Tensor RandLike(Tensor like, Generator? generator = null) => Rand(like._shape, generator, like.DType);

    /// <summary>Standard normal samples shaped like <paramref name="like"/>.</summary>
    public static Tensor RandnLike(Tensor like, Generator? generator = null) => Randn(like._shape, generator, like.DType);

    internal void ClearStorage() => FillStorage(0);

    internal void FillStorage(double value)
    {
        if (_numel == 0) return;
        Backend.Fill(V, value);
    }
}
