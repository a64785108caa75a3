using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Tests.Data;

/// <summary>
/// Augmentation at the hospital (data.augmentation): flips, small rotations and shifts of training batches only, drawn
/// from the hospital's order secret so a restart repeats them and the server cannot compute them.
/// </summary>
public sealed class ImageAugmentationTests
{
    private const string Run = "run-augment";

    private static TrainingSet Images(int count = 8, int side = 28)
    {
        var images = SyntheticImages.Generate(count, side, side, seed: 3);
        ChannelStatistics.Compute(images).Apply(images);
        return new TrainingSet(images.Images, images.Labels, [1, side, side]);
    }

    private static float[] Batch(TrainingSet data, int[] rows, EpochAugmentation? augmentation)
    {
        var features = new float[rows.Length * data.SampleSize];
        data.Gather(rows, features, new float[rows.Length]);
        augmentation?.Apply(features, rows);
        return features;
    }

    [Fact]
    public void The_same_secret_gives_the_same_augmentation_after_a_restart_and_another_secret_or_epoch_another()
    {
        using var state = new TempDirectory();
        var data = Images();
        int[] rows = [5, 0, 3, 7];
        var first = new ImageAugmentation(new AugmentationSettings(), OrderSecret.LoadOrCreate(state.Path), Run, data.SampleShape);
        var original = Batch(data, rows, null);
        var augmented = Batch(data, rows, first.ForEpoch(2));
        augmented.Should().NotEqual(original, "training inputs change");

        // A restarted agent reads the same secret file: the same epoch's batch is augmented identically (a resumed pending batch
        // recomputes exactly the activations it sealed before the restart).
        var resumed = new ImageAugmentation(new AugmentationSettings(), OrderSecret.LoadOrCreate(state.Path), Run, data.SampleShape);
        Batch(data, rows, resumed.ForEpoch(2)).Should().Equal(augmented);
        Batch(data, rows, resumed.ForEpoch(3)).Should().NotEqual(augmented, "each epoch draws afresh");
        var other = new ImageAugmentation(new AugmentationSettings(), OrderSecret.Create(), Run, data.SampleShape);
        Batch(data, rows, other.ForEpoch(2)).Should().NotEqual(augmented, "another hospital's secret draws otherwise");
        // A sample's draw does not depend on which batch or position it is in.
        first.DrawFor(2, 3).Should().Be(first.DrawFor(2, 3));
        Batch(data, [3], first.ForEpoch(2)).Should().Equal(augmented.AsSpan(2 * data.SampleSize, data.SampleSize).ToArray());
    }

    [Fact]
    public void Draws_cover_flips_rotations_and_shifts_within_their_bounds()
    {
        var augmentation = new ImageAugmentation(new AugmentationSettings(), OrderSecret.Create(), Run, [1, 64, 64]);
        var draws = Enumerable.Range(0, 400).Select(row => augmentation.DrawFor(0, row)).ToList();
        draws.Count(d => d.Flip).Should().BeInRange(150, 250, "a flip with probability 1/2");
        draws.Should().OnlyContain(d => Math.Abs(d.Degrees) <= 10 && Math.Abs(d.ShiftX) <= 6 && Math.Abs(d.ShiftY) <= 6);
        draws.Select(d => d.ShiftX).Distinct().Should().HaveCount(13, "every shift from -6 to 6 pixels at 64 (0.1 of the side)");
        draws.Max(d => Math.Abs(d.Degrees)).Should().BeGreaterThan(9);
    }

    [Fact]
    public void A_flip_alone_mirrors_each_row_exactly_and_a_shift_alone_moves_pixels_filling_with_the_mean()
    {
        var data = Images(count: 40);
        var settings = new AugmentationSettings { MaxRotationDegrees = 0, MaxShift = 0 };
        var flipOnly = new ImageAugmentation(settings, OrderSecret.Create(), Run, data.SampleShape);
        var row = Enumerable.Range(0, 40).First(r => flipOnly.DrawFor(0, r).Flip);
        var original = Batch(data, [row], null);
        var flipped = Batch(data, [row], flipOnly.ForEpoch(0));
        for (var y = 0; y < 28; y++)
            for (var x = 0; x < 28; x++)
                flipped[y * 28 + x].Should().Be(original[y * 28 + 27 - x]);

        var shiftSettings = new AugmentationSettings { HorizontalFlip = false, MaxRotationDegrees = 0, MaxShift = 0.25 };
        var shiftOnly = new ImageAugmentation(shiftSettings, OrderSecret.Create(), Run, data.SampleShape);
        var shiftedRow = Enumerable.Range(0, 40).First(r => shiftOnly.DrawFor(0, r) is { ShiftX: > 0, ShiftY: > 0 });
        var draw = shiftOnly.DrawFor(0, shiftedRow);
        var source = Batch(data, [shiftedRow], null);
        var shifted = Batch(data, [shiftedRow], shiftOnly.ForEpoch(0));
        shifted[(27 - 0) * 28 + 27].Should().Be(source[(27 - draw.ShiftY) * 28 + 27 - draw.ShiftX], "content moves by the shift");
        shifted[0].Should().Be(0, "uncovered pixels are the training mean (0 after normalisation)");
    }

    [Fact]
    public void The_client_layer_augments_training_batches_and_refuses_augmentation_outside_training()
    {
        var manifest = RunManifest.ForModel(Run, ModelCatalog.PneumoniaCnn, TrainingMode.Vanilla, ["hospital-a"], 42);
        using var client = ClientLayer.Create(manifest, trainable: true, secret: null);
        var data = Images();
        var augmentation = new ImageAugmentation(new AugmentationSettings(), OrderSecret.Create(), Run, data.SampleShape);
        int[] rows = [0, 1, 2, 3];
        using var scope = TorchSharp.torch.NewDisposeScope();
        var plain = client.Forward(data, rows, train: true, out _).ToFloats();
        var augmented = client.Forward(data, rows, train: true, out var targets, augmentation.ForEpoch(0)).ToFloats();
        augmented.Should().NotEqual(plain, "the hospital's training activations come from augmented images");
        targets.Should().Equal(data.Targets.Take(4), "labels are unchanged");
        var evaluation = () => client.Forward(data, rows, train: false, out _, augmentation.ForEpoch(0));
        evaluation.Should().Throw<InvalidOperationException>("validation, evaluation and audit inputs are never augmented");
        client.Forward(data, rows, train: false, out _).ToFloats().Should().Equal(
            client.Forward(data, rows, train: false, out _).ToFloats(), "evaluation inputs are the images as they are");
    }

    [Fact]
    public void The_configuration_turns_augmentation_on_with_its_defaults_and_refuses_bad_values_in_one_line()
    {
        using var dir = new TempDirectory();
        var path = dir.File("agent.json");
        AgentConfigurationFile.Save(path, Config(new AugmentationSettings()));
        var loaded = AgentConfigurationFile.Load(path).Data.Augmentation;
        loaded.Should().Be(new AugmentationSettings { Enabled = true, HorizontalFlip = true, MaxRotationDegrees = 10, MaxShift = 0.1 });
        AgentConfigurationFile.Validate(Config(null), "agent.json");
        new DataSettings { Path = "x", Kind = DataKinds.Images }.Augmentation.Should().BeNull("off unless the hospital asks for it");

        var tooMuch = () => AgentConfigurationFile.Validate(Config(new AugmentationSettings { MaxRotationDegrees = 90 }), "agent.json");
        tooMuch.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.Configuration && e.Message.Contains("data.augmentation.maxRotationDegrees")
            && !e.Message.Contains('\n'));
        var table = () => AgentConfigurationFile.Validate(Config(new AugmentationSettings()) with
        {
            Data = new DataSettings
            {
                Path = "x.csv",
                Kind = DataKinds.TabularCsv,
                Columns = new ColumnSettings { Features = ["a"], Target = "b" },
                Augmentation = new AugmentationSettings(),
            },
        }, "agent.json");
        table.Should().Throw<AgentException>().Where(e => e.Message.Contains("data.augmentation is for images"));
    }

    private static AgentConfiguration Config(AugmentationSettings? augmentation) => new()
    {
        HospitalId = "hospital-a",
        RunId = Run,
        Storage = new StorageSettings { ConnectionString = "UseDevelopmentStorage=true" },
        Key = new KeySettings { Directory = "keys", KeyId = "k1" },
        Data = new DataSettings { Path = "data.npz", Kind = DataKinds.ImagesNpz, Augmentation = augmentation },
        StateFolder = "state",
    };

    [Theory]
    [InlineData("on", true, 10, 0.1)]
    [InlineData("no-flip,rotation=5,shift=0.05", false, 5, 0.05)]
    [InlineData(" rotation = 0 ", true, 0, 0.1)]
    public void The_command_line_form_reads_and_writes_back_the_same_settings(string text, bool flip, double rotation, double shift)
    {
        var settings = AugmentationSettings.Parse(text, out var problem);
        problem.Should().BeNull();
        settings.Should().Be(new AugmentationSettings { HorizontalFlip = flip, MaxRotationDegrees = rotation, MaxShift = shift });
        AugmentationSettings.Parse(settings!.Describe(), out _).Should().Be(settings);
    }

    [Theory]
    [InlineData("spin=3", "augmentation 'spin=3' is not flip, no-flip, rotation=DEGREES or shift=FRACTION")]
    [InlineData("rotation=ninety", "augmentation 'rotation=ninety' is not")]
    [InlineData("rotation=90", "maxRotationDegrees must be 0 to 45, is 90")]
    [InlineData("shift=0.5", "maxShift must be 0 to 0.25")]
    public void A_bad_command_line_form_is_one_reason(string text, string reason)
    {
        AugmentationSettings.Parse(text, out var problem).Should().BeNull();
        problem.Should().Contain(reason);
    }

    [Fact]
    public void Changing_the_augmentation_with_a_training_batch_pending_is_refused_and_otherwise_accepted()
    {
        var state = new ClientAgent.State.AgentState
        {
            RunId = Run,
            HospitalId = "h",
            Model = "pneumonia-cnn",
            Mode = "Vanilla",
            ManifestSha256 = "00",
            TrainSamples = 8,
            Augmentation = "flip,rotation=10,shift=0.1",
        };
        var pending = new ClientAgent.State.PendingFrame { Sequence = 7, Kind = Core.Contract.FrameKind.Train, Epoch = 1, Batch = 2 };
        const string Off = "off";
        ClientAgent.Commands.TrainCommand.AugmentationRefusal(state, Off).Should().BeNull("no batch pending: the change takes effect from the next batch");
        ClientAgent.Commands.TrainCommand.AugmentationRefusal(state with { Pending = pending }, state.Augmentation).Should().BeNull("unchanged");
        ClientAgent.Commands.TrainCommand.AugmentationRefusal(state with { Pending = pending with { Kind = Core.Contract.FrameKind.Evaluate } }, Off)
            .Should().BeNull("an evaluation is never augmented");
        ClientAgent.Commands.TrainCommand.AugmentationRefusal(state with { Pending = null, Augmentation = null }, Off).Should().BeNull("an older state");
        ClientAgent.Commands.TrainCommand.AugmentationRefusal(state with { Pending = pending }, Off).Should()
            .StartWith("data.augmentation changed (flip,rotation=10,shift=0.1 -> off) while training batch 3 of epoch 2 awaits the function's reply");
        ClientAgent.Commands.TrainCommand.AugmentationRefusal(state with { InFlight = [pending] }, Off).Should().NotBeNull("pipelined batches in flight");
    }
}
