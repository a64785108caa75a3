using SplitFunctions.Core.Baselines;

namespace SplitFunctions.Core.Data;

/// <summary>
/// Seeded, platform-independent sample orders: the same (seed, epoch) gives the same order on every machine,
/// so an interrupted run that resumes at an epoch boundary continues exactly as an uninterrupted one.
/// </summary>
public static class BatchOrder
{
    /// <summary>A permutation of 0..count-1 for one epoch (Fisher-Yates over SplitMix64).</summary>
    public static int[] Shuffle(int count, ulong seed, int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var order = new int[count];
        for (var i = 0; i < count; i++) order[i] = i;
        var state = seed ^ (0x9E3779B97F4A7C15UL * (ulong)(epoch + 1));
        for (var i = count - 1; i > 0; i--)
        {
            var j = (int)(Next(ref state) % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>Batches of at most <paramref name="batchSize"/> consecutive entries of <paramref name="order"/>.</summary>
    public static IEnumerable<ArraySegment<int>> Batches(int[] order, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(order);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        for (var start = 0; start < order.Length; start += batchSize)
        {
            yield return new ArraySegment<int>(order, start, Math.Min(batchSize, order.Length - start));
        }
    }

    /// <summary>SplitMix64: small, fast and well distributed; fine for shuffling and noise seeds.</summary>
    public static ulong Next(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
