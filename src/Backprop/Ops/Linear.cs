using Backprop.Autograd;

namespace Backprop.NN;

/// <summary>An activation that <see cref="Functional.Linear(Tensor, Tensor, Tensor?, FusedActivation)"/> applies in the same pass.</summary>
public enum FusedActivation
{
    /// <summary>No activation: the plain affine map.</summary>
    None,
    /// <summary>max(z, 0).</summary>
    Relu,
    /// <summary>1/(1 + e^−z).</summary>
    Sigmoid,
    /// <summary>tanh(z).</summary>
    Tanh,
    /// <summary>z·Φ(z) (exact GELU).</summary>
    Gelu,
}

/// <summary>Stateless building blocks behind the layers (like torch.nn.functional).</summary>
public static partial class Functional
{
    /// <summary>
    /// y = x·Wᵀ + b for x [..., in], W [out, in], b [out], as one fused op: the bias is written into
    /// y first and the GEMM accumulates onto it. Backward: dX = dY·W, dW = dYᵀ·X, db = Σ dY, with dW
    /// and db accumulated straight into the parameters' Grad buffers when they are leaves.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null) => Linear(x, weight, bias, FusedActivation.None);

    /// <summary>
    /// act(x·Wᵀ + b) as one op: the activation runs in place on the GEMM's output, and the backward
    /// first forms dZ = dY ⊙ act′ (from the saved output for ReLU, sigmoid and tanh; from the saved
    /// pre-activation for GELU), then dX = dZ·W, dW = dZᵀ·X, db = Σ dZ. Matches Linear followed by the
    /// activation op to float rounding.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias, FusedActivation activation)
    {
        if (weight.Rank != 2) throw new ShapeException($"Linear: weight must be 2-D [out, in], got {weight.Shape}.");
        int outF = weight.Size(0), inF = weight.Size(1);
        if (x.Rank == 0 || x.Size(-1) != inF)
            throw new ShapeException($"Linear: cannot apply a weight of shape {weight.Shape} to input {x.Shape}: the input's last dimension must be {inF}.");
        if (bias != null && (bias.Rank != 1 || bias.Size(0) != outF))
            throw new ShapeException($"Linear: bias must have shape [{outF}], got {bias.Shape}.");
        if (x.DType != weight.DType || (bias != null && bias.DType != weight.DType))
            throw new ArgumentException($"Linear: dtypes differ: input {x.DType.Name()}, weight {weight.DType.Name()}{(bias != null ? $", bias {bias.DType.Name()}" : "")}.");

        var xc = x.ContiguousData();
        if (!ReferenceEquals(xc, x)) xc.MarkScratch(); // a contiguous copy only the backward reads
        int rows = inF == 0 ? 0 : x.NumElements / inF;
        Span<int> outShape = stackalloc int[x.Rank];
        x._shape.CopyTo(outShape);
        outShape[^1] = outF;
        var y = Tensor.Empty(ShapeCache.Intern(outShape), x.DType, x.Backend);
        // GELU's derivative needs the pre-activation: the GEMM then writes it to a buffer of its own, which the
        // backward keeps, and the activation reads it from there into y (no copy of the GEMM's output).
        bool record = activation != FusedActivation.None && Engine.ShouldRecord(x, weight, bias);
        var pre = record && activation == FusedActivation.Gelu ? Tensor.Empty(y._shape, x.DType, x.Backend).MarkScratch() : y;
        if (bias != null) pre.Backend.Copy(bias.V, pre.V); // the bias in every row (shapes checked above); the GEMM adds onto it
        Tensor.GemmRows(xc, false, weight.ContiguousData(), true, pre, rows, outF, inF, beta: bias != null ? 1f : 0f);
        Tensor? z = record ? pre : null; // what act′ is computed from: the pre-activation (GELU) or the output y
        if (!ReferenceEquals(pre, y)) y.Backend.Unary(Backends.UnaryOp.Gelu, pre.V, y.V);
        else ApplyActivation(y, activation);
        Engine.Record(y, LinearNames[(int)activation],
            new LinearBackward(x, weight, bias, xc, z, activation), x, weight, bias, saved0: xc, saved1: z);
        return y;
    }

    /// <summary>The node names by activation (built once: no string per step).</summary>
    private static readonly string[] LinearNames = ["Linear", "Linear+Relu", "Linear+Sigmoid", "Linear+Tanh", "Linear+Gelu"];

    /// <summary>
    /// dZ = dY ⊙ act′, then dX = dZ·W, dW = dZᵀ·X, db = Σ dZ: fused kernels that accumulate straight
    /// into leaf parameters' Grad, or recorded ops when the backward builds a graph.
    /// </summary>
    private readonly struct LinearBackward(Tensor x, Tensor weight, Tensor? bias, Tensor xc, Tensor? z, FusedActivation activation) : IBackward
    {
        public void Backward(Tensor dy)
        {
            if (Engine.CreateGraph)
            {
                BackwardRecorded(dy);
                return;
            }
            var w = weight.ContiguousData();
            int inF = w.Size(1), outF = w.Size(0);
            var dyc = activation == FusedActivation.None ? dy.ContiguousData()
                : activation == FusedActivation.Gelu && Engine.ConsumesScratch ? GeluGradIntoScratch(dy, z!) // no new buffer, one pass fewer
                : ActivationGrad(dy, z!, activation);
            int rows = inF == 0 ? 0 : xc.NumElements / inF;
            if (x.RequiresGrad)
            {
                var dx = Tensor.Empty(x._shape, x.DType, x.Backend);
                Tensor.GemmRows(dyc, false, w, false, dx, rows, inF, outF, beta: 0); // dX = dY·W
                x.AccumulateGrad(dx);
            }
            if (weight.RequiresGrad)
            {
                var target = Engine.LeafGradTarget(weight);
                var dw = target ?? Tensor.ZerosLike(weight);
                Tensor.GemmRows(dyc, true, xc, false, dw, outF, inF, rows, beta: 1); // dW += dYᵀ·X
                if (target == null) weight.AccumulateGrad(dw);
            }
            if (bias != null && bias.RequiresGrad)
            {
                var target = Engine.LeafGradTarget(bias);
                var db = target ?? Tensor.ZerosLike(bias);
                AddColumnSums(dyc, rows, outF, db); // db += Σ_rows dY
                if (target == null) bias.AccumulateGrad(db);
            }
        }

        private void BackwardRecorded(Tensor dy)
        {
            int inF = weight.Size(1), outF = weight.Size(0);
            var dz = activation switch
            {
                FusedActivation.None => dy,
                FusedActivation.Relu => dy * z!.NoGraph().Gt(0).To(dy.DType), // z is the output y
                FusedActivation.Sigmoid => dy * z! * (1 - z!),
                FusedActivation.Tanh => dy * (1 - z! * z!),
                _ => Tensor.GeluGradient(dy, Linear(x, weight, bias), approximateTanh: false), // the pre-activation, recorded again
            };
            var dz2 = dz.Reshape(-1, outF);
            if (x.RequiresGrad) x.AccumulateGrad(dz2.MatMul(weight).Reshape(x._shape));
            if (weight.RequiresGrad) weight.AccumulateGrad(dz2.T.MatMul(x.Reshape(-1, inF)));
            if (bias != null && bias.RequiresGrad) bias.AccumulateGrad(dz2.Sum(0));
        }
    }

    private static void ApplyActivation(Tensor y, FusedActivation act)
    {
        var op = act switch
        {
            FusedActivation.None => (Backends.UnaryOp?)null,
            FusedActivation.Relu => Backends.UnaryOp.Relu,
            FusedActivation.Sigmoid => Backends.UnaryOp.Sigmoid,
            FusedActivation.Tanh => Backends.UnaryOp.Tanh,
            _ => Backends.UnaryOp.Gelu,
        };
        if (op is Backends.UnaryOp u) y.Backend.Unary(u, y.V, y.V);
    }

    /// <summary>dZ = dY ⊙ act′, with act′ from the saved output (ReLU, sigmoid, tanh) or pre-activation (GELU).</summary>
    private static Tensor ActivationGrad(Tensor dy, Tensor saved, FusedActivation act) => act switch
    {
        FusedActivation.Relu => Dispatch.Zip("ReluBackward", dy, saved, Backends.BinaryOp.ReluGrad),
        FusedActivation.Sigmoid => Dispatch.Zip("SigmoidBackward", dy, saved, Backends.BinaryOp.SigmoidGrad),
        FusedActivation.Tanh => Dispatch.Zip("TanhBackward", dy, saved, Backends.BinaryOp.TanhGrad),
        _ => Dispatch.Zip("GeluBackward", dy, saved, Backends.BinaryOp.GeluGrad),
    };

    /// <summary>
    /// dZ = dY ⊙ GELU′(z) written over z, the pre-activation the forward saved as op-internal scratch for
    /// this backward alone (only when the graph is freed as the pass goes: the node runs once).
    /// </summary>
    private static Tensor GeluGradIntoScratch(Tensor dy, Tensor z)
    {
        Dispatch.BackendOf("GeluBackward", dy, z).Binary(Backends.BinaryOp.GeluGrad, dy.V, z.V, z.V);
        z.BumpVersion();
        return z;
    }

    /// <summary>acc[j] += Σ_i m[i, j] for a contiguous m read as rows × cols.</summary>
    internal static void AddColumnSums(Tensor m, int rows, int cols, Tensor acc)
    {
        Dispatch.BackendOf("Linear", m, acc).AddRowSums(m.V, acc.V);
        acc.BumpVersion();
    }

    /// <summary>
    /// Inverted dropout: in training, zeroes each element with probability p and scales the rest by
    /// 1/(1 − p); otherwise returns x. The mask is drawn from <paramref name="generator"/>.
    /// </summary>
    public static Tensor Dropout(Tensor x, double p, bool training, Generator? generator = null)
    {
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout: probability must be in [0, 1].");
        if (!training || p == 0) return x;
        var g = generator ?? Generator.Default;
        var mask = Tensor.Empty([.. x.Shape.AsSpan()], x.DType, x.Backend);
        double scale = p == 1 ? 0 : 1 / (1 - p);
        // drawn on the host in a reused buffer, then copied to the mask's device
        if (x.DType == DType.Float32)
        {
            var m = HostScratch<float>.Get(mask.NumElements);
            g.FillDropoutMask(m, p, (float)scale); // m[i] = g.NextDouble() < p ? 0f : (float)scale
            mask.Backend.Upload<float>(m, mask.V);
        }
        else
        {
            var m = HostScratch<double>.Get(mask.NumElements);
            for (int i = 0; i < m.Length; i++) m[i] = g.NextDouble() < p ? 0 : scale;
            mask.Backend.Upload<double>(m, mask.V);
        }
        return x * mask.MarkScratch();
    }

    /// <summary>
    /// Inverted dropout in training whose mask for sample i (row i of dimension 0) is drawn from a
    /// generator seeded with (<paramref name="key"/>, <paramref name="firstSample"/> + i): each sample's
    /// mask depends on its global index, not on the rows around it (<see cref="SampleMasks"/>).
    /// </summary>
    public static Tensor DropoutPerSample(Tensor x, double p, ulong key, long firstSample)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout: probability must be in [0, 1].");
        if (p == 0) return x;
        if (x.Rank < 1) throw new ShapeException($"Dropout: per-sample masks need a batch dimension, got a scalar.");
        var mask = Tensor.Empty([.. x.Shape.AsSpan()], x.DType, x.Backend);
        double scale = p == 1 ? 0 : 1 / (1 - p);
        int rows = x.Size(0), per = rows == 0 ? 0 : x.NumElements / rows;
        if (x.DType == DType.Float32)
        {
            var m = HostScratch<float>.Get(mask.NumElements);
            for (int r = 0; r < rows; r++)
            {
                var g = new Generator(SampleMasks.Mix(key ^ SampleMasks.Mix((ulong)(firstSample + r))));
                for (int i = r * per; i < (r + 1) * per; i++) m[i] = g.NextDouble() < p ? 0f : (float)scale;
            }
            mask.Backend.Upload<float>(m, mask.V);
        }
        else
        {
            var m = HostScratch<double>.Get(mask.NumElements);
            for (int r = 0; r < rows; r++)
            {
                var g = new Generator(SampleMasks.Mix(key ^ SampleMasks.Mix((ulong)(firstSample + r))));
                for (int i = r * per; i < (r + 1) * per; i++) m[i] = g.NextDouble() < p ? 0 : scale;
            }
            mask.Backend.Upload<double>(m, mask.V);
        }
        return x * mask.MarkScratch();
    }
}
