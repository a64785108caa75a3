using SplitFunctions.Core.Data;

namespace SplitFunctions.Tests.Data;

/// <summary>The fallback dataset: seeded, any size, pixels in [0, 1], and a signal a detector can find.</summary>
public sealed class SyntheticImagesTests
{
    [Fact]
    public void SameSeed_SameImages()
    {
        var a = SyntheticImages.Generate(20, 28, 28, seed: 9);
        var b = SyntheticImages.Generate(20, 28, 28, seed: 9);
        var c = SyntheticImages.Generate(20, 28, 28, seed: 10);
        a.Images.Should().Equal(b.Images);
        a.Labels.Should().Equal(b.Labels);
        a.Images.Should().NotEqual(c.Images);
    }

    [Theory]
    [InlineData(64, 64)]
    [InlineData(28, 40)]
    public void AnySize_PixelsInUnitRange_ClassesBalanced(int height, int width)
    {
        var data = SyntheticImages.Generate(400, height, width, seed: 1);
        data.ImageShape.Should().Equal(1, height, width);
        data.Images.Should().OnlyContain(v => v >= 0f && v <= 1f);
        data.Labels.Count(l => l == 1f).Should().BeInRange(160, 240);
    }

    [Fact]
    public void Signal_IsFoundByASimpleLocalContrastDetector()
    {
        // The brightest 3x3 neighbourhood above the image median: large where a lesion is.
        var data = SyntheticImages.Generate(400, 32, 32, seed: 2);
        var scores = Enumerable.Range(0, data.Count).Select(i => PeakContrast(data.Image(i).ToArray(), 32, 32)).ToArray();
        var positives = scores.Where((_, i) => data.Labels[i] == 1).ToArray();
        var negatives = scores.Where((_, i) => data.Labels[i] == 0).ToArray();
        var concordant = positives.Sum(p => negatives.Count(n => p > n));
        var auc = concordant / (double)(positives.Length * negatives.Length);
        auc.Should().BeGreaterThan(0.9);
    }

    private static double PeakContrast(float[] image, int h, int w)
    {
        var median = image.Order().ElementAt(image.Length / 2);
        var best = double.MinValue;
        for (var y = 1; y < h - 1; y++)
            for (var x = 1; x < w - 1; x++)
            {
                double sum = 0;
                for (var dy = -1; dy <= 1; dy++)
                    for (var dx = -1; dx <= 1; dx++) sum += image[(y + dy) * w + x + dx];
                best = Math.Max(best, sum / 9 - median);
            }
        return best;
    }
}
