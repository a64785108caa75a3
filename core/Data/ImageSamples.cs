namespace SplitFunctions.Core.Data;

/// <summary>
/// Image files as network input, decoded when a batch asks for them: converted, resized, normalised with the
/// hospital's training statistics, and kept in a bounded least-recently-used cache so memory stays flat whatever the
/// number of images (an epoch larger than the cache decodes again).
/// </summary>
public sealed class ImageSamples : ISampleSource
{
    private readonly string[] files;
    private readonly int channels, height, width;
    private readonly ChannelStatistics statistics;
    private readonly DicomWindow? window;
    private readonly int capacity;
    private readonly Dictionary<int, LinkedListNode<(int Index, float[] Values)>> cached = [];
    private readonly LinkedList<(int Index, float[] Values)> recency = new();
    private readonly Lock gate = new();

    public ImageSamples(IReadOnlyList<string> files, int channels, int height, int width, ChannelStatistics statistics, DicomWindow? window,
        long cacheBytes)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(statistics);
        this.files = [.. files];
        (this.channels, this.height, this.width) = (channels, height, width);
        this.statistics = statistics;
        this.window = window;
        SampleSize = channels * height * width;
        capacity = (int)Math.Clamp(cacheBytes / (SampleSize * (long)sizeof(float)), 0, int.MaxValue);
    }

    public int Count => files.Length;

    public int SampleSize { get; }

    /// <summary>Images decoded so far (cache misses), for tests and the benchmark.</summary>
    public long Decoded { get; private set; }

    /// <summary>Most images the cache holds.</summary>
    public int Capacity => capacity;

    public void Read(int index, Span<float> destination)
    {
        lock (gate)
        {
            if (cached.TryGetValue(index, out var node))
            {
                recency.Remove(node);
                recency.AddFirst(node);
                node.Value.Values.CopyTo(destination);
                return;
            }
        }
        var values = Prepare(index);
        values.CopyTo(destination);
        lock (gate)
        {
            Decoded++;
            if (capacity == 0 || cached.ContainsKey(index)) return;
            if (cached.Count >= capacity)
            {
                var oldest = recency.Last!;
                recency.RemoveLast();
                cached.Remove(oldest.Value.Index);
            }
            cached[index] = recency.AddFirst((index, values));
        }
    }

    private float[] Prepare(int index)
    {
        float[] values;
        try
        {
            values = ImageFiles.ReadPrepared(files[index], window, channels, height, width).Planes;
        }
        catch (UnusableImageException e)
        {
            // Every file was decoded once when the data was loaded; failing now means it changed or vanished since.
            throw new DataFormatException(files[index], $"could be read when training started but not now ({e.Reason}). Leave the image folder "
                + $"unchanged while the agent trains, then run again.", e);
        }
        var plane = height * width;
        for (var c = 0; c < channels; c++)
        {
            var mean = statistics.Mean[c];
            var inverse = 1f / Math.Max(statistics.Std[c], ChannelStatistics.MinStd);
            foreach (ref var v in values.AsSpan(c * plane, plane)) v = (v - mean) * inverse;
        }
        return values;
    }
}
