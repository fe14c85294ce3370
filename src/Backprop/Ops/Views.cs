using Backprop.Autograd;

namespace Backprop;

// Views share storage with their input; their backward maps the gradient back to the input's layout.
public partial class Tensor
{
    /// <summary>A view with another shape over the same contiguous storage (not recorded).</summary>
    internal Tensor ViewAs(int[] shape)
    {
        Debug.Assert(_contiguous && Backprop.Shape.Product(shape) == _numel);
        return Alias(_offset, shape, ShapeCache.ContiguousStrides(shape));
    }

    private int[] InferShape(ReadOnlySpan<int> shape, string op)
    {
        Span<int> s = shape.Length <= 16 ? stackalloc int[shape.Length] : new int[shape.Length];
        shape.CopyTo(s);
        int infer = -1;
        long known = 1;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == -1)
            {
                if (infer >= 0) throw new ShapeException($"{op}: only one dimension can be -1, got {Backprop.Shape.Format(shape)}.");
                infer = i;
            }
            else if (s[i] < 0) throw new ShapeException($"{op}: invalid dimension {s[i]} in {Backprop.Shape.Format(shape)}.");
            else known *= s[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || _numel % known != 0)
                throw new ShapeException($"{op}: cannot reshape tensor of shape {Shape} ({_numel} elements) into {Backprop.Shape.Format(shape)}.");
            s[infer] = (int)(_numel / known);
        }
        else if (known != _numel)
            throw new ShapeException($"{op}: cannot reshape tensor of shape {Shape} ({_numel} elements) into {Backprop.Shape.Format(shape)} ({known} elements).");
        return ShapeCache.Intern(s); // shared with every tensor of this shape: no array per call
    }

    /// <summary>Same elements, new shape (one dimension may be -1). A view when the layout allows, else a copy.</summary>
    public Tensor Reshape(params int[] shape) => Reshape((ReadOnlySpan<int>)shape);

    /// <inheritdoc cref="Reshape(int[])"/>
    public Tensor Reshape(params ReadOnlySpan<int> shape)
    {
        var s = InferShape(shape, "Reshape");
        var src = _contiguous ? this : Dispatch.ToContiguous(this);
        var y = src.ViewAs(s);
        Engine.Record(y, "Reshape", new ReshapeBackward(this), this);
        return y;
    }

    /// <summary>Same elements, new shape, always a view; the tensor must be contiguous.</summary>
    public Tensor View(params int[] shape)
    {
        var s = InferShape(shape, "View");
        if (!_contiguous)
            throw new ShapeException($"View: tensor of shape {Shape} with strides {Backprop.Shape.Format(_strides)} is not contiguous; use Reshape() or Contiguous() first.");
        var y = ViewAs(s);
        Engine.Record(y, "View", new ReshapeBackward(this), this);
        return y;
    }

    /// <summary>Flattens dimensions startDim..endDim into one.</summary>
    public Tensor Flatten(int startDim = 0, int endDim = -1)
    {
        if (Rank == 0) return Reshape(1);
        int s = NormalizeDim(startDim, Rank, "Flatten"), e = NormalizeDim(endDim, Rank, "Flatten");
        if (s > e) throw new ArgumentException($"Flatten: startDim {startDim} comes after endDim {endDim}.");
        var shape = new List<int>();
        for (int i = 0; i < s; i++) shape.Add(_shape[i]);
        int prod = 1;
        for (int i = s; i <= e; i++) prod *= _shape[i];
        shape.Add(prod);
        for (int i = e + 1; i < Rank; i++) shape.Add(_shape[i]);
        return Reshape([.. shape]);
    }

    /// <summary>A contiguous tensor with the same values (this tensor itself if already contiguous).</summary>
    public Tensor Contiguous()
    {
        if (_contiguous) return this;
        var y = Dispatch.ToContiguous(this);
        Engine.Record(y, "Contiguous", new IdentityBackward(this), this);
        return y;
    }

    /// <summary>Swaps two dimensions (a view).</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        int a = NormalizeDim(dim0, Rank, "Transpose"), b = NormalizeDim(dim1, Rank, "Transpose");
        Span<int> shape = stackalloc int[Rank], strides = stackalloc int[Rank];
        _shape.CopyTo(shape);
        _strides.CopyTo(strides);
        (shape[a], shape[b]) = (shape[b], shape[a]);
        (strides[a], strides[b]) = (strides[b], strides[a]);
        var y = Alias(_offset, shape, strides);
        Engine.Record(y, "Transpose", new TransposeBackward(this, a, b), this);
        return y;
    }

    /// <summary>The transpose of a 2-D tensor (a view); a 1-D tensor is returned as is.</summary>
    public Tensor T
    {
        get
        {
            if (Rank > 2) throw new ShapeException($"T: expects a tensor of rank at most 2, got shape {Shape}; use Transpose or Permute.");
            return Rank < 2 ? this : Transpose(0, 1);
        }
    }

    /// <summary>Reorders dimensions (a view): result dimension i is input dimension dims[i].</summary>
    public Tensor Permute(params int[] dims)
    {
        if (dims.Length != Rank)
            throw new ShapeException($"Permute: {dims.Length} dimensions given for a tensor of rank {Rank} (shape {Shape}).");
        var p = new int[Rank];
        var seen = new bool[Rank];
        for (int i = 0; i < Rank; i++)
        {
            p[i] = NormalizeDim(dims[i], Rank, "Permute");
            if (seen[p[i]]) throw new ShapeException($"Permute: dimension {dims[i]} repeats in {Backprop.Shape.Format(dims)}.");
            seen[p[i]] = true;
        }
        Span<int> shape = stackalloc int[Rank], strides = stackalloc int[Rank];
        var inverse = new int[Rank];
        for (int i = 0; i < Rank; i++)
        {
            shape[i] = _shape[p[i]];
            strides[i] = _strides[p[i]];
            inverse[p[i]] = i;
        }
        var y = Alias(_offset, shape, strides);
        Engine.Record(y, "Permute", new PermuteBackward(this, inverse), this);
        return y;
    }

    /// <summary>The elements start..start+length-1 along <paramref name="dim"/> (a view).</summary>
    public Tensor Narrow(int dim, int start, int length)
    {
        int d = NormalizeDim(dim, Rank, "Narrow");
        if (Rank == 0) throw new ShapeException("Narrow: cannot narrow a 0-dimensional tensor.");
        if (start < 0) start += _shape[d];
        if (start < 0 || length < 0 || start + length > _shape[d])
            throw new ArgumentOutOfRangeException(nameof(start),
                $"Narrow: range start {start}, length {length} does not fit dimension {dim} of size {_shape[d]} (shape {Shape}).");
        return Slice(d, start, start + length, 1);
    }

    /// <summary>
    /// Elements start, start+step, ... below end along <paramref name="dim"/> (a view), like
    /// x[start:end:step] in Python; negative start/end count from the end and are clamped to the dimension.
    /// </summary>
    public Tensor Slice(int dim, int start, int end, int step = 1)
    {
        if (Rank == 0) throw new ShapeException("Slice: cannot slice a 0-dimensional tensor.");
        int d = NormalizeDim(dim, Rank, "Slice");
        if (step <= 0) throw new ArgumentOutOfRangeException(nameof(step), step, "Slice: step must be positive.");
        int size = _shape[d];
        if (start < 0) start += size;
        if (end < 0) end += size;
        start = Math.Clamp(start, 0, size);
        end = Math.Clamp(end, start, size);
        int len = (end - start + step - 1) / step;
        Span<int> shape = stackalloc int[Rank], strides = stackalloc int[Rank];
        _shape.CopyTo(shape);
        _strides.CopyTo(strides);
        shape[d] = len;
        strides[d] = _strides[d] * step;
        var y = Alias(_offset + start * _strides[d], shape, strides);
        Engine.Record(y, "Slice", new SliceBackward(this, d, start, step), this);
        return y;
    }

    private readonly struct SliceBackward(Tensor x, int dim, int start, int step) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (Engine.CreateGraph)
            {
                // Scatter dy into zeros along dim: positions start, start + step, ... (recorded, so differentiable in dy).
                int len = dy._shape[dim];
                var positions = new long[len];
                for (int i = 0; i < len; i++) positions[i] = start + (long)i * step;
                var shape = (int[])dy._shape.Clone();
                var along = Enumerable.Repeat(1, dy.Rank).ToArray();
                along[dim] = len;
                var index = FromArray(positions).Reshape(along).Expand(shape).Contiguous();
                x.AccumulateGrad(ZerosLike(x).ScatterAdd(dim, index, dy));
                return;
            }
            var g = ZerosLike(x);
            Dispatch.CopyInto(dy, g.SliceView(dim, start, step, dy._shape[dim]));
            x.AccumulateGrad(g);
        }
    }

    /// <summary>A view of <paramref name="length"/> elements start, start+step, ... along dim (no recording).</summary>
    internal Tensor SliceView(int d, int start, int step, int length)
    {
        Span<int> shape = stackalloc int[Rank], strides = stackalloc int[Rank];
        _shape.CopyTo(shape);
        _strides.CopyTo(strides);
        shape[d] = length;
        strides[d] *= step;
        return Alias(_offset + start * _strides[d], shape, strides);
    }

    /// <summary>The sub-tensor at <paramref name="index"/> along <paramref name="dim"/>, with that dimension removed (a view).</summary>
    public Tensor Select(int dim, int index)
    {
        int d = NormalizeDim(dim, Rank, "Select");
        if (Rank == 0) throw new ShapeException("Select: cannot index a 0-dimensional tensor.");
        int i = index < 0 ? index + _shape[d] : index;
        if ((uint)i >= (uint)_shape[d])
            throw new IndexOutOfRangeException($"Select: index {index} is out of range for dimension {dim} of size {_shape[d]} (shape {Shape}).");
        // One view with the dimension dropped (not a narrow and then a squeeze: one node, no arrays).
        Span<int> shape = stackalloc int[Rank - 1], strides = stackalloc int[Rank - 1];
        for (int k = 0, j = 0; k < Rank; k++)
        {
            if (k == d) continue;
            shape[j] = _shape[k];
            strides[j++] = _strides[k];
        }
        var y = Alias(_offset + i * _strides[d], shape, strides);
        Engine.Record(y, "Select", new SelectBackward(this, d, i), this);
        return y;
    }

    /// <summary>The gradient of a Select: the slice's backward on dy with the dimension put back.</summary>
    private readonly struct SelectBackward(Tensor x, int dim, int index) : IBackward
    {
        public void Backward(Tensor dy) => new SliceBackward(x, dim, index, 1).Backward(dy.Unsqueeze(dim));
    }

    /// <summary>Removes dimension <paramref name="dim"/> if it has size 1 (or all size-1 dimensions when dim is null).</summary>
    public Tensor Squeeze(int? dim = null)
    {
        Span<int> shape = stackalloc int[Rank], strides = stackalloc int[Rank];
        int kept = 0, squeezed = dim is int dd ? NormalizeDim(dd, Rank, "Squeeze") : -1;
        for (int i = 0; i < Rank; i++)
            if (_shape[i] != 1 || (dim != null && i != squeezed))
            {
                shape[kept] = _shape[i];
                strides[kept++] = _strides[i];
            }
        if (kept == Rank) return this;
        var y = Alias(_offset, shape[..kept], strides[..kept]);
        Engine.Record(y, "Squeeze", new ReshapeBackward(this), this);
        return y;
    }

    /// <summary>Inserts a dimension of size 1 at <paramref name="dim"/> (a view); dim may be Rank.</summary>
    public Tensor Unsqueeze(int dim)
    {
        int d = dim < 0 ? dim + Rank + 1 : dim;
        if (d < 0 || d > Rank)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Unsqueeze: dimension {dim} is out of range for a tensor of rank {Rank} (expected {-Rank - 1}..{Rank}).");
        Span<int> shape = stackalloc int[Rank + 1], strides = stackalloc int[Rank + 1];
        for (int i = 0, j = 0; i <= Rank; i++)
        {
            if (i == d)
            {
                shape[i] = 1;
                strides[i] = j < Rank ? _strides[j] * _shape[j] : 1;
                continue;
            }
            shape[i] = _shape[j];
            strides[i] = _strides[j];
            j++;
        }
        var y = Alias(_offset, shape, strides);
        Engine.Record(y, "Unsqueeze", new ReshapeBackward(this), this);
        return y;
    }

    /// <summary>
    /// Broadcasts to <paramref name="shape"/> without copying (size-1 dimensions get stride 0);
    /// -1 keeps a dimension's size. Its backward sums the gradient back to this shape.
    /// </summary>
    public Tensor Expand(params int[] shape)
    {
        if (shape.Length < Rank)
            throw new ShapeException($"Expand: target {Backprop.Shape.Format(shape)} has fewer dimensions than the tensor's shape {Shape}.");
        Span<int> s = shape.Length <= 16 ? stackalloc int[shape.Length] : new int[shape.Length];
        shape.CopyTo(s);
        Span<int> strides = shape.Length <= 16 ? stackalloc int[shape.Length] : new int[shape.Length];
        int lead = s.Length - Rank;
        for (int i = 0; i < s.Length; i++)
        {
            int j = i - lead;
            if (j < 0)
            {
                if (s[i] < 0) throw new ShapeException($"Expand: -1 is not allowed for the new leading dimension {i} in {Backprop.Shape.Format(shape)}.");
                strides[i] = 0;
                continue;
            }
            if (s[i] == -1) s[i] = _shape[j];
            if (_shape[j] == s[i]) strides[i] = _strides[j];
            else if (_shape[j] == 1) strides[i] = 0;
            else
                throw new ShapeException($"Expand: cannot expand shape {Shape} to {Backprop.Shape.Format(shape)}: dimension {j} has size {_shape[j]}, not 1.");
        }
        var y = Alias(_offset, s, strides);
        Engine.Record(y, "Expand", new ExpandBackward(this), this);
        return y;
    }

    /// <summary>Expands to the shape of <paramref name="other"/>.</summary>
    public Tensor ExpandAs(Tensor other) => Expand(other._shape);

    /// <summary>Sums this tensor down to <paramref name="shape"/>, the inverse of broadcasting.</summary>
    public Tensor SumTo(params int[] shape)
    {
        var y = Dispatch.SumTo(this, shape);
        if (ReferenceEquals(y, this)) return this;
        Engine.Record(y, "SumTo", new SumToBackward(this), this);
        return y;
    }

    /// <summary>Reshape, View, Squeeze, Unsqueeze: the gradient takes the input's shape back.</summary>
    private readonly struct ReshapeBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(dy.Reshape(x._shape));
    }

    /// <summary>Contiguous, Clone: the gradient passes unchanged.</summary>
    private readonly struct IdentityBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(dy);
    }

    private readonly struct TransposeBackward(Tensor x, int dim0, int dim1) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(dy.Transpose(dim0, dim1));
    }

    private readonly struct PermuteBackward(Tensor x, int[] inverse) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(dy.Permute(inverse));
    }

    private readonly struct ExpandBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(Engine.CreateGraph ? dy.SumTo(x._shape) : Dispatch.SumTo(dy, x._shape));
    }

    private readonly struct SumToBackward(Tensor x) : IBackward
    {
        public void Backward(Tensor dy) => x.AccumulateGrad(dy.Expand(x._shape));
    }
}
