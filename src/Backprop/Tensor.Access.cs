using Backprop.Backends;

namespace Backprop;

public partial class Tensor
{
    /// <summary>Storage position of a full multi-index, validated.</summary>
    private int StoragePosition(ReadOnlySpan<int> index)
    {
        if (index.Length != Rank)
            throw new ArgumentException(
                $"Tensor index: {index.Length} indices given for a tensor of rank {Rank} (shape {Shape}); " +
                "use Select/Narrow/Slice for sub-tensors.");
        int pos = _offset;
        for (int i = 0; i < index.Length; i++)
        {
            int ix = index[i] < 0 ? index[i] + _shape[i] : index[i];
            if ((uint)ix >= (uint)_shape[i])
                throw new IndexOutOfRangeException($"Tensor index: index {index[i]} is out of range for dimension {i} of size {_shape[i]} (shape {Shape}).");
            pos += ix * _strides[i];
        }
        return pos;
    }

    /// <summary>Storage position of the element at row-major flat index <paramref name="flat"/>.</summary>
    internal int FlatPosition(int flat)
    {
        if (_contiguous) return _offset + flat;
        int pos = _offset;
        for (int d = Rank - 1; d >= 0; d--)
        {
            int n = _shape[d];
            pos += flat % n * _strides[d];
            flat /= n;
        }
        return pos;
    }

    /// <summary>The element at a full index (negative indices count from the end), as a float.</summary>
    [IndexerName("At")]
    public float this[params int[] index]
    {
        get => (float)GetAt(StoragePosition(index));
        set => SetElement(index, value);
    }

    /// <summary>The element at a full index as a double (exact for float32 and float64 tensors).</summary>
    public double GetDouble(params int[] index) => GetAt(StoragePosition(index));

    /// <summary>The element at a full index of an int64 tensor.</summary>
    public long GetLong(params int[] index) => DType == DType.Int64
        ? ReadLong(StoragePosition(index))
        : checked((long)GetAt(StoragePosition(index)));

    /// <summary>Sets the element at a full index (not recorded by autograd).</summary>
    public void SetElement(int[] index, double value)
    {
        CheckWritable("SetElement");
        SetAt(StoragePosition(index), value);
        BumpVersion();
        AfterInPlace("SetElement");
    }

    /// <summary>The value of a one-element tensor, as a float.</summary>
    public float Item() => (float)ItemDouble();

    /// <summary>The value of a one-element tensor, as a double.</summary>
    public double ItemDouble()
    {
        if (_numel != 1)
            throw new InvalidOperationException($"Item: only one-element tensors can be converted to a number, this one has shape {Shape} ({_numel} elements).");
        return GetAt(_offset);
    }

    // Element access is a host copy of one element through the backend.
    private Backends.View ElementAt(int pos) => new(_storage, pos, [], [], 1, true);

    private double GetAt(int pos)
    {
        switch (DType)
        {
            case DType.Float32: { Span<float> v = stackalloc float[1]; Backend.Download(ElementAt(pos), v); return v[0]; }
            case DType.Float64: { Span<double> v = stackalloc double[1]; Backend.Download(ElementAt(pos), v); return v[0]; }
            case DType.Bool: { Span<bool> v = stackalloc bool[1]; Backend.Download(ElementAt(pos), v); return v[0] ? 1 : 0; }
            default: return ReadLong(pos);
        }
    }

    private long ReadLong(int pos)
    {
        Span<long> v = stackalloc long[1];
        Backend.Download(ElementAt(pos), v);
        return v[0];
    }

    private void SetAt(int pos, double value)
    {
        switch (DType)
        {
            case DType.Float32: Backend.Upload<float>([(float)value], ElementAt(pos)); break;
            case DType.Float64: Backend.Upload<double>([value], ElementAt(pos)); break;
            case DType.Bool: Backend.Upload<bool>([value != 0], ElementAt(pos)); break;
            default: Backend.Upload<long>([checked((long)value)], ElementAt(pos)); break;
        }
    }

    internal double GetFlat(int flat) => GetAt(FlatPosition(flat));

    internal void SetFlat(int flat, double value) => SetAt(FlatPosition(flat), value);

    /// <summary>The elements in row-major order in an array of the tensor's own element type (a host copy).</summary>
    internal Array ToHostArray()
    {
        switch (DType)
        {
            case DType.Float32: { var r = new float[_numel]; Backend.Download(V, r.AsSpan()); return r; }
            case DType.Float64: { var r = new double[_numel]; Backend.Download(V, r.AsSpan()); return r; }
            case DType.Bool: { var r = new bool[_numel]; Backend.Download(V, r.AsSpan()); return r; }
            default: { var r = new long[_numel]; Backend.Download(V, r.AsSpan()); return r; }
        }
    }

    /// <summary>The elements in row-major order as floats.</summary>
    public float[] ToArray() => ToHostArray() switch
    {
        float[] f => f,
        double[] d => [.. d.Select(v => (float)v)],
        long[] l => [.. l.Select(v => (float)v)],
        bool[] b => [.. b.Select(v => v ? 1f : 0f)],
        _ => throw new InvalidOperationException(),
    };

    /// <summary>The elements in row-major order as doubles.</summary>
    public double[] ToDoubleArray() => ToHostArray() switch
    {
        double[] d => d,
        float[] f => [.. f.Select(v => (double)v)],
        long[] l => [.. l.Select(v => (double)v)],
        bool[] b => [.. b.Select(v => v ? 1.0 : 0.0)],
        _ => throw new InvalidOperationException(),
    };

    /// <summary>The elements in row-major order as 64-bit integers (floats are truncated toward zero).</summary>
    public long[] ToLongArray() => ToHostArray() switch
    {
        long[] l => l,
        float[] f => [.. f.Select(v => (long)v)],
        double[] d => [.. d.Select(v => (long)v)],
        bool[] b => [.. b.Select(v => v ? 1L : 0L)],
        _ => throw new InvalidOperationException(),
    };

    /// <summary>The elements in row-major order as booleans (nonzero is true, NaN included, as PyTorch's conversion to bool).</summary>
    public bool[] ToBoolArray() => ToHostArray() switch
    {
        bool[] b => b,
        float[] f => [.. f.Select(v => v != 0)],
        double[] d => [.. d.Select(v => v != 0)],
        long[] l => [.. l.Select(v => v != 0)],
        _ => throw new InvalidOperationException(),
    };

    /// <summary>The elements of a 2-D tensor as a rectangular float array.</summary>
    public float[,] ToArray2D()
    {
        if (Rank != 2) throw new InvalidOperationException($"ToArray2D: tensor has rank {Rank} (shape {Shape}), expected 2.");
        var flat = ToArray();
        var r = new float[_shape[0], _shape[1]];
        Buffer.BlockCopy(flat, 0, r, 0, flat.Length * sizeof(float));
        return r;
    }

    /// <summary>A copy converted to <paramref name="dtype"/> (this tensor itself if it already has it). Differentiable between float types.</summary>
    public Tensor To(DType dtype)
    {
        if (dtype == DType) return this;
        var y = Dispatch.Convert(this, dtype);
        if (dtype.IsFloatingPoint())
            Autograd.Engine.Record(y, "To", new ToBackward(this), this);
        return y;
    }

    /// <summary>A contiguous copy that is part of the graph (gradients flow back to this tensor).</summary>
    public Tensor Clone()
    {
        var y = Dispatch.ToContiguous(this);
        Autograd.Engine.Record(y, "Clone", new IdentityBackward(this), this);
        return y;
    }

    private readonly struct ToBackward(Tensor x) : Autograd.IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(dy.To(x.DType));
    }

    // ------------------------------------------------------------------ in-place updates (not recorded)

    private void CheckWritable(string op)
    {
        if (_gradFn != null && Autograd.GradMode.IsEnabled)
            throw new InvalidOperationException(
                $"{op}: cannot modify in place a tensor produced by {_gradFn.Name} while gradients are recorded; use Tensor.NoGrad() or Detach().");
        if (_requiresGrad && Autograd.GradMode.IsEnabled)
            throw new InvalidOperationException(
                $"{op}: cannot modify in place a leaf tensor that requires grad while gradients are recorded; wrap the update in using (Tensor.NoGrad()).");
    }

    /// <summary>Fills every element with <paramref name="value"/>, in place.</summary>
    public Tensor Fill_(double value)
    {
        CheckWritable("Fill_");
        FillStorage(value);
        BumpVersion();
        return AfterInPlace("Fill_");
    }

    /// <summary>Sets every element to zero, in place.</summary>
    public Tensor Zero_() => Fill_(0);

    /// <summary>Copies <paramref name="src"/> (broadcast to this shape) into this tensor, in place.</summary>
    public Tensor CopyFrom(Tensor src)
    {
        CheckWritable("CopyFrom");
        Dispatch.CopyInto(src, this);
        return AfterInPlace("CopyFrom");
    }

    /// <summary>this += alpha · other (broadcast), in place.</summary>
    public Tensor Add_(Tensor other, double alpha = 1)
    {
        CheckWritable("Add_");
        Dispatch.AddInPlace(this, alpha == 1 ? other : Dispatch.Scaled(other, alpha));
        return AfterInPlace("Add_");
    }

    /// <summary>this *= s, in place.</summary>
    public Tensor Mul_(double s)
    {
        CheckWritable("Mul_");
        switch (DType)
        {
            case DType.Float32:
            case DType.Float64: Dispatch.ScaleInto(this, this, s); break;
            default: throw Dispatch.NotFloat("Mul_", this);
        }
        BumpVersion();
        return AfterInPlace("Mul_");
    }

    /// <summary>this += value, in place.</summary>
    public Tensor Add_(double value) => ZipInPlace("Add_", Const(value), BinaryOp.Add);

    /// <summary>this −= alpha · other (broadcast), in place.</summary>
    public Tensor Sub_(Tensor other, double alpha = 1)
    {
        CheckWritable("Sub_");
        return ZipInPlace("Sub_", alpha == 1 ? other : Dispatch.Scaled(other, alpha), BinaryOp.Sub);
    }

    /// <summary>this −= value, in place.</summary>
    public Tensor Sub_(double value) => ZipInPlace("Sub_", Const(value), BinaryOp.Sub);

    /// <summary>this *= other (broadcast to this shape), in place.</summary>
    public Tensor Mul_(Tensor other) => ZipInPlace("Mul_", other, BinaryOp.Mul);

    /// <summary>this /= other (broadcast to this shape), in place.</summary>
    public Tensor Div_(Tensor other) => ZipInPlace("Div_", other, BinaryOp.Div);

    /// <summary>this /= value, in place.</summary>
    public Tensor Div_(double value) => ZipInPlace("Div_", Const(value), BinaryOp.Div);

    /// <summary>Limits every element to [min, max] in place (either bound may be omitted).</summary>
    public Tensor Clamp_(double? min = null, double? max = null)
    {
        CheckWritable("Clamp_");
        if (min == null && max == null) throw new ArgumentException("Clamp_: give at least one of min and max.");
        if (!DType.IsFloatingPoint()) throw Dispatch.NotFloat("Clamp_", this);
        double lo = min ?? double.NegativeInfinity, hi = max ?? double.PositiveInfinity;
        if (_contiguous) Backend.Unary(UnaryOp.Clamp, V, V, lo, hi);
        else Backend.Copy(Dispatch.Map("Clamp_", this, UnaryOp.Clamp, lo, hi).V, V);
        BumpVersion();
        return AfterInPlace("Clamp_");
    }

    /// <summary>
    /// Copies <paramref name="src"/> (broadcast to this shape) into this tensor in place, converting the dtype
    /// where it differs (torch's copy_); both must be on the same device.
    /// </summary>
    public Tensor Copy_(Tensor src)
    {
        CheckWritable("Copy_");
        if (src.DType == DType) return CopyFrom(src);
        var converted = Dispatch.Convert(src, DType);
        Dispatch.CopyInto(converted, this);
        return AfterInPlace("Copy_");
    }

    /// <summary>this = this op other (other broadcast to this shape, same dtype and device), in place through the backend.</summary>
    private Tensor ZipInPlace(string op, Tensor other, BinaryOp binary)
    {
        CheckWritable(op);
        if (!DType.IsFloatingPoint()) throw Dispatch.NotFloat(op, this);
        Dispatch.CheckSameDType(op, this, other);
        var backend = Dispatch.BackendOf(op, this, other);
        var shape = Backprop.Shape.Broadcast(op, _shape, other._shape);
        if (!shape.AsSpan().SequenceEqual(_shape))
            throw new ShapeException($"{op}: the result of shape {Backprop.Shape.Format(shape)} does not fit in place into shape {Shape}; the other operand must broadcast to it.");
        if (_contiguous && other._numel <= _numel) backend.Binary(binary, V, other.V, V);
        else backend.Copy(Dispatch.Zip(op, this.NoGraph(), other.NoGraph(), binary).V, V);
        BumpVersion();
        return AfterInPlace(op);
    }

    /// <summary>Inside <see cref="DetectAnomaly"/>: an in-place op that wrote NaN or infinity throws, naming itself and the call site.</summary>
    private Tensor AfterInPlace(string op)
    {
        if (Autograd.GradMode.AnomalyDetection && DType.IsFloatingPoint() && !Dispatch.AllFinite(this))
            throw new Autograd.AnomalyException(op,
                $"DetectAnomaly: {op} wrote {Dispatch.DescribeNonFinite(this)} in place into a tensor of shape {Shape}; called {Autograd.Anomaly.CallSite()}.");
        return this;
    }

    // ------------------------------------------------------------------ scopes

    /// <summary>
    /// Starts a <see cref="TensorScope"/>: the tensors operations create until it is disposed are
    /// recycled then (use it around a training step so that a warm step allocates almost nothing).
    /// </summary>
    public static TensorScope Scope() => ScopeState.Begin();

    /// <summary>Within the returned scope no operation is recorded for backward.</summary>
    public static Autograd.NoGradScope NoGrad() => Autograd.GradMode.Push();

    /// <summary>
    /// Within the returned scope operations are recorded again, even inside an enclosing
    /// <see cref="NoGrad"/> scope (like torch.enable_grad): for a gradient computed inside inference code.
    /// </summary>
    public static Autograd.EnableGradScope EnableGrad() => new(Autograd.GradMode.Suspend());

    /// <summary>
    /// Within the returned scope, the first op whose forward or backward produces NaN or infinity
    /// throws an <see cref="Autograd.AnomalyException"/> naming the op, its input shapes and where it was created.
    /// </summary>
    public static Autograd.AnomalyScope DetectAnomaly() => Autograd.GradMode.PushAnomaly();
}
