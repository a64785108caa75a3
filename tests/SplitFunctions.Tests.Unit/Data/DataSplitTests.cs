using SplitFunctions.Core.Data;

namespace SplitFunctions.Tests.Data;

/// <summary>The paper's split protocol: sizes, disjointness, coverage and determinism.</summary>
public sealed class DataSplitTests
{
    [Fact]
    public void PaperProtocol_HoldsOut10And10_AndSplitsTheRest721()
    {
        var split = DataSplit.Create(1000, seed: 42);
        split.Validation.Should().HaveCount(100);
        split.Test.Should().HaveCount(100);
        split.Hospitals.Select(h => h.Length).Should().Equal(560, 160, 80);
    }

    [Fact]
    public void Parts_AreDisjoint_AndCoverEveryRow()
    {
        var split = DataSplit.Create(5232, seed: 7);
        var all = split.Validation.Concat(split.Test).Concat(split.Hospitals.SelectMany(h => h)).ToList();
        all.Should().HaveCount(5232).And.OnlyHaveUniqueItems();
        all.Order().Should().Equal(Enumerable.Range(0, 5232));
        split.Training.Should().HaveCount(5232 - 523 - 523);
    }

    [Fact]
    public void UnevenSizes_SumExactly()
    {
        var split = DataSplit.Create(103, seed: 1, hospitalWeights: [1, 1, 1]);
        (split.Validation.Length + split.Test.Length + split.Hospitals.Sum(h => h.Length)).Should().Be(103);
        split.Hospitals.Select(h => h.Length).Should().Equal(28, 28, 27);
    }

    [Fact]
    public void SameSeed_SameSplit_OtherSeed_OtherSplit()
    {
        var a = DataSplit.Create(500, seed: 3);
        var b = DataSplit.Create(500, seed: 3);
        var c = DataSplit.Create(500, seed: 4);
        a.Validation.Should().Equal(b.Validation);
        a.Hospitals[2].Should().Equal(b.Hospitals[2]);
        a.Validation.Should().NotEqual(c.Validation);
    }

    [Fact]
    public void FirstIndices_AreFixedForever()
    {
        // Pins the generator: hospitals on other machines and .NET versions must draw the same rows.
        SeededRandom.Permutation(10, 2024).Should().Equal(5, 3, 1, 9, 7, 4, 8, 2, 0, 6);
    }

    [Fact]
    public void Partitions_WithAdjacentOffsets_AreDisjoint_AndDeterministic()
    {
        var a = DataSplit.Partition(1000, 0.7, seed: 5);
        var b = DataSplit.Partition(1000, 0.2, seed: 5, offset: 0.7);
        var c = DataSplit.Partition(1000, 0.1, seed: 5, offset: 0.9);
        a.Should().HaveCount(700);
        b.Should().HaveCount(200);
        c.Should().HaveCount(100);
        a.Concat(b).Concat(c).Should().OnlyHaveUniqueItems().And.HaveCount(1000);
        DataSplit.Partition(1000, 0.7, seed: 5).Should().Equal(a);
        var bad = () => DataSplit.Partition(10, 0.5, seed: 1, offset: 0.6);
        bad.Should().Throw<ArgumentOutOfRangeException>();
    }
}
