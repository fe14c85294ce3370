namespace Backprop.Data;

public sealed partial class DataLoader
{
    [ThreadStatic] private static int t_buildingEpoch;

    /// <summary>
    /// The epoch of the batch a <see cref="DataLoader"/> is building on the calling thread (0 outside
    /// one), for datasets whose samples vary by epoch, such as the random augmentations of
    /// <see cref="AugmentedDataset"/>. It is set on whichever thread builds the batch, the loader's
    /// background thread when it prefetches, so such a dataset sees the same epoch either way.
    /// </summary>
    public static int BuildingEpoch => t_buildingEpoch;

    /// <summary><paramref name="dataset"/>.GetBatch(<paramref name="indices"/>) with <see cref="BuildingEpoch"/> set to <paramref name="epoch"/>.</summary>
    internal static Batch BuildBatch(Dataset dataset, ReadOnlySpan<int> indices, int epoch)
    {
        int saved = t_buildingEpoch;
        t_buildingEpoch = epoch;
        try { return dataset.GetBatch(indices); }
        finally { t_buildingEpoch = saved; }
    }
}
