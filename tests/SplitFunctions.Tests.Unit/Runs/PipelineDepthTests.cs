using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Tests.Runs;

/// <summary>The manifest's pipelineDepth: its range, vanilla only, and no attacker-aware training beside it.</summary>
public sealed class PipelineDepthTests
{
    private static RunManifest Vanilla(int? depth) =>
        RunManifest.ForModel("run-pipe", ModelCatalog.PneumoniaCnn, TrainingMode.Vanilla, ["hospital-a"], seed: 1) with { PipelineDepth = depth };

    [Theory]
    [InlineData(null)]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(RunManifest.MaxPipelineDepth)]
    public void Depths_in_range_are_accepted_in_vanilla_mode(int? depth) => Vanilla(depth).Validate();

    [Fact]
    public void A_depth_out_of_range_or_outside_vanilla_is_refused_naming_it()
    {
        var act = Vanilla(RunManifest.MaxPipelineDepth + 1).Validate;
        act.Should().Throw<RunManifestException>().WithMessage("*pipelineDepth 17 is out of range*");
        act = (Vanilla(3) with { Mode = TrainingMode.Temporal }).Validate;
        act.Should().Throw<RunManifestException>().WithMessage("*applies to vanilla runs only*");
    }

    [Fact]
    public void Attacker_aware_training_is_refused_with_pipelining_whose_stashed_backward_has_no_decoder_penalty()
    {
        var pipelined = Vanilla(3) with { Privacy = new PrivacySettings { AttackerAwareWeight = 1 } };
        var act = pipelined.Validate;
        act.Should().Throw<RunManifestException>().WithMessage("*does not combine with privacy.attackerAwareWeight*");
        (pipelined with { PipelineDepth = 1 }).Validate();
    }
}
