using SplitFunctions.Core.Data;

namespace SplitFunctions.Tests.Data;

/// <summary>Layouts, scaling, normalisation, and bilinear resizing checked against hand-computed PyTorch (align_corners=False) values.</summary>
public sealed class ImagePreprocessorTests
{
    [Fact]
    public void Upscale2x2To4x4_MatchesHandComputedValues()
    {
        // Source index = (dst + 0.5) * 0.5 - 0.5, clamped: 0, 0.25, 0.75, 1(.25 clamped to the edge) on each axis,
        // and the image is the plane 2y + x, so each output is 2 * ysrc + xsrc.
        var result = BilinearResize.Resize([0, 1, 2, 3], planes: 1, height: 2, width: 2, outHeight: 4, outWidth: 4);
        result.Should().Equal(
            0.0f, 0.25f, 0.75f, 1.0f,
            0.5f, 0.75f, 1.25f, 1.5f,
            1.5f, 1.75f, 2.25f, 2.5f,
            2.0f, 2.25f, 2.75f, 3.0f);
    }

    [Fact]
    public void Downscale4x4To2x2_SamplesBetweenPixels()
    {
        // Source index = (dst + 0.5) * 2 - 0.5 = 0.5, 2.5; the image is 4y + x.
        var source = Enumerable.Range(0, 16).Select(i => (float)i).ToArray();
        BilinearResize.Resize(source, 1, 4, 4, 2, 2).Should().Equal(2.5f, 4.5f, 10.5f, 12.5f);
    }

    [Fact]
    public void NonIntegerRatio_3To2()
    {
        // Scale 1.5: source index 0.25 and 1.75.
        BilinearResize.Resize([0, 10, 20], 1, 1, 3, 1, 2).Should().Equal(2.5f, 17.5f);
    }

    [Fact]
    public void EachPlaneIsResizedOnItsOwn()
    {
        var result = BilinearResize.Resize([0, 1, 2, 3, 10, 10, 10, 10], planes: 2, 2, 2, 4, 4);
        result.Skip(16).Should().AllSatisfy(v => v.Should().Be(10f));
    }

    [Fact]
    public void Uint8_IsScaledToUnitRange_WithoutNormalisation()
    {
        var images = NpyArray.FromBytes([0, 255, 51, 102], 1, 2, 2);
        var prep = new ImagePreprocessor(new ImagePreprocessingOptions(2, 2) { Normalize = false });
        var data = prep.Prepare(images, NpyArray.FromInt64s([1], 1));
        data.Images.Should().Equal(0f, 1f, 0.2f, 0.4f);
        data.ImageShape.Should().Equal(1, 2, 2);
        data.Labels.Should().Equal(1f);
    }

    [Fact]
    public void Nhwc_BecomesNchw()
    {
        // One 2x1 image with 3 channels stored pixel by pixel: (r0 g0 b0) (r1 g1 b1); axis 1 (2) cannot be channels.
        var images = NpyArray.FromFloats([1, 2, 3, 4, 5, 6], 1, 2, 1, 3);
        var prep = new ImagePreprocessor(new ImagePreprocessingOptions(2, 1) { Normalize = false });
        var data = prep.Prepare(images, NpyArray.FromFloats([0], 1));
        data.Channels.Should().Be(3);
        data.Images.Should().Equal(1, 4, 2, 5, 3, 6);
    }

    [Fact]
    public void Nchw_IsKept()
    {
        var images = NpyArray.FromFloats([1, 2, 3, 4, 5, 6, 7, 8], 2, 1, 2, 2);
        var prep = new ImagePreprocessor(new ImagePreprocessingOptions(2, 2) { Normalize = false });
        var data = prep.Prepare(images, NpyArray.FromFloats([0, 1], 2, 1));
        data.Count.Should().Be(2);
        data.Image(1).ToArray().Should().Equal(5, 6, 7, 8);
    }

    [Fact]
    public void Normalisation_UsesGivenStatistics()
    {
        var images = NpyArray.FromFloats([1, 3, 5, 7], 1, 2, 2);
        var given = new ChannelStatistics([2f], [2f]);
        var prep = new ImagePreprocessor(new ImagePreprocessingOptions(2, 2) { Statistics = given });
        prep.Prepare(images, NpyArray.FromFloats([0], 1)).Images.Should().Equal(-0.5f, 0.5f, 1.5f, 2.5f);
    }

    [Fact]
    public void Normalisation_ComputesLocalStatistics()
    {
        var images = NpyArray.FromFloats([1, 3, 5, 7], 1, 2, 2);
        var prep = new ImagePreprocessor(new ImagePreprocessingOptions(2, 2));
        var data = prep.Prepare(images, NpyArray.FromFloats([0], 1));
        prep.Statistics!.Mean.Should().Equal(4f);
        prep.Statistics.Std[0].Should().BeApproximately(MathF.Sqrt(5f), 1e-6f);
        data.Images.Sum().Should().BeApproximately(0f, 1e-5f);
    }

    [Fact]
    public void BadShapes_AreNamed()
    {
        var prep = new ImagePreprocessor(new ImagePreprocessingOptions(4, 4));
        var rank2 = () => prep.Prepare(NpyArray.FromFloats(new float[6], 2, 3), NpyArray.FromFloats([0, 0], 2), "x.npz:train");
        rank2.Should().Throw<DataFormatException>().WithMessage("x.npz:train: cannot tell the image layout of shape (2, 3)*");
        var labels = () => prep.Prepare(NpyArray.FromFloats(new float[8], 2, 2, 2), NpyArray.FromFloats([0, 0, 0], 3), "x.npz:train");
        labels.Should().Throw<DataFormatException>().WithMessage("*labels of shape (3) do not match 2 images*");
    }

    [Fact]
    public void Subset_CopiesImagesAndLabelsInOrder()
    {
        var data = new ImageDataset([1, 1, 2, 2, 3, 3], 3, 1, 1, 2, [10, 20, 30]);
        var subset = data.Subset([2, 0]);
        subset.Images.Should().Equal(3, 3, 1, 1);
        subset.Labels.Should().Equal(30, 10);
    }
}
