namespace SplitFunctions.Core.Data;

/// <summary>
/// Pixels being decoded at once, across threads: at most two of the largest images (<see cref="ImageFiles.MaxPixels"/> each, about
/// 1.4 GB of buffers at the peak for a 16-bit RGBA one made RGB), whatever the processor count. A taker waits while others hold the rest.
/// </summary>
public static class DecodeBudget
{
    /// <summary>The budget in pixels.</summary>
    public const long Pixels = 2 * ImageFiles.MaxPixels;

    // An object, not a Lock: waiting for a share needs Monitor.Wait and PulseAll.
    private static readonly object Gate = new();
    private static long inUse;

    /// <summary>Pixels held now (tests).</summary>
    public static long InUse
    {
        get
        {
            lock (Gate) return inUse;
        }
    }

    /// <summary>Takes <paramref name="pixels"/> (at most the whole budget), waiting until they are free; dispose to give them back.</summary>
    public static IDisposable Take(long pixels)
    {
        pixels = Math.Clamp(pixels, 0, Pixels);
        lock (Gate)
        {
            // One taker always proceeds when nothing is held, so a single image never waits forever.
            while (inUse > 0 && inUse + pixels > Pixels) Monitor.Wait(Gate);
            inUse += pixels;
        }
        return new Share(pixels);
    }

    private sealed class Share(long pixels) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 1) return;
            lock (Gate)
            {
                inUse -= pixels;
                Monitor.PulseAll(Gate);
            }
        }
    }
}
