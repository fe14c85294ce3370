using System.Globalization;
using Backprop.NN;

namespace Backprop.Cli.Training;

/// <summary>A model description like <c>mlp:784-16-16-10</c>: layer sizes from input to output.</summary>
public sealed record ModelSpec(string Kind, int[] Sizes)
{
    /// <summary>Parses "mlp:a-b-...-z" (at least an input and an output size).</summary>
    public static ModelSpec Parse(string text)
    {
        var parts = text.Split(':', 2);
        if (parts.Length != 2 || !parts[0].Equals("mlp", StringComparison.OrdinalIgnoreCase))
            throw new CliException($"invalid --model '{text}': expected mlp:<sizes>, for example mlp:784-16-16-10.");
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
        var seq = new Sequential();
        for (int i = 0; i + 1 < Sizes.Length; i++)
        {
            seq.Add(new Linear(Sizes[i], Sizes[i + 1], generator: generator));
            if (i + 2 < Sizes.Length) seq.Add(Activation.Create(activation));
        }
        return seq;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Kind}:{string.Join("-", Sizes)}";
}
