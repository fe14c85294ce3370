using Backprop.Cli.Training;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Cli.Bench;

public static partial class BenchModels
{
    /// <summary>
    /// The <c>--model cnn</c> preset (<see cref="CnnSpec.Preset"/>: two 3×3 conv blocks with batch norm, ReLU and
    /// 2×2 max pooling, dropout 0.25, a linear classifier; 50,378 parameters) on synthetic 1×28×28 images,
    /// trained as <c>backprop train mnist --model cnn</c> does: Adam lr 2e-3, batch 128, train mode (dropout on,
    /// batch statistics).
    /// </summary>
    private static Model Cnn(string name, Generator g)
    {
        const int batch = 128, classes = 10;
        var model = CnnSpec.Parse(CnnSpec.Preset, "cnn").Build(g);
        model.Train();
        var opt = new Adam(model.Parameters(), lr: 2e-3);
        var xs = Enumerable.Range(0, Pool).Select(_ => Tensor.Rand([batch, 1, 28, 28], g)).ToArray();
        var ys = Enumerable.Range(0, Pool).Select(_ => Tensor.RandInt(0, classes, [batch], g)).ToArray();
        return new Model(name, $"CNN {CnnSpec.Preset} (3x3 convs pad 1, 50,378 parameters), Adam lr 2e-3, batch 128", batch, "samples/s", i =>
        {
            using var scope = Tensor.Scope();
            var loss = Loss.CrossEntropy(model.Forward(xs[i % Pool]), ys[i % Pool]);
            opt.ZeroGrad();
            loss.Backward();
            opt.Step();
        });
    }
}
