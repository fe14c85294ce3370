using System.Numerics.Tensors;

namespace Backprop.Data;

/// <summary>
/// Loading of the MNIST file layout shared by MNIST and Fashion-MNIST: four IDX files named
/// train-/t10k- images-idx3-ubyte and labels-idx1-ubyte, gzip-compressed or not.
/// </summary>
internal static class MnistFormat
{
    /// <summary>File names tried for one file, in order: the original .gz name, the uncompressed name, and the
    /// "train-images.idx3-ubyte" spelling some mirrors use.</summary>
    internal static string[] Candidates(Split split, string kind, int idxRank)
    {
        string prefix = split == Split.Train ? "train" : "t10k";
        string name = $"{prefix}-{kind}-idx{idxRank}-ubyte";
        return [name + ".gz", name, $"{prefix}-{kind}.idx{idxRank}-ubyte", $"{prefix}-{kind}.idx{idxRank}-ubyte.gz"];
    }

    public static TensorDataset Load(string datasetName, string directory, Split split, int? limit, int classes, IReadOnlyList<string> classNames, string? hint = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (limit < 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, $"{datasetName}.Load: limit must be non-negative.");
        var imageNames = Candidates(split, "images", 3);
        var labelNames = Candidates(split, "labels", 1);
        string full = Path.GetFullPath(directory);
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException(
                $"{datasetName}: directory '{directory}' ({full}) does not exist; looked there for {imageNames[0]} and {labelNames[0]} " +
                $"(or uncompressed, without .gz). " + (hint ?? $"Put the four {datasetName} IDX files in one directory and pass its path."));
        string images = Find(datasetName, directory, full, imageNames);
        string labels = Find(datasetName, directory, full, labelNames);

        var img = Idx.Read(images, limit);
        var lab = Idx.Read(labels, limit);
        if (img.Type != IdxType.UInt8 || img.Dims.Count != 3)
            throw new DataFormatException(
                $"{images}: expected {datasetName} images, unsigned bytes with 3 dimensions [count, rows, columns]; found {img.Type} with dimensions {Shape.Format([.. img.Dims])}.",
                images, 0);
        if (lab.Type != IdxType.UInt8 || lab.Dims.Count != 1)
            throw new DataFormatException(
                $"{labels}: expected {datasetName} labels, unsigned bytes with 1 dimension [count]; found {lab.Type} with dimensions {Shape.Format([.. lab.Dims])}.",
                labels, 0);
        if (img.Dims[0] != lab.Dims[0])
            throw new DataFormatException(
                $"{datasetName}: {images} holds {img.Dims[0]} images but {labels} holds {lab.Dims[0]} labels{(limit != null ? $" (limit {limit})" : "")}; the two files must match.",
                labels, 4);

        int n = img.Dims[0], pixels = img.Dims[1] * img.Dims[2];
        var x = Tensor.HostEmpty<float>([n, pixels]);
        var xs = x.Span<float>();
        // Same arithmetic as torchvision's ToTensor (byte → float, then / 255), so pixel values match PyTorch exactly.
        TensorPrimitives.ConvertChecked<byte, float>(img.Data, xs);
        TensorPrimitives.Divide(xs, 255f, xs);
        var y = Tensor.HostEmpty<long>([n]);
        var ys = y.Span<long>();
        for (int i = 0; i < n; i++)
        {
            byte c = lab.Data[i];
            if (c >= classes)
                throw new DataFormatException($"{labels}: label {c} of item {i} at byte {8 + i} is not a class of {datasetName} (0..{classes - 1}).", labels, 8 + i);
            ys[i] = c;
        }
        return new TensorDataset(x, y) { ClassNames = classNames };
    }

    private static string Find(string datasetName, string directory, string full, string[] names)
    {
        foreach (var n in names)
        {
            var p = Path.Combine(directory, n);
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException(
            $"{datasetName}: none of {string.Join(", ", names)} found in '{directory}' ({full}).", Path.Combine(directory, names[0]));
    }
}
