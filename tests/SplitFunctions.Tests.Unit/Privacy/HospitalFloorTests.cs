using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Tests.Privacy;

/// <summary>
/// Issue 29, items 3 and 5 at the hospital: its floor refuses a manifest that protects less than it accepts, its budget
/// stops releases before epsilon would pass privacy.maxEpsilon, and its bound clips gradients a server could steer with.
/// </summary>
public sealed class HospitalFloorTests
{
    private static RunManifest Manifest(ModelDefinition model, TrainingMode mode = TrainingMode.Vanilla, PrivacySettings? privacy = null) =>
        RunManifest.ForModel("run-floor", model, mode, ["hospital-a"], 1) with { Privacy = privacy ?? new PrivacySettings(), Epochs = 4 };

    [Fact]
    public void The_recommended_floor_refuses_a_one_layer_cut_and_accepts_three_blocks()
    {
        PrivacyFloor.ClientDepth(Manifest(ModelCatalog.PneumoniaCnn)).Should().Be(1);
        PrivacyFloor.ClientDepth(Manifest(ModelCatalog.PneumoniaCnnCut3)).Should().Be(3);
        PrivacyFloor.Recommended.Violation(Manifest(ModelCatalog.PneumoniaCnn)).Should().Contain("privacy.floor.minClientLayers 2");
        PrivacyFloor.Recommended.Violation(Manifest(ModelCatalog.LdlMlp)).Should().Contain("minClientLayers");
        PrivacyFloor.Recommended.Violation(Manifest(ModelCatalog.PneumoniaCnnCut3)).Should().BeNull();
        PrivacyFloor.Open.Violation(Manifest(ModelCatalog.PneumoniaCnn)).Should().BeNull("the open floor accepts anything");
    }

    [Fact]
    public void Each_setting_of_the_floor_names_itself_when_a_manifest_is_below_it()
    {
        var cut3 = ModelCatalog.PneumoniaCnnCut3;
        var floor = PrivacyFloor.Recommended with { Modes = [TrainingMode.UShaped] };
        floor.Violation(Manifest(cut3)).Should().Contain("privacy.floor.modes");

        var aware = PrivacyFloor.Recommended with { MinAttackerAwareWeight = 1 };
        aware.Violation(Manifest(cut3)).Should().Contain("privacy.floor.minAttackerAwareWeight 1");
        aware.Violation(Manifest(cut3, privacy: new PrivacySettings { AttackerAwareWeight = 1 })).Should().BeNull();
        (PrivacyFloor.Recommended with { MinAttackerAwareWeight = -1 }).Problem().Should().Contain("minAttackerAwareWeight");
        FluentActions.Invoking(() => Manifest(cut3, privacy: new PrivacySettings { AttackerAwareWeight = double.NaN }).Validate())
            .Should().Throw<RunManifestException>().WithMessage("*privacy.attackerAwareWeight*");

        var noisy = PrivacyFloor.Recommended with { MinNoiseMultiplier = 1 };
        noisy.Violation(Manifest(cut3, privacy: new PrivacySettings { NoiseSigma = 3 })).Should().Contain("privacy.clipNorm is 0",
            "absolute noise states no guarantee, however large");
        noisy.Violation(Manifest(cut3, privacy: new PrivacySettings { NoiseSigma = 0.5, ClipNorm = 4 })).Should().Contain("minNoiseMultiplier 1");
        noisy.Violation(Manifest(cut3, privacy: new PrivacySettings { NoiseSigma = 1, ClipNorm = 4 })).Should().BeNull();

        var noPeek = PrivacyFloor.Recommended with { MinNoPeekAlpha = 0.5 };
        noPeek.Violation(Manifest(cut3)).Should().Contain("privacy.floor.minNoPeekAlpha 0.5");

        var labels = PrivacyFloor.Recommended with { RequireLabelDefence = true };
        labels.Violation(Manifest(cut3, TrainingMode.UShaped)).Should().Contain("requireLabelDefence");
        labels.Violation(Manifest(cut3, TrainingMode.UShaped) with
        {
            UShaped = new UShapedSettings { Defence = new GradientDefence { MaxNorm = true } },
        }).Should().BeNull();
    }

    [Fact]
    public void The_agent_refuses_a_manifest_below_its_floor_with_one_line_and_the_floor_exit_code()
    {
        var refuse = () => HospitalRun.RequireFloor(Config(new AgentPrivacySettings()), Manifest(ModelCatalog.PneumoniaCnn));
        refuse.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.PrivacyFloor && !e.Message.Contains('\n')
            && e.Message.Contains("minClientLayers") && e.Message.Contains("Nothing was sent"));
        ((int)ExitCode.PrivacyFloor).Should().Be(14);
        ((int)ExitCode.PrivacyBudget).Should().Be(15);
        var open = () => HospitalRun.RequireFloor(Config(new AgentPrivacySettings { Floor = PrivacyFloor.Open }), Manifest(ModelCatalog.PneumoniaCnn));
        open.Should().NotThrow();
    }

    [Fact]
    public void The_configuration_file_holds_the_floor_and_refuses_bad_values()
    {
        using var dir = new TempDirectory();
        var path = dir.File("agent.json");
        var floor = PrivacyFloor.Recommended with { MinNoiseMultiplier = 1 };
        AgentConfigurationFile.Save(path, Config(new AgentPrivacySettings { MaxEpsilon = 8, Floor = floor }));
        var loaded = AgentConfigurationFile.Load(path);
        loaded.Privacy.MaxEpsilon.Should().Be(8);
        loaded.Privacy.Floor.MinNoiseMultiplier.Should().Be(1);
        loaded.Privacy.Floor.MinClientLayers.Should().Be(2);
        File.ReadAllText(path).Should().Contain("\"minClientLayers\": 2", "init writes the floor out, for the hospital to read and change");

        var bad = () => AgentConfigurationFile.Validate(Config(new AgentPrivacySettings { MaxEpsilon = -1 }), "agent.json");
        bad.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.Configuration && e.Message.Contains("privacy.maxEpsilon"));
        var noModes = () => AgentConfigurationFile.Validate(Config(new AgentPrivacySettings { Floor = PrivacyFloor.Open with { Modes = [] } }), "agent.json");
        noModes.Should().Throw<AgentException>().Where(e => e.Message.Contains("privacy.floor.modes"));
    }

    [Fact]
    public void The_budget_counts_every_pass_and_stops_before_the_one_that_would_exceed_max_epsilon()
    {
        var manifest = Manifest(ModelCatalog.PneumoniaCnnCut3, privacy: new PrivacySettings { NoiseSigma = 1, ClipNorm = 5 });
        const double delta = 0.01;
        var ledger = new ReleaseLedger();
        ledger = ReleaseBudget.Count(ledger, ReleaseKind.Training, 0, manifest, delta, maxEpsilon: 5);
        ledger.Epsilon.Should().BeApproximately(RdpAccountant.GaussianEpsilon(1, 1, delta), 1e-12);
        ledger = ReleaseBudget.Count(ledger, ReleaseKind.Validation, 0, manifest, delta, maxEpsilon: 5);
        ledger.Releases.Should().Be(2);
        ledger.Epsilon.Should().BeLessThan(5);
        var third = () => ReleaseBudget.Count(ledger, ReleaseKind.Training, 1, manifest, delta, maxEpsilon: 5);
        third.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.PrivacyBudget && e.Message.Contains("privacy.maxEpsilon 5")
            && !e.Message.Contains('\n'));
        // Without a budget the pass is counted, and a run without clipping states no epsilon.
        ReleaseBudget.Count(ledger, ReleaseKind.Evaluation, 1, manifest, delta, null).EvaluationPasses.Should().Be(1);
        ReleaseBudget.Count(new ReleaseLedger(), ReleaseKind.Training, 0, Manifest(ModelCatalog.PneumoniaCnnCut3,
            privacy: new PrivacySettings { NoiseSigma = 1 }), delta, null).Epsilon.Should().BeNull();
        // A training pass begun before the ledger existed is counted too: resuming at epoch 3 means four passes.
        ReleaseBudget.Count(new ReleaseLedger(), ReleaseKind.Training, 3, manifest, delta, null).TrainingPasses.Should().Be(4);
    }

    [Fact]
    public void A_run_that_cannot_keep_within_the_budget_is_refused_before_it_starts()
    {
        var unclipped = Manifest(ModelCatalog.PneumoniaCnnCut3, privacy: new PrivacySettings { NoiseSigma = 1 });
        ReleaseBudget.PlanViolation(unclipped, 8, 0.01).Should().Contain("no guarantee");
        ReleaseBudget.PlanViolation(unclipped, null, 0.01).Should().BeNull();
        var clipped = Manifest(ModelCatalog.PneumoniaCnnCut3, privacy: new PrivacySettings { NoiseSigma = 1, ClipNorm = 5 });
        ReleaseBudget.PlanViolation(clipped, 3, 0.01).Should().Contain("4 training pass(es)");
        ReleaseBudget.PlanViolation(clipped, 20, 0.01).Should().BeNull();
    }

    [Fact]
    public void An_oversized_gradient_from_the_server_is_clipped_to_the_bound_and_counted()
    {
        var settings = new GradientBoundSettings();
        const int rows = 8, width = 50;
        var honest = Rows(rows, width, 0.01f);
        var first = GradientBound.Apply(honest, rows, settings, scale: null);
        first.Clipped.Should().Be(0);
        first.NextScale.Should().NotBeNull();

        // A hijacking server's reply: one sample's gradient 1,000 times the run's scale.
        var hostile = Rows(rows, width, 0.01f);
        for (var i = 0; i < width; i++) hostile[3 * width + i] *= 1000;
        var check = GradientBound.Apply(hostile, rows, settings, first.NextScale);
        check.Clipped.Should().Be(1);
        check.LargestNorm.Should().BeGreaterThan(check.Bound);
        ActivationClipping.RowNorms(hostile, rows).Max().Should().BeLessThanOrEqualTo(check.Bound / rows * 1.0001, "the row is clipped to the bound");
        check.NextScale.Should().Be(first.NextScale, "a batch with gradients outside the bound does not move the scale");

        // The absolute cap binds from the first batch.
        var capped = GradientBound.Apply(Rows(rows, width, 1f), rows, new GradientBoundSettings { MaxSampleNorm = 1 }, null);
        capped.Clipped.Should().Be(rows);
        new GradientBoundSettings { RelativeFactor = 0.5 }.Problem().Should().Contain("relativeFactor");
    }

    private static float[] Rows(int rows, int width, float value)
    {
        var values = new float[rows * width];
        for (var i = 0; i < values.Length; i++) values[i] = value * (1 + i % 7 / 10f);
        return values;
    }

    private static AgentConfiguration Config(AgentPrivacySettings privacy) => new()
    {
        HospitalId = "hospital-a",
        RunId = "run-floor",
        Storage = new StorageSettings { ConnectionString = "UseDevelopmentStorage=true" },
        Key = new KeySettings { Directory = "keys", KeyId = "k1" },
        Data = new DataSettings { Path = "data.npz", Kind = DataKinds.ImagesNpz },
        StateFolder = "state",
        Privacy = privacy,
    };
}
