using Backprop.Backends;
using Backprop.Optim;

namespace Backprop.Tests;

/// <summary>
/// The CPU backend's fused optimizer updates and clipping norms against the reference backend's plain
/// scalar loops: the same parameters and gradients, a few steps on each device, parameters and state compared.
/// </summary>
public class ReferenceBackendOptimTests
{
    public static TheoryData<string> Configurations =>
    [
        "sgd", "sgd-momentum", "sgd-dampening", "sgd-nesterov", "sgd-weight-decay", "sgd-maximize",
        "adam", "adam-l2-maximize", "adamw", "adam-amsgrad", "adamw-amsgrad",
        "rmsprop", "rmsprop-centered", "rmsprop-momentum", "rmsprop-centered-momentum-wd", "rmsprop-maximize",
        "adagrad", "adagrad-decay-wd", "adagrad-maximize",
    ];

    private static Optimizer Make(string name, Tensor[] ps) => name switch
    {
        "sgd" => new Sgd(ps, lr: 0.1),
        "sgd-momentum" => new Sgd(ps, lr: 0.1, momentum: 0.9),
        "sgd-dampening" => new Sgd(ps, lr: 0.1, momentum: 0.8, dampening: 0.3),
        "sgd-nesterov" => new Sgd(ps, lr: 0.1, momentum: 0.9, nesterov: true),
        "sgd-weight-decay" => new Sgd(ps, lr: 0.1, momentum: 0.5, weightDecay: 0.05),
        "sgd-maximize" => new Sgd(ps, lr: 0.1, momentum: 0.9, weightDecay: 0.01, maximize: true),
        "adam" => new Adam(ps, lr: 0.01),
        "adam-l2-maximize" => new Adam(ps, lr: 0.01, beta1: 0.8, beta2: 0.99, weightDecay: 0.1, maximize: true),
        "adamw" => new AdamW(ps, lr: 0.01, weightDecay: 0.1),
        "adam-amsgrad" => new Adam(ps, lr: 0.01, amsgrad: true),
        "adamw-amsgrad" => new AdamW(ps, lr: 0.01, weightDecay: 0.1, amsgrad: true),
        "rmsprop" => new RmsProp(ps, lr: 0.01),
        "rmsprop-centered" => new RmsProp(ps, lr: 0.01, alpha: 0.9, centered: true),
        "rmsprop-momentum" => new RmsProp(ps, lr: 0.01, momentum: 0.9),
        "rmsprop-centered-momentum-wd" => new RmsProp(ps, lr: 0.01, alpha: 0.9, momentum: 0.5, centered: true, weightDecay: 0.1),
        "rmsprop-maximize" => new RmsProp(ps, lr: 0.01, maximize: true),
        "adagrad" => new AdaGrad(ps, lr: 0.1),
        "adagrad-decay-wd" => new AdaGrad(ps, lr: 0.1, lrDecay: 0.1, weightDecay: 0.1, initialAccumulatorValue: 0.5),
        "adagrad-maximize" => new AdaGrad(ps, lr: 0.1, maximize: true),
        _ => throw new ArgumentException(name),
    };

    /// <summary>Shapes with odd sizes, so that the CPU kernels run their vector loops and their scalar tails.</summary>
    private static readonly int[][] Shapes = [[37], [5, 7], [1], [64]];

    private static double Tolerance(DType dtype) => dtype == DType.Float32 ? 1e-6 : 1e-12;

    [Theory]
    [MemberData(nameof(Configurations))]
    public void CpuUpdatesMatchTheReferenceBackend(string name)
    {
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            var g = new Generator(42);
            var cpu = Shapes.Select(s => Tensor.Normal(s, 0, 1, g, dtype)).ToArray();
            var reference = cpu.Select(p => p.To(Device.Reference)).ToArray();
            Assert.All(reference, p => Assert.Equal(Device.Reference, p.Device));
            var optCpu = Make(name, cpu);
            var optRef = Make(name, reference);
            for (int step = 0; step < 5; step++)
            {
                if (step == 3)
                {
                    // a schedule changing the learning rate between steps reaches both backends
                    optCpu.Lr *= 0.5;
                    optRef.Lr *= 0.5;
                }
                for (int i = 0; i < cpu.Length; i++)
                {
                    var grad = Tensor.Normal(Shapes[i], 0, 1, g, dtype);
                    cpu[i].Grad = grad;
                    reference[i].Grad = grad.To(Device.Reference);
                }
                optCpu.Step();
                optRef.Step();
            }
            string what = $"{name} {dtype.Name()}";
            for (int i = 0; i < cpu.Length; i++) AssertClose(reference[i], cpu[i], Tolerance(dtype), $"{what}: parameter {i}");
            var stateCpu = optCpu.StateDict();
            var stateRef = optRef.StateDict();
            Assert.Equal(stateCpu.Keys, stateRef.Keys);
            foreach (var key in stateCpu.Keys) AssertClose(stateRef[key], stateCpu[key], Tolerance(dtype), $"{what}: {key}");
        }
    }

    public static TheoryData<double> NormTypes => [2.0, 1.0, 3.0, 0.5, double.PositiveInfinity];

    [Theory]
    [MemberData(nameof(NormTypes))]
    public void ClipGradNormMatchesTheReferenceBackend(double normType)
    {
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            var g = new Generator(3);
            var cpu = Shapes.Select(s => Tensor.Zeros(s, dtype)).ToArray();
            var reference = cpu.Select(p => p.To(Device.Reference)).ToArray();
            for (int i = 0; i < cpu.Length; i++)
            {
                var grad = Tensor.Normal(Shapes[i], 0, 3, g, dtype);
                cpu[i].Grad = grad;
                reference[i].Grad = grad.To(Device.Reference);
            }
            double totalCpu = GradClip.ClipGradNorm(cpu, maxNorm: 0.5, normType);
            double totalRef = GradClip.ClipGradNorm(reference, maxNorm: 0.5, normType);
            Assert.True(totalCpu > 0.5, $"the gradients must be clipped (total norm {totalCpu})");
            Assert.True(Math.Abs(totalCpu - totalRef) <= 1e-12 * totalRef, $"norm {normType} {dtype.Name()}: CPU {totalCpu:R}, reference {totalRef:R}");
            for (int i = 0; i < cpu.Length; i++)
                AssertClose(reference[i].Grad!, cpu[i].Grad!, Tolerance(dtype), $"norm {normType} {dtype.Name()}: gradient {i}");
        }
    }

    [Fact]
    public void ClipGradValueMatchesTheReferenceBackend()
    {
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            var g = new Generator(5);
            var cpu = Shapes.Select(s => Tensor.Zeros(s, dtype)).ToArray();
            var reference = cpu.Select(p => p.To(Device.Reference)).ToArray();
            for (int i = 0; i < cpu.Length; i++)
            {
                var grad = Tensor.Normal(Shapes[i], 0, 2, g, dtype);
                cpu[i].Grad = grad;
                reference[i].Grad = grad.To(Device.Reference);
            }
            GradClip.ClipGradValue(cpu, 0.75);
            GradClip.ClipGradValue(reference, 0.75);
            for (int i = 0; i < cpu.Length; i++)
                Assert.Equal(cpu[i].Grad!.ToDoubleArray(), reference[i].Grad!.ToDoubleArray());
        }
    }

    [Fact]
    public void NonFiniteGradientsGiveTheSameNormOnBothBackends()
    {
        var cpu = Tensor.Zeros([9]);
        var grad = Tensor.FromArray(new float[] { 1, -2, float.NaN, 4, 5, 6, 7, 8, 9 }, 9);
        cpu.Grad = grad;
        var reference = cpu.To(Device.Reference);
        reference.Grad = grad.To(Device.Reference);
        foreach (var p in new[] { 2.0, 1.0, double.PositiveInfinity })
        {
            Assert.True(double.IsNaN(GradClip.ClipGradNorm([cpu], 1e9, p)));
            Assert.True(double.IsNaN(GradClip.ClipGradNorm([reference], 1e9, p)));
        }
    }

    [Fact]
    public void AGradientOnAnotherDeviceIsRefusedByName()
    {
        var p = Tensor.Zeros([3]);
        p.Grad = Tensor.Ones([3]).To(Device.Reference);
        var e = Assert.Throws<InvalidOperationException>(() => new Sgd([p], lr: 0.1).Step());
        Assert.Contains("parameter 0 is on Cpu but its gradient is on Reference", e.Message);
    }

    [Fact]
    public void StateSavedOnTheCpuResumesOnTheReferenceBackend()
    {
        // The state dict of a CPU optimizer, loaded into the same optimizer over reference parameters,
        // continues the same trajectory: its state is copied onto the parameters' device.
        var g = new Generator(11);
        var cpu = Tensor.Normal([13], 0, 1, g, DType.Float64);
        var optCpu = new Adam([cpu], lr: 0.05, amsgrad: true);
        var grads = Enumerable.Range(0, 4).Select(_ => Tensor.Normal([13], 0, 1, g, DType.Float64)).ToArray();
        for (int k = 0; k < 2; k++)
        {
            cpu.Grad = grads[k];
            optCpu.Step();
        }
        var reference = cpu.To(Device.Reference);
        var optRef = new Adam([reference], lr: 0.05, amsgrad: true);
        optRef.LoadStateDict(optCpu.StateDict());
        for (int k = 2; k < 4; k++)
        {
            cpu.Grad = grads[k];
            reference.Grad = grads[k].To(Device.Reference);
            optCpu.Step();
            optRef.Step();
        }
        AssertClose(reference, cpu, 1e-12, "resumed Adam");
        Assert.All(optRef.StateDict().Tensors.Values, t => Assert.Equal(Device.Reference, t.Device));
    }

    /// <summary>|expected − actual| ≤ tolerance · max |expected| elementwise (relative to the tensor's scale, so values near zero do not need digits they cannot have).</summary>
    private static void AssertClose(Tensor expected, Tensor actual, double tolerance, string what)
    {
        Assert.Equal(expected.DType, actual.DType);
        var e = expected.ToDoubleArray();
        var a = actual.ToDoubleArray();
        Assert.Equal(e.Length, a.Length);
        double scale = e.Length == 0 ? 0 : e.Max(Math.Abs);
        for (int k = 0; k < e.Length; k++)
            Assert.True(Math.Abs(e[k] - a[k]) <= tolerance * scale,
                $"{what}: element {k}: reference {e[k]:R}, CPU {a[k]:R} (difference {Math.Abs(e[k] - a[k]):E2}, allowed {tolerance * scale:E2})");
    }
}
