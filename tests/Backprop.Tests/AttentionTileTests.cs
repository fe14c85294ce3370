using Backprop.Autograd;
using Backprop.NN;
using static Backprop.Tests.TestUtil;

namespace Backprop.Tests;

/// <summary>
/// The float32 fused attention (tiles of TileQ = 32 queries by TileK = 64 keys, small GEMMs): forward and
/// gradients against the float64 kernel on the same values, across tile edges, causal offsets (fewer queries
/// than keys), head sizes off the vector width, strided operands and the packed [B, T, 3C] form.
/// </summary>
public class AttentionTileTests
{
    private static Tensor F32(Tensor t) => t.To(DType.Float32).Detach().RequiresGrad_();

    private static void Compare(Func<Tensor[], Tensor> f, Tensor[] inputs, double tol = 2e-5)
    {
        var g = new Generator(42);
        var x64 = inputs.Select(t => t.Detach().RequiresGrad_()).ToArray();
        var x32 = inputs.Select(F32).ToArray();
        var y64 = f(x64);
        var y32 = f(x32);
        Assert.Equal(DType.Float32, y32.DType);
        Close(y64.ToDoubleArray(), y32, tol);
        var r = Tensor.Randn([.. y64.Shape.AsSpan()], g, DType.Float64);
        var d64 = Gradients.Compute([y64], x64, [r]);
        var d32 = Gradients.Compute([y32], x32, [r.To(DType.Float32)]);
        for (int i = 0; i < inputs.Length; i++) Close(d64[i]!.ToDoubleArray(), d32[i]!, 5 * tol);
    }

    [Theory]
    [InlineData(97, 97, true)]   // query tiles 32+32+32+1, key blocks 64+33
    [InlineData(97, 97, false)]
    [InlineData(5, 130, true)]   // a cache's shape: 5 new queries after 125 cached keys, three key blocks
    [InlineData(1, 70, true)]    // one query (decoding)
    [InlineData(64, 64, true)]   // the GPT benchmark's context: one key block, two query tiles
    [InlineData(33, 200, false)]
    public void Float32TilesMatchFloat64(int tq, int tk, bool causal)
    {
        var g = new Generator((ulong)(tq * 1000 + tk));
        Compare(x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal),
            [R(g, 2, 3, tq, 20), R(g, 2, 3, tk, 20), R(g, 2, 3, tk, 24)]);
    }

    [Theory]
    [InlineData(64, 64, true, 32, 32)]   // the GPT benchmark's heads (whole AVX-512 vectors)
    [InlineData(97, 97, true, 16, 48)]
    [InlineData(97, 97, false, 32, 16)]
    [InlineData(5, 130, true, 32, 32)]
    [InlineData(1, 70, true, 16, 16)]
    [InlineData(70, 70, true, 64, 32)]
    public void WholeVectorHeadsMatchFloat64(int tq, int tk, bool causal, int d, int dv)
    {
        var g = new Generator((ulong)(tq * 7 + tk * 3 + d + dv));
        Compare(x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal), [R(g, 2, 2, tq, d), R(g, 2, 2, tk, d), R(g, 2, 2, tk, dv)]);
    }

    [Fact]
    public void StridedOperandsAndOddHeadSizes()
    {
        var g = new Generator(7);
        // q and v transposed views (row strides other than D), head size 7 (a vector tail), a custom scale
        Compare(x => Functional.ScaledDotProductAttention(x[0].Transpose(1, 2), x[1], x[2].Transpose(1, 2), causal: true, scale: 0.3),
            [R(g, 1, 70, 2, 7), R(g, 1, 2, 70, 7), R(g, 1, 70, 2, 5)]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void PackedSelfAttentionFloat32MatchesFloat64(bool causal)
    {
        var g = new Generator(causal ? 8u : 9u);
        Compare(x => Functional.SelfAttention(x[0], 4, causal), [R(g, 3, 75, 3 * 4 * 8)]);
        Compare(x => Functional.SelfAttention(x[0], 2, causal), [R(g, 2, 66, 3 * 2 * 32)]); // heads of 32, in place in qkv
    }

    [Fact]
    public void LargeScoresStayFiniteAcrossKeyBlocks()
    {
        // the running maximum grows from block to block (scores rise with the key index): the rescaling path
        var g = new Generator(10);
        var q = Tensor.Full([1, 1, 3, 4], 4.0, DType.Float64);
        var k = Tensor.Arange(0, 150 * 4).Reshape(1, 1, 150, 4).To(DType.Float64) * 0.05;
        Compare(x => Functional.ScaledDotProductAttention(x[0], x[1], x[2], causal: false, scale: 1), [q, k, R(g, 1, 1, 150, 3)], 1e-4);
    }
}
