using BenchmarkDotNet.Attributes;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Bench;

/// <summary>The fused hot paths: Linear+bias+activation, softmax+cross-entropy, GELU and the Adam update (forward and backward where there is one).</summary>
[MemoryDiagnoser]
public class FusedKernelBenchmarks
{
    private Tensor _x = null!, _w = null!, _b = null!, _logits = null!, _gelu = null!;
    private Tensor _y = null!;
    private Adam _adam = null!;

    [GlobalSetup]
    public void Setup()
    {
        var g = new Generator(1);
        _x = Tensor.Randn([128, 784], g);
        _w = Tensor.Randn([256, 784], g).RequiresGrad_();
        _b = Tensor.Randn([256], g).RequiresGrad_();
        _logits = Tensor.Randn([128, 10], g).RequiresGrad_();
        _y = Tensor.RandInt(0, 10, [128], g);
        _gelu = Tensor.Randn([128, 1024], g).RequiresGrad_();
        var p = new Parameter(Tensor.Randn([235146], g));
        p.Grad = Tensor.Randn([235146], g);
        _adam = new Adam([p], lr: 1e-3);
    }

    [Benchmark(Description = "Linear+ReLU 128x784->256, forward+backward")]
    public void LinearRelu()
    {
        using var s = Tensor.Scope();
        Functional.Linear(_x, _w, _b, FusedActivation.Relu).Sum().Backward();
    }

    [Benchmark(Description = "softmax+cross-entropy 128x10, forward+backward")]
    public void CrossEntropy()
    {
        using var s = Tensor.Scope();
        Loss.CrossEntropy(_logits, _y).Backward();
    }

    [Benchmark(Description = "GELU 128x1024, forward+backward")]
    public void Gelu()
    {
        using var s = Tensor.Scope();
        _gelu.Gelu().Sum().Backward();
    }

    [Benchmark(Description = "Adam step, 235146 parameters")]
    public void AdamStep() => _adam.Step();
}
