namespace SplitFunctions.Functions.Runs;

/// <summary>
/// Arrays of exactly a frame's length that decoded frames are written into and that a step hands back once it has copied
/// them into its tensors: a vanilla run's frames have the same few lengths step after step, and a fresh multi-MiB array per
/// frame is a large-object allocation whose first touch page-faults (measured: about four times the cost of decoding into a
/// warm array) and whose garbage only gen-2 collections reclaim. Bounded in count and bytes; an array never handed back is
/// simply collected. Values are not wiped on return: they are what the server was sent to compute on, kept no longer than
/// the fresh arrays they replace (the plaintext frame bytes are wiped where they are opened).
/// </summary>
public sealed class DecodedValuesPool(int maxArrays = DecodedValuesPool.DefaultMaxArrays, long maxBytes = DecodedValuesPool.DefaultMaxBytes)
{
    /// <summary>Arrays kept at most: a frame's activations and labels for each frame in flight (prefetches included).</summary>
    public const int DefaultMaxArrays = 12;

    /// <summary>Bytes kept at most, whatever the count.</summary>
    public const long DefaultMaxBytes = 256L << 20;

    private readonly Dictionary<int, Stack<float[]>> free = [];
    private int count;
    private long bytes;

    /// <summary>An array of exactly <paramref name="length"/> values, its contents undefined.</summary>
    public float[] Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        lock (free)
        {
            if (free.TryGetValue(length, out var stack) && stack.TryPop(out var array))
            {
                count--;
                bytes -= 4L * length;
                return array;
            }
        }
        return GC.AllocateUninitializedArray<float>(length);
    }

    /// <summary>
    /// Hands back arrays no one reads any more (a step's, after its tensors were built from them); those over the bounds are
    /// left to the collector. Handing back an array still in use would let another frame overwrite it.
    /// </summary>
    public void Return(params ReadOnlySpan<float[]> arrays)
    {
        lock (free)
        {
            foreach (var array in arrays)
            {
                if (array is null || array.Length == 0 || 4L * array.Length > maxBytes) continue;
                if (!free.TryGetValue(array.Length, out var stack)) free[array.Length] = stack = new Stack<float[]>();
                if (stack.Contains(array)) continue;
                // Lengths of frames no longer read (another run, another batch size) make room for the ones that are.
                foreach (var length in free.Keys.Where(l => l != array.Length).ToList())
                {
                    if (count < maxArrays && bytes + 4L * array.Length <= maxBytes) break;
                    count -= free[length].Count;
                    bytes -= 4L * length * free[length].Count;
                    free.Remove(length);
                }
                if (count >= maxArrays || bytes + 4L * array.Length > maxBytes) continue;
                stack.Push(array);
                count++;
                bytes += 4L * array.Length;
            }
        }
    }

    /// <summary>Arrays kept now.</summary>
    public int Count
    {
        get
        {
            lock (free) return count;
        }
    }
}
