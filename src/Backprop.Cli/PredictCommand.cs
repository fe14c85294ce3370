using System.CommandLine;
using System.Globalization;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Backprop.Cli.Training;
using Backprop.Data;
using Backprop.IO;
using Backprop.NN;

namespace Backprop.Cli;

/// <summary>
/// <c>backprop predict --checkpoint FILE --input FILE|--dataset NAME</c>: the class a model saved by
/// <c>backprop train --save</c> predicts for each row of a file, or its accuracy on a dataset's test split.
/// </summary>
public static class PredictCommand
{
    private const int BatchRows = 1000;

    /// <summary>The command, for the command tree of <see cref="Cli"/>.</summary>
    internal static Command Create()
    {
        var checkpoint = CliOptions.Text("--checkpoint", "FILE", "the checkpoint written by 'backprop train --save' (required)");
        var input = CliOptions.Text("--input", "FILE", "rows to classify: CSV (one row of comma-separated features per line) or an IDX images file; prints one class index per row");
        var dataset = CliOptions.Text("--dataset", "NAME", "a labelled dataset: prints the accuracy on its test split");
        dataset.CompletionSources.Add([.. DatasetCatalog.All.Select(e => e.Name)]);
        var data = CliOptions.Text("--data", "DIR", "folder with the dataset's files (mnist, fashion-mnist), as for train");
        var threads = CliOptions.Int("--threads", "threads for the kernels (default: the cores, or BACKPROP_THREADS)", 1, 1024);
        var json = CliOptions.Flag("--json", "print one JSON object with the predictions or the accuracy as the last line of stdout");
        var command = new NotedCommand("predict", "Classify rows of a file, or measure the accuracy on a dataset, with a model saved by 'backprop train --save'.")
        {
            Notes = """
                Give --input or --dataset. Features are what the model was trained on, as the dataset provides them
                (digits: 64 pixels in [0, 1]; mnist and fashion-mnist: 784 pixels in [0, 1], which an IDX file of
                unsigned bytes gives after dividing by 255); for a dataset that training standardized (cities,
                fashion-mnist) the training split's statistics are recomputed and applied.

                Examples:
                  backprop train --epochs 5 --save digits.safetensors
                  backprop predict --checkpoint digits.safetensors --dataset digits
                  backprop predict --checkpoint mnist.safetensors --input t10k-images-idx3-ubyte.gz --json
                """,
        };
        foreach (var o in new Option[] { checkpoint, input, dataset, data, threads, json }) command.Add(o);
        command.SetAction(r =>
        {
            int previous = Threads.Count;
            try
            {
                if (r.GetValue(threads) is int t) Threads.Count = t;
                return Run(r.GetValue(checkpoint), r.GetValue(input), r.GetValue(dataset), r.GetValue(data), r.GetValue(json), r.InvocationConfiguration.Output);
            }
            finally
            {
                Threads.Count = previous;
            }
        });
        return command;
    }

    private static int Run(string? checkpointPath, string? inputPath, string? datasetName, string? dataDir, bool json, TextWriter stdout)
    {
        if (checkpointPath == null)
            throw new CliException("'predict' needs --checkpoint FILE, a checkpoint written by 'backprop train --save'.");
        if ((inputPath == null) == (datasetName == null))
            throw new CliException(inputPath == null
                ? "'predict' needs --input FILE (rows to classify) or --dataset NAME (a labelled dataset to measure the accuracy on)."
                : "'predict' takes --input or --dataset, not both.");
        if (dataDir != null) TrainCommand.CheckDataFolder(dataDir, null);
        var content = TrainCommand.LoadCheckpoint(checkpointPath, "--checkpoint");
        var recorded = TrainCommand.RecordedOptions(content, checkpointPath, "--checkpoint");
        var spec = ModelSpec.Parse(recorded.Model);
        Sequential model;
        try
        {
            model = spec.Build(recorded.Activation, new Generator(recorded.Seed));
            content.Restore(model: model);
        }
        catch (CheckpointMismatchException e)
        {
            throw new CliException($"--checkpoint {e.Message}");
        }
        catch (ArgumentException e)
        {
            throw new CliException($"--checkpoint {checkpointPath}: {e.Message}");
        }
        model.Eval();
        string described = $"{spec} from {checkpointPath}";
        int features = spec.Sizes[0], classes = spec.Sizes[^1];
        var trainedOn = DatasetCatalog.Find(recorded.Dataset);

        if (datasetName != null)
        {
            var entry = DatasetCatalog.Find(datasetName);
            // The test split as training evaluated it: the recorded data folder and sample limit apply to the dataset it was trained on.
            bool same = entry.Name == trainedOn.Name;
            var folder = dataDir ?? (same ? recorded.DataDir : null);
            TensorDataset train, test;
            try
            {
                (train, test) = entry.Load(folder, same ? recorded.Limit : null);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or DataFormatException or InvalidDataException)
            {
                throw new CliException($"{entry.Name}: {e.Message}");
            }
            int have = test.Inputs.NumElements / Math.Max(test.Count, 1);
            if (have != features)
                throw new CliException($"--dataset {entry.Name}: {have} features, but the model {described} takes {features}.");
            // --data names the folder of the dataset evaluated; the statistics of another dataset come from where it was trained.
            var x = Preprocess(test.Inputs, trainedOn, same ? train : null, recorded, null);
            var predicted = Predict(model, x);
            var labels = test.Targets.ToLongArray();
            long maxLabel = labels.Length > 0 ? labels.Max() : 0;
            if (maxLabel >= classes)
                throw new CliException($"--dataset {entry.Name}: labels go up to {maxLabel}, but the model {described} has {classes} classes.");
            int correct = 0;
            for (int i = 0; i < labels.Length; i++) if (predicted[i] == labels[i]) correct++;
            double accuracy = (double)correct / Math.Max(labels.Length, 1);
            if (json)
                stdout.WriteLine(new JsonObject
                {
                    ["checkpoint"] = checkpointPath,
                    ["model"] = spec.ToString(),
                    ["dataset"] = entry.Name,
                    ["split"] = "test",
                    ["samples"] = labels.Length,
                    ["correct"] = correct,
                    ["accuracy"] = accuracy,
                }.ToJsonString());
            else
                stdout.WriteLine($"test accuracy {100 * accuracy:F2}% ({correct} of {labels.Length}) on {entry.Name}, {described}");
            return 0;
        }

        var rows = ReadInput(inputPath!, features, described);
        var inputs = Preprocess(rows, trainedOn, null, recorded, dataDir);
        var classesOut = Predict(model, inputs);
        if (json)
            stdout.WriteLine(new JsonObject
            {
                ["checkpoint"] = checkpointPath,
                ["model"] = spec.ToString(),
                ["input"] = inputPath,
                ["rows"] = classesOut.Length,
                ["predictions"] = new JsonArray([.. classesOut.Select(c => (JsonNode)JsonValue.Create(c))]),
            }.ToJsonString());
        else
            foreach (var c in classesOut) stdout.WriteLine(c.ToString(CultureInfo.InvariantCulture));
        return 0;
    }

    /// <summary>
    /// The inputs as the model saw them in training: standardized with the training split's statistics
    /// when the dataset it was trained on is standardized (recomputed from that split, which is loaded
    /// from <paramref name="dataDir"/>, else the recorded folder, if not given).
    /// </summary>
    private static Tensor Preprocess(Tensor x, DatasetEntry trainedOn, TensorDataset? train, TrainOptions recorded, string? dataDir)
    {
        if (!trainedOn.Standardize) return x;
        if (train == null)
        {
            try
            {
                train = trainedOn.Load(dataDir ?? recorded.DataDir, recorded.Limit).Train;
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or DataFormatException or InvalidDataException)
            {
                throw new CliException($"{trainedOn.Name}: the model was trained on standardized inputs, whose statistics come from the training split: {e.Message}");
            }
        }
        var (mean, std) = Trainer.InputStatistics(train);
        return (x - mean) / std;
    }

    /// <summary>The class with the largest output for each row.</summary>
    private static long[] Predict(Sequential model, Tensor x)
    {
        int n = x.Size(0);
        var result = new long[n];
        using (Tensor.NoGrad())
            for (int start = 0; start < n; start += BatchRows)
            {
                int rows = Math.Min(BatchRows, n - start);
                using var scope = Tensor.Scope();
                model.Forward(x.Narrow(0, start, rows)).Argmax(1).ToLongArray().CopyTo(result, start);
            }
        return result;
    }

    /// <summary>An IDX file (by its magic number, gzip or not) or CSV text, as rows of <paramref name="features"/> values.</summary>
    private static Tensor ReadInput(string path, int features, string described)
    {
        if (!File.Exists(path))
            throw new CliException(Directory.Exists(path)
                ? $"--input '{path}' is a folder; give a CSV file or an IDX images file."
                : $"--input: file '{path}' does not exist.");
        try
        {
            return IsIdx(path) ? ReadIdx(path, features, described) : ReadCsv(path, features, described);
        }
        catch (Exception e) when (e is DataFormatException or InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--input {e.Message}");
        }
    }

    private static Stream Open(string path)
    {
        var file = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[2];
        int n = file.Read(magic);
        file.Position = 0;
        return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b ? new GZipStream(file, CompressionMode.Decompress) : file;
    }

    /// <summary>IDX files start with two zero bytes, a type code and the number of dimensions; text does not.</summary>
    private static bool IsIdx(string path)
    {
        using var s = Open(path);
        Span<byte> head = stackalloc byte[4];
        int n = s.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        return n == 4 && head[0] == 0 && head[1] == 0 && (head[2] is 0x08 or 0x09 or 0x0B or 0x0C or 0x0D or 0x0E) && head[3] is >= 1 and <= 8;
    }

    private static Tensor ReadIdx(string path, int features, string described)
    {
        var idx = Idx.Read(path);
        if (idx.Dims.Count < 2)
            throw new CliException($"--input {path}: an IDX file with {idx.Dims.Count} dimension(s) holds no rows of features; expected [rows, ...] such as images [count, rows, columns].");
        int rows = idx.Dims[0];
        long have = idx.Count / Math.Max(rows, 1);
        if (rows > 0 && have != features)
            throw new CliException($"--input {path}: each row holds {have} features ({string.Join("x", idx.Dims.Skip(1))}), but the model {described} takes {features}.");
        if (idx.Type != IdxType.UInt8) return idx.ToTensor().To(DType.Float32).Reshape(rows, features);
        // As the MNIST loader does: bytes / 255.
        var x = new float[(long)rows * features];
        for (int i = 0; i < x.Length; i++) x[i] = idx.Data[i] / 255f;
        return Tensor.FromArray(x, rows, features);
    }

    private static Tensor ReadCsv(string path, int features, string described)
    {
        using var reader = new StreamReader(Open(path));
        var values = new List<float>();
        int lineNo = 0, rows = 0;
        string? line;
        while ((line = reader.ReadLine()) != null)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var fields = line.Split(',');
            if (fields.Length != features)
                throw new CliException($"--input {path}, line {lineNo}: {fields.Length} features, but the model {described} takes {features}.");
            for (int f = 0; f < fields.Length; f++)
            {
                var text = fields[f].Trim();
                if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float v) || !float.IsFinite(v))
                    throw new CliException($"--input {path}, line {lineNo}, field {f + 1}: '{(text.Length <= 40 ? text : text[..40] + "...")}' is not a number.");
                values.Add(v);
            }
            rows++;
        }
        if (rows == 0)
            throw new CliException($"--input {path}: no rows: the file is empty or has only blank lines.");
        return Tensor.FromArray(values.ToArray(), rows, features);
    }
}
