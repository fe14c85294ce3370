using System.Text.Json.Nodes;

namespace Backprop.Optim;

/// <summary>
/// Runs schedules one after another, switching at the milestones: torch.optim.lr_scheduler.SequentialLR.
/// Warm-up then cosine decay:
/// <c>new SequentialLr(opt, [new LinearWarmup(opt, 100), new CosineAnnealingLr(opt, 900)], milestones: [100])</c>.
/// </summary>
/// <remarks>
/// At epoch e the schedule i with milestones[i−1] ≤ e &lt; milestones[i] runs at its own epoch
/// e − milestones[i−1], restarting from 0 at its milestone.
/// </remarks>
public sealed class SequentialLr : LrScheduler
{
    private readonly LrScheduler[] _schedulers;
    private readonly int[] _milestones;

    /// <summary>Chains <paramref name="schedulers"/> (all on <paramref name="optimizer"/>), switching at the epochs in <paramref name="milestones"/>.</summary>
    public SequentialLr(Optimizer optimizer, IReadOnlyList<LrScheduler> schedulers, IReadOnlyList<int> milestones) : base(optimizer)
    {
        ArgumentNullException.ThrowIfNull(schedulers);
        ArgumentNullException.ThrowIfNull(milestones);
        if (schedulers.Count == 0) throw new ArgumentException("SequentialLr: expected at least one schedule.", nameof(schedulers));
        for (int i = 0; i < schedulers.Count; i++)
        {
            if (schedulers[i] is null) throw new ArgumentException($"SequentialLr: schedule {i} is null.", nameof(schedulers));
            if (!ReferenceEquals(schedulers[i].Optimizer, optimizer))
                throw new ArgumentException($"SequentialLr: schedule {i} ({schedulers[i].GetType().Name}) belongs to a different optimizer; all schedules must share this one.", nameof(schedulers));
            if (schedulers[i] is SequentialLr)
                throw new ArgumentException($"SequentialLr: schedule {i} is itself a SequentialLr; flatten the chain instead.", nameof(schedulers));
        }
        if (milestones.Count != schedulers.Count - 1)
            throw new ArgumentException($"SequentialLr: {schedulers.Count} schedules need {schedulers.Count - 1} milestone(s), got {milestones.Count}.", nameof(milestones));
        for (int i = 0; i < milestones.Count; i++)
            if (milestones[i] < 1 || (i > 0 && milestones[i] <= milestones[i - 1]))
                throw new ArgumentException($"SequentialLr: milestones must be positive and strictly increasing, got [{string.Join(", ", milestones)}].", nameof(milestones));
        _schedulers = [.. schedulers];
        _milestones = [.. milestones];
        Initialize();
    }

    /// <summary>The chained schedules.</summary>
    public IReadOnlyList<LrScheduler> Schedulers => _schedulers;

    /// <summary>The epochs at which the next schedule takes over.</summary>
    public IReadOnlyList<int> Milestones => _milestones;

    private (int index, int local) Locate(int epoch)
    {
        int idx = 0;
        while (idx < _milestones.Length && _milestones[idx] <= epoch) idx++;
        return (idx, idx == 0 ? epoch : epoch - _milestones[idx - 1]);
    }

    /// <inheritdoc/>
    public override double LrAt(int epoch, double baseLr)
    {
        var (idx, local) = Locate(epoch);
        return _schedulers[idx].LrAt(local, baseLr);
    }

    private protected override void Apply()
    {
        var (idx, local) = Locate(LastEpoch);
        // The active schedule sets the groups itself, so its own LastEpoch and LastLrs stay truthful.
        _schedulers[idx].SetEpoch(local);
        SetLastLrs(_schedulers[idx].LastLrs);
    }

    /// <inheritdoc/>
    public override StateDict StateDict()
    {
        var sd = base.StateDict();
        sd.Meta["schedulers"] = new JsonArray([.. _schedulers.Select(s => (JsonNode)s.StateDict().Meta)]);
        return sd;
    }

    /// <inheritdoc/>
    public override void LoadStateDict(StateDict dict)
    {
        ArgumentNullException.ThrowIfNull(dict);
        if (dict.Meta["schedulers"] is not JsonArray subs || subs.Count != _schedulers.Length)
            throw new ArgumentException($"SequentialLr.LoadStateDict: the dict does not hold {_schedulers.Length} chained schedules.", nameof(dict));
        var parts = new StateDict[subs.Count];
        for (int i = 0; i < subs.Count; i++)
        {
            parts[i] = new StateDict();
            if (subs[i] is JsonObject o)
                foreach (var (k, v) in o) parts[i].Meta[k] = v?.DeepClone();
        }
        base.LoadStateDict(dict);
        for (int i = 0; i < parts.Length; i++) _schedulers[i].LoadStateDict(parts[i]);
    }
}
