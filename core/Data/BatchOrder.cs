using System.Buffers.Binary;
using System.Security.Cryptography;
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

    /// <summary>
    /// A permutation of 0..count-1 that only the holder of <paramref name="key"/> can compute (Fisher-Yates over
    /// HMAC-SHA256(key, counter) blocks, unbiased by rejection). The hospitals' orders use it so the server, which knows
    /// every seed in the manifest, cannot tell which sample is where (core/Privacy/OrderSecret).
    /// </summary>
    public static int[] Shuffle(int count, ReadOnlySpan<byte> key)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (key.Length < 16) throw new ArgumentException("a shuffle key has at least 128 bits", nameof(key));
        var order = new int[count];
        for (var i = 0; i < count; i++) order[i] = i;
        var stream = new KeyedStream(key.ToArray());
        for (var i = count - 1; i > 0; i--)
        {
            var bound = (ulong)(i + 1);
            // Reject the top partial range so every j is equally likely.
            var limit = ulong.MaxValue - ulong.MaxValue % bound;
            ulong r;
            do r = stream.Next(); while (r >= limit);
            var j = (int)(r % bound);
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

    // 64-bit words of HMAC-SHA256(key, block counter): a keyed pseudorandom stream.
    private sealed class KeyedStream(byte[] key)
    {
        private readonly byte[] counter = new byte[8];
        private readonly byte[] block = new byte[32];
        private ulong blockIndex;
        private int used = 4;

        public ulong Next()
        {
            if (used == 4)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(counter, blockIndex++);
                HMACSHA256.HashData(key, counter, block);
                used = 0;
            }
            return BinaryPrimitives.ReadUInt64LittleEndian(block.AsSpan(8 * used++));
        }
    }
}
