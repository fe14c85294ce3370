using System.Globalization;
using Backprop.NN;

namespace Backprop.Cli.Training;

/// <summary>
/// A model description: <c>mlp:784-16-16-10</c> (layer sizes from input to output), or a convolutional
/// network, <c>cnn</c> (the preset) or <c>cnn:1x28x28-c32-bn-relu-m2-...-10</c> (<see cref="CnnSpec"/>).
/// <see cref="Sizes"/> holds the input and output sizes first and last in both cases.
/// </summary>
public sealed record ModelSpec(string Kind, int[] Sizes)
{
    /// <summary>The convolutional network, for <c>cnn</c> specs.</summary>
    public CnnSpec? Cnn { get; init; }

    /// <summary>Parses "mlp:a-b-...-z" (at least an input and an output size), "cnn" or "cnn:SPEC".</summary>
    public static ModelSpec Parse(string text)
    {
        var parts = text.Split(':', 2);
        if (parts[0].Equals("cnn", StringComparison.OrdinalIgnoreCase))
        {
            var cnn = CnnSpec.Parse(parts.Length == 2 ? parts[1] : CnnSpec.Preset, text);
            return new ModelSpec("cnn", [cnn.Input.C * cnn.Input.H * cnn.Input.W, cnn.Outputs]) { Cnn = cnn };
        }
        if (parts.Length != 2 || !parts[0].Equals("mlp", StringComparison.OrdinalIgnoreCase))
            throw new CliException($"invalid --model '{text}': expected mlp:<sizes> (for example mlp:784-16-16-10), cnn or cnn:<layers>.");
        var sizes = parts[1].Split('-');
        var r = new int[sizes.Length];
        for (int i = 0; i < sizes.Length; i++)
            if (!int.TryParse(sizes[i], NumberStyles.None, CultureInfo.InvariantCulture, out r[i]) || r[i] <= 0)
                throw new CliException($"invalid --model '{text}': layer size '{sizes[i]}' is not a positive integer.");
        if (r.Length < 2)
            throw new CliException($"invalid --model '{text}': give at least an input and an output size, for example mlp:784-10.");
        return new ModelSpec("mlp", r);
    }

    /// <summary>Linear layers with the activation between them (none after the last: it outputs logits).</summary>
    public Sequential Build(string activation, Generator generator)
    {
        if (Cnn != null) return Cnn.Build(generator);
        var seq = new Sequential();
        for (int i = 0; i + 1 < Sizes.Length; i++)
        {
            seq.Add(new Linear(Sizes[i], Sizes[i + 1], generator: generator));
            if (i + 2 < Sizes.Length) seq.Add(Activation.Create(activation));
        }
        return seq;
    }

    /// <inheritdoc/>
    public override string ToString() => Cnn != null ? $"cnn:{Cnn.Text}" : $"{Kind}:{string.Join("-", Sizes)}";
}
