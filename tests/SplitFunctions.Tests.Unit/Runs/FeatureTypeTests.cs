using System.Text;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Tests.Runs;

/// <summary>The manifest's featureType: every wire type, int8 included, is written, read back and accepted; other element types are refused.</summary>
public sealed class FeatureTypeTests
{
    [Theory]
    [InlineData(ElementType.Float32)]
    [InlineData(ElementType.Float16)]
    [InlineData(ElementType.BFloat16)]
    [InlineData(ElementType.QInt8)]
    public void Each_wire_type_round_trips_through_the_manifest(ElementType type)
    {
        var manifest = RunManifest.ForModel("run-int8", ModelCatalog.PneumoniaCnnNarrow, TrainingMode.Vanilla, ["hospital-a"],
            seed: 1) with
        { FeatureType = type };
        var json = manifest.ToJson();
        Encoding.UTF8.GetString(json).Should().Contain($"\"featureType\": \"{type}\"");
        var parsed = RunManifest.Parse(json);
        parsed.FeatureType.Should().Be(type);
        parsed.Validate();
    }

    [Theory]
    [InlineData(ElementType.Int64)]
    [InlineData(ElementType.UInt8)]
    public void An_element_type_that_cannot_travel_is_refused_naming_the_ones_that_can(ElementType type)
    {
        var manifest = RunManifest.ForModel("run-int8", ModelCatalog.PneumoniaCnn, TrainingMode.Vanilla, ["hospital-a"], seed: 1) with { FeatureType = type };
        var act = manifest.Validate;
        act.Should().Throw<RunManifestException>().WithMessage($"*featureType {type} cannot travel on the wire: use Float32, Float16, BFloat16 or QInt8*");
    }
}
