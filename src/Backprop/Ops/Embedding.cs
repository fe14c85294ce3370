using Backprop.Autograd;

namespace Backprop.NN;

public static partial class Functional
{
    /// <summary>
    /// Looks up rows of <paramref name="weight"/> [num, dim] for int64 <paramref name="indices"/> of any
    /// shape, giving [..., dim]. Backward adds each output row's gradient into the row it came from
    /// (repeats accumulate), straight into the weight's Grad when it is a leaf.
    /// </summary>
    public static Tensor Embedding(Tensor indices, Tensor weight)
    {
        if (indices.DType != DType.Int64)
            throw new ArgumentException($"Embedding: indices must be an int64 tensor, got {indices.DType.Name()} of shape {indices.Shape}.");
        if (weight.Rank != 2) throw new ShapeException($"Embedding: weight must be 2-D [num, dim], got {weight.Shape}.");
        int num = weight.Size(0), dim = weight.Size(1);
        var idx = indices.ContiguousData();
        Span<int> shape = stackalloc int[indices.Rank + 1];
        indices._shape.CopyTo(shape);
        shape[^1] = dim;
        var y = Tensor.Empty(ShapeCache.Intern(shape), weight.DType, weight.Backend);
        Dispatch.BackendOf("Embedding", weight, idx).EmbeddingForward(weight.ContiguousData().V, idx.V, y.V); // ids out of range throw
        Engine.Record(y, "Embedding", new EmbeddingBackward(weight, idx), weight, saved0: idx);
        return y;
    }

    /// <summary>Each output row's gradient is added into the row it came from (straight into the weight's Grad when it is a leaf).</summary>
    private readonly struct EmbeddingBackward(Tensor weight, Tensor ids) : IBackward
    {
        public void Backward(Tensor dy)
        {
            int dim = weight.Size(1);
            if (Engine.CreateGraph)
            {
                var rows = dy.Reshape(-1, dim);
                var index = ids.Reshape(-1, 1).Expand(rows._shape).Contiguous();
                weight.AccumulateGrad(Tensor.ZerosLike(weight).ScatterAdd(0, index, rows));
                return;
            }
            var target = Engine.LeafGradTarget(weight) ?? Tensor.ZerosLike(weight);
            weight.Backend.EmbeddingBackward(dy.ContiguousData().V, ids.V, target.V);
            target.BumpVersion();
            if (!ReferenceEquals(target, weight.Grad)) weight.AccumulateGrad(target);
        }
    }

}
