namespace SplitFunctions.Core.Data;

/// <summary>
/// A binary image task with a learnable signal, for machines without real data: every image is a smooth random
/// background with noise; class 1 images also hold a blurred bright blob or ring at a random position.
/// Pixels lie in [0, 1] like scaled uint8 images.
/// </summary>
public static class SyntheticImages
{
    /// <summary>Generates <paramref name="count"/> grey images of height×width; about <paramref name="positiveFraction"/> are class 1.</summary>
    public static ImageDataset Generate(int count, int height, int width, long seed, double positiveFraction = 0.5)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 8);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 8);
        if (positiveFraction is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(positiveFraction));

        var random = new SeededRandom(seed);
        var plane = height * width;
        var images = new float[(long)count * plane];
        var labels = new float[count];
        var size = Math.Min(height, width);
        for (var n = 0; n < count; n++)
        {
            var image = images.AsSpan(n * plane, plane);
            AddBackground(image, height, width, random);
            var positive = random.NextDouble() < positiveFraction;
            labels[n] = positive ? 1 : 0;
            if (positive)
            {
                // The lesion: a blob or a ring, radius 8-18% of the image, kept inside the frame.
                var radius = size * (0.08 + 0.10 * random.NextDouble());
                var cy = radius + random.NextDouble() * (height - 2 * radius);
                var cx = radius + random.NextDouble() * (width - 2 * radius);
                var ring = random.NextDouble() < 0.5;
                AddLesion(image, height, width, cy, cx, radius, ring, 0.35 + 0.15 * random.NextDouble());
            }
            for (var i = 0; i < image.Length; i++)
                image[i] = Math.Clamp(image[i] + (float)(0.05 * random.NextGaussian()), 0f, 1f);
        }
        return new ImageDataset(images, count, 1, height, width, labels);
    }

    // A tilted brightness gradient plus one broad dim bump, so brightness alone does not give the class away.
    private static void AddBackground(Span<float> image, int height, int width, SeededRandom random)
    {
        var level = 0.25 + 0.2 * random.NextDouble();
        var gy = (random.NextDouble() - 0.5) * 0.2;
        var gx = (random.NextDouble() - 0.5) * 0.2;
        var by = random.NextDouble() * height;
        var bx = random.NextDouble() * width;
        var bs = Math.Min(height, width) * (0.3 + 0.2 * random.NextDouble());
        var ba = 0.1 * random.NextDouble();
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
            {
                var d2 = ((y - by) * (y - by) + (x - bx) * (x - bx)) / (2 * bs * bs);
                image[y * width + x] = (float)(level + gy * (y / (double)height - 0.5) + gx * (x / (double)width - 0.5) + ba * Math.Exp(-d2));
            }
    }

    private static void AddLesion(Span<float> image, int height, int width, double cy, double cx, double radius, bool ring, double amplitude)
    {
        var sigma = ring ? radius * 0.25 : radius * 0.6;
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
            {
                var r = Math.Sqrt((y - cy) * (y - cy) + (x - cx) * (x - cx));
                var d = ring ? r - radius : r;
                image[y * width + x] += (float)(amplitude * Math.Exp(-d * d / (2 * sigma * sigma)));
            }
    }
}
