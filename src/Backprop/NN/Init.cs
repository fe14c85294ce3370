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

    /// <summary>Fills with U(low, high).</summary>
    public static Tensor Uniform_(Tensor t, double low, double high, Generator? generator = null)
    {
        using (Tensor.NoGrad()) t.CopyFrom(Tensor.Uniform(t.Shape.ToArray(), low, high, generator, t.DType));
        return t;
    }

    /// <summary>Fills with N(mean, std²).</summary>
    public static Tensor Normal_(Tensor t, double mean = 0, double std = 1, Generator? generator = null)
    {
        using (Tensor.NoGrad()) t.CopyFrom(Tensor.Normal(t.Shape.ToArray(), mean, std, generator, t.DType));
        return t;
    }

    /// <summary>Fills with zeros.</summary>
    public static Tensor Zeros_(Tensor t)
    {
        using (Tensor.NoGrad()) t.Zero_();
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
