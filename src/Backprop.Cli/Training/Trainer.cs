using System.Diagnostics;
using Backprop.Data;
using Backprop.NN;
using Backprop.Optim;

namespace Backprop.Cli.Training;

/// <summary>What one epoch produced.</summary>
public sealed record EpochResult(int Epoch, double TrainLoss, double TestLoss, double TestAccuracy, double TrainSeconds, double SamplesPerSecond);

/// <summary>Mini-batch training of a classifier on a <see cref="TensorDataset"/>, with evaluation after each epoch.</summary>
public sealed class Trainer
{
    /// <summary>The options this trainer was built from.</summary>
    public TrainOptions Options { get; }
    /// <summary>The model.</summary>
    public Sequential Model { get; }
    /// <summary>The optimizer.</summary>
    public Optimizer Optimizer { get; }
    /// <summary>Training split.</summary>
    public TensorDataset Train { get; }
    /// <summary>Test split.</summary>
    public TensorDataset Test { get; }
    /// <summary>The loader over the training split (one instance for the whole run, so each epoch shuffles anew).</summary>
    public DataLoader Loader { get; }
    /// <summary>Number of classes.</summary>
    public int Classes { get; }
    /// <summary>Parsed model spec.</summary>
    public ModelSpec Spec { get; }

    /// <summary>Loads the data and builds the model and optimizer; throws <see cref="CliException"/> on bad options.</summary>
    public Trainer(TrainOptions o)
    {
        Options = o;
        var entry = DatasetCatalog.Find(o.Dataset);
        (Train, Test) = entry.Load(o.DataDir, o.Limit);
        if (entry.Standardize) (Train, Test) = Standardized(Train, Test);
        int features = Train.Inputs.NumElements / Math.Max(Train.Count, 1);
        Classes = (int)Math.Max(Train.Targets.Max().ItemDouble(), Test.Targets.Max().ItemDouble()) + 1;
        Spec = ModelSpec.Parse(o.Model);
        if (Spec.Sizes[0] != features)
            throw new CliException($"--model {Spec}: the input size {Spec.Sizes[0]} does not match the {features} features of {o.Dataset}.");
        if (Spec.Sizes[^1] != Classes)
            throw new CliException($"--model {Spec}: the output size {Spec.Sizes[^1]} does not match the {Classes} classes of {o.Dataset}.");
        if (o.Loss is not ("cross-entropy" or "mse"))
            throw new CliException($"unknown loss '{o.Loss}'; expected cross-entropy or mse.");
        var gen = new Generator(o.Seed);
        try
        {
            NN.Activation.Create(o.Activation); // validates the name even for a model without hidden layers
            Model = Spec.Build(o.Activation, gen);
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message);
        }
        try
        {
            Optimizer = OptimizerFactory.Create(o.Optimizer, Model.Parameters(), o.Lr, o.Momentum, o.WeightDecay);
        }
        catch (ArgumentException e) when (e is not ShapeException)
        {
            throw new CliException($"--optimizer {o.Optimizer}: {e.Message}");
        }
        Loader = new DataLoader(Train, o.BatchSize, shuffle: true, seed: o.Seed);
    }

    /// <summary>Both splits with inputs shifted and scaled by the training split's per-feature mean and standard deviation.</summary>
    private static (TensorDataset, TensorDataset) Standardized(TensorDataset train, TensorDataset test)
    {
        var mean = train.Inputs.Mean(0, keepDim: true);
        var std = train.Inputs.Var(0, keepDim: true).Sqrt() + 1e-8;
        return (new TensorDataset((train.Inputs - mean) / std, train.Targets) { ClassNames = train.ClassNames },
            new TensorDataset((test.Inputs - mean) / std, test.Targets) { ClassNames = test.ClassNames });
    }

    private Tensor LossOf(Tensor output, Tensor target) => Options.Loss == "mse"
        ? NN.Loss.Mse(output, Tensor.OneHot(target, Classes, output.DType))
        : NN.Loss.CrossEntropy(output, target);

    /// <summary>Trains one epoch; <paramref name="onBatch"/> is told the batch index and the running mean loss.</summary>
    public (double MeanLoss, double Seconds, int Samples) TrainEpoch(Action<int, double>? onBatch = null)
    {
        Model.Train();
        double sum = 0;
        int batches = 0, samples = 0;
        var sw = Stopwatch.StartNew();
        foreach (var (x, y) in Loader)
        {
            var loss = LossOf(Model.Forward(x), y);
            Optimizer.ZeroGrad();
            loss.Backward();
            Optimizer.Step();
            double l = loss.ItemDouble();
            if (!double.IsFinite(l))
                throw new InvalidOperationException($"the training loss became {l} at epoch {Loader.Epoch}, batch {batches}; lower --lr (now {Options.Lr}).");
            sum += l;
            batches++;
            samples += x.Size(0);
            onBatch?.Invoke(batches, sum / batches);
        }
        sw.Stop();
        return (sum / Math.Max(batches, 1), sw.Elapsed.TotalSeconds, samples);
    }

    /// <summary>Mean loss and accuracy on a dataset, without recording a graph.</summary>
    public (double Loss, double Accuracy) Evaluate(TensorDataset data)
    {
        Model.Eval();
        double lossSum = 0;
        long correct = 0;
        using (Tensor.NoGrad())
            foreach (var (x, y) in new DataLoader(data, 1000))
            {
                var output = Model.Forward(x);
                lossSum += LossOf(output, y).ItemDouble() * x.Size(0);
                correct += (long)output.Argmax(1).Eq(y).Sum().ItemDouble();
            }
        Model.Train();
        return (lossSum / Math.Max(data.Count, 1), (double)correct / Math.Max(data.Count, 1));
    }
}
