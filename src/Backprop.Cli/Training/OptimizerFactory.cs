using Backprop.Optim;

namespace Backprop.Cli.Training;

/// <summary>Optimizers by name for the command line.</summary>
public static class OptimizerFactory
{
    /// <summary>Accepted names.</summary>
    public static readonly string[] Names = ["sgd", "momentum", "nesterov", "adam", "adamw", "adagrad", "rmsprop"];

    /// <summary>Creates the named optimizer over <paramref name="parameters"/>.</summary>
    public static Optimizer Create(string name, IEnumerable<Tensor> parameters, double lr, double momentum, double weightDecay) =>
        name.ToLowerInvariant() switch
        {
            "sgd" => new Sgd(parameters, lr, momentum: momentum, weightDecay: weightDecay),
            "momentum" => new Sgd(parameters, lr, momentum: momentum == 0 ? 0.9 : momentum, weightDecay: weightDecay),
            "nesterov" => new Sgd(parameters, lr, momentum: momentum == 0 ? 0.9 : momentum, weightDecay: weightDecay, nesterov: true),
            "adam" => new Adam(parameters, lr, weightDecay: weightDecay),
            "adamw" => new AdamW(parameters, lr, weightDecay: weightDecay == 0 ? 0.01 : weightDecay),
            "adagrad" => new AdaGrad(parameters, lr, weightDecay: weightDecay),
            "rmsprop" => new RmsProp(parameters, lr, weightDecay: weightDecay, momentum: momentum),
            _ => throw new CliException($"unknown optimizer '{name}'; expected one of: {string.Join(", ", Names)}."),
        };
}
