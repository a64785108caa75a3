namespace SplitFunctions.Core.Data;

/// <summary>Per-channel mean and standard deviation of images, computed at the hospital and applied to every split.</summary>
public sealed record ChannelStatistics(float[] Mean, float[] Std)
{
    /// <summary>Below this a channel is treated as constant, so normalising does not divide by ~0.</summary>
    public const float MinStd = 1e-6f;

    /// <summary>Population mean and standard deviation per channel over all images.</summary>
    public static ChannelStatistics Compute(ImageDataset images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) throw new ArgumentException("cannot compute image statistics of an empty dataset", nameof(images));
        var plane = images.Height * images.Width;
        var mean = new float[images.Channels];
        var std = new float[images.Channels];
        for (var c = 0; c < images.Channels; c++)
        {
            // Double accumulators: millions of pixels summed in float lose the low digits.
            double sum = 0, sumSquares = 0;
            for (var n = 0; n < images.Count; n++)
            {
                foreach (var v in images.Images.AsSpan(((n * images.Channels) + c) * plane, plane))
                {
                    sum += v;
                    sumSquares += (double)v * v;
                }
            }
            var count = (double)images.Count * plane;
            var m = sum / count;
            mean[c] = (float)m;
            std[c] = (float)Math.Sqrt(Math.Max(0, sumSquares / count - m * m));
        }
        return new ChannelStatistics(mean, std);
    }

    /// <summary>(x - mean) / std per channel, in place.</summary>
    public void Apply(ImageDataset images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (Mean.Length != images.Channels || Std.Length != images.Channels)
            throw new ArgumentException($"statistics for {Mean.Length} channels cannot normalise images with {images.Channels}", nameof(images));
        var plane = images.Height * images.Width;
        for (var n = 0; n < images.Count; n++)
        {
            for (var c = 0; c < images.Channels; c++)
            {
                var m = Mean[c];
                var inv = 1f / Math.Max(Std[c], MinStd);
                foreach (ref var v in images.Images.AsSpan(((n * images.Channels) + c) * plane, plane)) v = (v - m) * inv;
            }
        }
    }
}
