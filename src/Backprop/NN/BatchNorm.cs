namespace Backprop.NN;

/// <summary>
/// Batch normalization over the channels of its input (torch.nn.BatchNorm1d/2d): in training each
/// channel is normalized with the batch's mean and variance, and running estimates are kept; in
/// evaluation the running estimates normalize. State-dict names are PyTorch's: <c>weight</c> and
/// <c>bias</c> (with affine), <c>running_mean</c>, <c>running_var</c> and <c>num_batches_tracked</c>
/// (an int64 scalar; with trackRunningStats).
/// </summary>
public abstract class BatchNormBase : Module
{
    private Tensor? _runningMean, _runningVar, _numBatchesTracked;

    /// <summary>Creates the layer for <paramref name="numFeatures"/> channels.</summary>
    /// <param name="numFeatures">Channels C of the input (dimension 1).</param>
    /// <param name="eps">Added to the variance before the square root.</param>
    /// <param name="momentum">Weight of each batch in the running statistics; null for a cumulative average (1/num_batches_tracked).</param>
    /// <param name="affine">Learn a per-channel scale (initialized to 1) and shift (0).</param>
    /// <param name="trackRunningStats">Keep running statistics (otherwise evaluation also uses the batch's).</param>
    /// <param name="dtype">Element type of parameters and running statistics.</param>
    protected BatchNormBase(int numFeatures, double eps, double? momentum, bool affine, bool trackRunningStats, DType dtype)
    {
        if (numFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(numFeatures), numFeatures, $"{GetType().Name}: numFeatures must be positive.");
        if (eps <= 0 || !double.IsFinite(eps)) throw new ArgumentOutOfRangeException(nameof(eps), eps, $"{GetType().Name}: eps must be positive.");
        if (momentum is double m && (m < 0 || m > 1)) throw new ArgumentOutOfRangeException(nameof(momentum), m, $"{GetType().Name}: momentum must be in [0, 1].");
        NumFeatures = numFeatures;
        Eps = eps;
        Momentum = momentum;
        Affine = affine;
        TrackRunningStats = trackRunningStats;
        if (affine)
        {
            Weight = new Parameter(Tensor.Ones([numFeatures], dtype));
            Bias = new Parameter(Tensor.Zeros([numFeatures], dtype));
        }
        if (trackRunningStats)
        {
            _runningMean = Tensor.Zeros([numFeatures], dtype);
            _runningVar = Tensor.Ones([numFeatures], dtype);
            _numBatchesTracked = Tensor.Zeros([], DType.Int64);
            RegisterBuffer("running_mean", () => _runningMean, t => _runningMean = t);
            RegisterBuffer("running_var", () => _runningVar, t => _runningVar = t);
            RegisterBuffer("num_batches_tracked", () => _numBatchesTracked, t => _numBatchesTracked = t);
        }
    }

    /// <summary>Per-channel scale [C] (null without affine).</summary>
    public Parameter? Weight { get; private set; }

    /// <summary>Per-channel shift [C] (null without affine).</summary>
    public Parameter? Bias { get; private set; }

    /// <summary>Running mean [C] (null without trackRunningStats).</summary>
    public Tensor? RunningMean => _runningMean;

    /// <summary>Running (unbiased) variance [C] (null without trackRunningStats).</summary>
    public Tensor? RunningVar => _runningVar;

    /// <summary>Training batches seen (an int64 scalar; null without trackRunningStats).</summary>
    public Tensor? NumBatchesTracked => _numBatchesTracked;

    /// <summary>Channels.</summary>
    public int NumFeatures { get; }

    /// <summary>Added to the variance.</summary>
    public double Eps { get; }

    /// <summary>Weight of each batch in the running statistics (null: cumulative average).</summary>
    public double? Momentum { get; }

    /// <summary>Whether the layer has a learned scale and shift.</summary>
    public bool Affine { get; }

    /// <summary>Whether running statistics are kept.</summary>
    public bool TrackRunningStats { get; }

    /// <summary>
    /// When set (data-parallel training sets it), training normalizes with the statistics of the
    /// batch over all ranks (<see cref="Functional.SyncBatchNorm"/>, like torch.nn.SyncBatchNorm);
    /// null: this process's batch only.
    /// </summary>
    public BatchNormSync? Sync { get; set; }

    /// <summary>Checks the input's rank (1d: [N, C] or [N, C, L]; 2d: [N, C, H, W]).</summary>
    protected abstract void CheckInput(Tensor input);

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Forward(input, relu: false);

    /// <summary>
    /// The layer, and with <paramref name="relu"/> the ReLU after it as one fused op
    /// (<see cref="Functional.BatchNormRelu"/>; <see cref="Sequential"/> uses it for a BatchNorm module followed by a Relu module),
    /// and with <paramref name="pool"/> also the max pooling after that, with windows that tile the input
    /// (<see cref="Functional.BatchNormReluMaxPool2d"/>).
    /// </summary>
    internal Tensor Forward(Tensor input, bool relu, (int H, int W)? pool = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckInput(input);
        if (input.Size(1) != NumFeatures)
            throw new ShapeException($"{GetType().Name}: expected {NumFeatures} channels (dimension 1), got an input {input.Shape}.");
        double factor = Momentum ?? 0;
        bool useBatchStats = Training || _runningMean is null;
        if (Training && _numBatchesTracked is not null)
        {
            long tracked = (long)_numBatchesTracked.ItemDouble() + 1;
            using (Tensor.NoGrad()) _numBatchesTracked.Fill_(tracked);
            if (Momentum is null) factor = 1.0 / tracked;
        }
        if (Training && Sync is not null)
        {
            var synced = Functional.SyncBatchNorm(input, Sync, _runningMean, _runningVar, Weight, Bias, factor, Eps);
            if (relu) synced = synced.Relu();
            return pool is { } k ? Functional.MaxPool2d(synced, k) : synced;
        }
        if (relu && pool is { } kernel)
            return Functional.BatchNormReluMaxPool2d(input, _runningMean, _runningVar, Weight, Bias, useBatchStats, factor, Eps, kernel);
        return relu
            ? Functional.BatchNormRelu(input, _runningMean, _runningVar, Weight, Bias, useBatchStats, factor, Eps)
            : Functional.BatchNorm(input, _runningMean, _runningVar, Weight, Bias, useBatchStats, factor, Eps);
    }

    /// <inheritdoc/>
    protected override string ExtraRepr() =>
        $"{NumFeatures}, eps={Eps}, momentum={Momentum?.ToString() ?? "None"}, affine={Affine}, track_running_stats={TrackRunningStats}";
}

/// <summary>Batch normalization of [N, C] or [N, C, L] inputs (torch.nn.BatchNorm1d).</summary>
public sealed class BatchNorm1d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true,
    DType dtype = DType.Float32) : BatchNormBase(numFeatures, eps, momentum, affine, trackRunningStats, dtype)
{
    /// <inheritdoc/>
    protected override void CheckInput(Tensor input)
    {
        if (input.Rank is not (2 or 3)) throw new ShapeException($"BatchNorm1d: expected a 2-D [N, C] or 3-D [N, C, L] input, got {input.Shape}.");
    }
}

/// <summary>Batch normalization of [N, C, H, W] inputs (torch.nn.BatchNorm2d).</summary>
public sealed class BatchNorm2d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true,
    DType dtype = DType.Float32) : BatchNormBase(numFeatures, eps, momentum, affine, trackRunningStats, dtype)
{
    /// <inheritdoc/>
    protected override void CheckInput(Tensor input)
    {
        if (input.Rank != 4) throw new ShapeException($"BatchNorm2d: expected a 4-D input [N, C, H, W], got {input.Shape}.");
    }
}
