namespace Backprop.Data;

public sealed partial class DataLoader
{
    private int _shardRank, _shardCount = 1;

    /// <summary>This loader's part of each batch (rank, of how many parts); (0, 1) when not sharded.</summary>
    public (int Rank, int Count) Shard => (_shardRank, _shardCount);

    /// <summary>
    /// Makes the loader hand out only part <paramref name="rank"/> of <paramref name="count"/> of each
    /// batch: the batch of <see cref="BatchSize"/> samples (the global batch) is cut into
    /// <paramref name="count"/> contiguous parts of sizes differing by at most one, in rank order, so
    /// the parts of all ranks are disjoint and together are exactly the batch an unsharded loader with
    /// the same seed gives (data-parallel training: a distributed sampler). The position, the
    /// order and the saved state are those of the whole batches, so a checkpoint names the same
    /// samples whatever the number of parts. A part may be empty when a batch has fewer samples
    /// than parts (see <see cref="ShardLength"/>).
    /// </summary>
    public DataLoader SetShard(int rank, int count)
    {
        if (count < 1 || rank < 0 || rank >= count)
            throw new ArgumentOutOfRangeException(nameof(rank), $"DataLoader.SetShard: part {rank} of {count} does not exist; need 0 <= rank < count.");
        (_shardRank, _shardCount) = (rank, count);
        _orderEpoch = -1;
        _version++;
        return this;
    }

    /// <summary>The first index and length of part <paramref name="rank"/> of <paramref name="count"/> of a batch of <paramref name="length"/> samples.</summary>
    public static (int Start, int Length) ShardRange(int length, int rank, int count)
    {
        int start = (int)((long)length * rank / count), end = (int)((long)length * (rank + 1) / count);
        return (start, end - start);
    }

    /// <summary>The number of samples this loader's part of batch <paramref name="batchIndex"/> holds.</summary>
    public int ShardLength(int batchIndex)
    {
        if ((uint)batchIndex >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(batchIndex), batchIndex, $"DataLoader.ShardLength: batch {batchIndex} is out of range; an epoch has {Count} batches.");
        return ShardRange(Math.Min(BatchSize, Samples - batchIndex * BatchSize), _shardRank, _shardCount).Length;
    }

    private ReadOnlySpan<int> ShardOf(ReadOnlySpan<int> batch)
    {
        if (_shardCount == 1) return batch;
        var (start, length) = ShardRange(batch.Length, _shardRank, _shardCount);
        return batch.Slice(start, length);
    }
}

public sealed partial class DataLoader
{
    /// <summary>
    /// The index, within its global batch, of the first sample of the part of the batch this loader
    /// handed out last (0 when not sharded): with it, per-sample randomness (dropout masks from the
    /// global sample index, <see cref="NN.SampleMasks"/>) is the same whatever the number of parts.
    /// Valid after a batch was handed out.
    /// </summary>
    public int LastShardStart
    {
        get
        {
            if (_shardCount == 1 || Count == 0) return 0;
            int index = (_next == 0 ? Count : _next) - 1;
            return ShardRange(Math.Min(BatchSize, Samples - index * BatchSize), _shardRank, _shardCount).Start;
        }
    }
}
