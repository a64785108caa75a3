using SplitFunctions.Core.Data;
using static SplitFunctions.Tests.TestImages;

namespace SplitFunctions.Tests.Data;

[CollectionDefinition(nameof(DecodeBudgetTests), DisableParallelization = true)]
public sealed class DecodeBudgetCollection;

/// <summary>
/// Parallel decoding is bounded by pixels, not by the processor count: at most two of the largest images at once. Alone in its
/// collection, since every other image test takes shares of the same process-wide budget.
/// </summary>
[Collection(nameof(DecodeBudgetTests))]
public sealed class DecodeBudgetTests
{
    [Fact]
    public async Task Parallel_decoding_holds_at_most_two_of_the_largest_images_at_once()
    {
        // Two shares of the largest size fill the budget: a third waits until one is given back; small images pass beside them.
        using var first = DecodeBudget.Take(ImageFiles.MaxPixels);
        var second = DecodeBudget.Take(ImageFiles.MaxPixels);
        var third = Task.Run(() => DecodeBudget.Take(ImageFiles.MaxPixels));
        await Task.Delay(200);
        third.IsCompleted.Should().BeFalse("the budget is full");
        second.Dispose();
        using (await third.WaitAsync(TimeSpan.FromSeconds(10))) DecodeBudget.InUse.Should().Be(DecodeBudget.Pixels);
        using (DecodeBudget.Take(512 * 512)) DecodeBudget.InUse.Should().Be(ImageFiles.MaxPixels + (512 * 512));

        using var dir = new TempDirectory();
        File.WriteAllBytes(dir.File("wide.png"), Png(300, 2, PngKind.Grey, 8, [.. Enumerable.Repeat(9, 600)]));
        var (image, planes) = ImageFiles.ReadPrepared(dir.File("wide.png"), null, 1, 4, 4);
        (image.Width, image.Height, image.Pixels.Length).Should().Be((300, 2, 0));
        planes.Should().HaveCount(16);
        DecodeBudget.InUse.Should().Be(ImageFiles.MaxPixels, "the share was given back");
    }
}
