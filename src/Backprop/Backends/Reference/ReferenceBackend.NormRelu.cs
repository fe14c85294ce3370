namespace Backprop.Backends.Reference;

/// <summary>Batch normalization followed by ReLU: the two reference formulas one after the other, element by element.</summary>
internal sealed partial class ReferenceBackend
{
    public void BatchNormReluForward(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training, double eps, in View y)
    {
        BatchNormForward(x, mean, invstd, weight, bias, affine, training, eps, y);
        var sy = S(y);
        for (int i = 0; i < y._numel; i++)
        {
            double v = sy.Get(y._offset + i);
            sy.Set(y._offset + i, v > 0 || double.IsNaN(v) ? v : 0); // max(v, 0), NaN propagating
        }
    }

    public void BatchNormReluBackward(in View dy, in View y, in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, bool training,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias)
    {
        // ReLU's gradient (dy where the output is positive, else 0) into a buffer of its own, then batch norm's backward on it.
        var sd = S(dy);
        var sy = S(y);
        var masked = new View(Allocate(dy.DType, x._numel), x._shape);
        var sm = S(masked);
        for (int i = 0; i < x._numel; i++)
            sm.Set(i, sy.Get(y._offset + i) > 0 ? sd.Get(dy._offset + i) : 0);
        BatchNormBackward(masked, x, mean, invstd, weight, affine, training, inputGrad, dx, paramGrads, dweight, dbias);
    }

    public void BatchNormReluMaxPoolForward(in View x, in View mean, in View invstd, in View weight, in View bias, bool affine, double eps,
        in View y, in View indices, in Pool2dGeometry pool)
    {
        // batch norm + ReLU into a buffer of its own, then max pooling of it
        var full = new View(Allocate(x.DType, x._numel), [pool.N, pool.C, pool.H, pool.W]);
        BatchNormReluForward(x, mean, invstd, weight, bias, affine, true, eps, full);
        MaxPool2d(full, y, indices, pool);
    }

    public void BatchNormReluMaxPoolBackward(in View dy, in View indices, in View x, in View mean, in View invstd, in View weight, in View bias, bool affine,
        bool inputGrad, in View dx, bool paramGrads, in View dweight, in View dbias, in Pool2dGeometry pool)
    {
        // the pooling's gradient, then batch norm + ReLU's backward of it; the ReLU's output recomputed from
        // the saved statistics (the evaluation formula applies them as given)
        var full = new View(Allocate(x.DType, x._numel), [pool.N, pool.C, pool.H, pool.W]);
        MaxPool2dBackward(dy, indices, full, pool);
        var y = new View(Allocate(x.DType, x._numel), x._shape);
        BatchNormReluForward(x, mean, invstd, weight, bias, affine, false, eps: 1, y); // eps unused: invstd is given
        BatchNormReluBackward(new View(full._storage, x._shape), y, x, mean, invstd, weight, bias, affine, true, inputGrad, dx, paramGrads, dweight, dbias);
    }
}
