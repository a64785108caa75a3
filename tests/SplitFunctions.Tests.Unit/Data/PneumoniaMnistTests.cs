using SplitFunctions.Core.Data;

namespace SplitFunctions.Tests.Data;

/// <summary>The real PneumoniaMNIST file in ../shared/data: shapes, counts, classes, and the model-sized preparation.</summary>
public sealed class PneumoniaMnistTests
{
    [Theory]
    [InlineData("train", 4708, 1214, 3494)]
    [InlineData("val", 524, 135, 389)]
    [InlineData("test", 624, 234, 390)]
    public void Splits_HaveTheDocumentedShapesAndClassCounts(string split, int count, int normal, int pneumonia)
    {
        using var npz = NpzReader.Open(SharedData.PneumoniaMnist);
        var images = npz.Read(split + "_images");
        var labels = npz.Read(split + "_labels");
        images.DType.Should().Be(NpyDType.UInt8);
        images.Shape.Should().Equal(count, 28, 28);
        labels.Shape.Should().Equal(count, 1);
        var classes = labels.ToInt64s();
        classes.Count(c => c == 0).Should().Be(normal);
        classes.Count(c => c == 1).Should().Be(pneumonia);
    }

    [Fact]
    public void Archive_ListsItsSplits()
    {
        ImageArchive.Splits(SharedData.PneumoniaMnist).Should().Equal("test", "train", "val");
    }

    [Fact]
    public void Preparation_ResizesTo64_AndNormalisesWithTrainingStatistics()
    {
        var preprocessor = new ImagePreprocessor(new ImagePreprocessingOptions(64, 64));
        var train = ImageArchive.LoadSplit(SharedData.PneumoniaMnist, "train", preprocessor);
        train.Count.Should().Be(4708);
        train.ImageShape.Should().Equal(1, 64, 64);
        train.Labels.Should().HaveCount(4708);
        var stats = preprocessor.Statistics!;
        stats.Mean[0].Should().BeInRange(0.2f, 0.8f, "uint8 pixels are scaled to [0, 1] before the mean is taken");
        ChannelStatistics.Compute(train).Mean[0].Should().BeApproximately(0f, 1e-3f);
        ChannelStatistics.Compute(train).Std[0].Should().BeApproximately(1f, 1e-3f);

        // Validation data is normalised with the training statistics, not its own.
        var val = ImageArchive.LoadSplit(SharedData.PneumoniaMnist, "val", preprocessor);
        preprocessor.Statistics.Should().BeSameAs(stats);
        val.Count.Should().Be(524);
    }
}
