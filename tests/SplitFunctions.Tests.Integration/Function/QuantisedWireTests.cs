using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;
using TorchSharp;

namespace SplitFunctions.Tests.Function;

/// <summary>
/// Runs whose manifest says featureType QInt8, against a real Azurite and the real engine: the function trains on the int8
/// activations it receives and answers in int8, in vanilla, U-shaped and temporal mode.
/// </summary>
public sealed class QuantisedWireTests
{
    private static Task<RunHarness> StartAsync(TrainingMode mode, int epochs = 3) =>
        RunHarness.StartAsync(mode, batchSize: 8, epochs: epochs, configure: m => m with { FeatureType = ElementType.QInt8 });

    // What the other side reads after an int8 frame: the values within half a step of each sample's scale.
    private static float[] OverTheWire(float[] values, long[] shape) =>
        TensorFrame.Decode(TensorFrame.Encode(new FrameTensor(ElementType.QInt8, shape, values)))[0].Values;

    [Fact]
    public async Task A_vanilla_step_trains_on_the_int8_activations_and_returns_int8_gradients()
    {
        await using var run = await StartAsync(TrainingMode.Vanilla);
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var (activations, labels, shape) = run.Batch(8, salt: 1);

        var outcome = await router.ProcessAsync(await run.PrepareAsync("alpha", 0, FrameKind.Train, activations, shape, labels), 1, CancellationToken.None);
        outcome.Kind.Should().Be(OutcomeKind.Completed, outcome.Detail);
        var reply = await run.NextReplyAsync("alpha");
        var gradient = (await run.ReadReplyAsync(reply)).Should().ContainSingle().Subject;
        gradient.WireType.Should().Be(ElementType.QInt8, "dL/dA goes back in the run's feature type");

        using var direct = new ServerModel(run.Manifest, torch.CPU);
        var (loss, expected) = direct.TrainStep(OverTheWire(activations, shape), labels, 8);
        reply.Loss.Should().BeApproximately(loss, 1e-9, "the server saw the int8 activations, not the fp32 ones");
        gradient.Values.Should().Equal(OverTheWire(expected, shape));
        gradient.Values.Should().Contain(v => v != 0f);
    }

    [Fact]
    public async Task Both_U_shaped_legs_travel_as_int8()
    {
        await using var run = await StartAsync(TrainingMode.UShaped);
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var (a, _, shape) = run.Batch(8, salt: 1);
        (await router.ProcessAsync(await run.PrepareAsync("alpha", 1, FrameKind.Forward, a, shape, labels: null), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed);
        var outputs = (await run.ReadReplyAsync(await run.NextReplyAsync("alpha"))).Should().ContainSingle().Subject;
        outputs.WireType.Should().Be(ElementType.QInt8);

        var rng = new Random(2);
        long[] outputShape = [8, 32];
        var g = Enumerable.Range(0, 8 * 32).Select(_ => (float)(rng.NextDouble() - 0.5) / 8).ToArray();
        (await router.ProcessAsync(await run.PrepareBackwardAsync("alpha", 2, g, outputShape), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed);
        var gradient = (await run.ReadReplyAsync(await run.NextReplyAsync("alpha"))).Should().ContainSingle().Subject;
        gradient.WireType.Should().Be(ElementType.QInt8);

        using var direct = new ServerModel(run.Manifest, torch.CPU);
        var received = OverTheWire(a, shape);
        outputs.Values.Should().Equal(OverTheWire(direct.ForwardOutputs(received, 8), outputShape));
        gradient.Values.Should().Equal(OverTheWire(direct.BackwardFromOutputs(received, OverTheWire(g, outputShape), 8), shape));
    }

    [Fact]
    public async Task Temporal_chunks_of_int8_features_train_every_epoch()
    {
        await using var run = await StartAsync(TrainingMode.Temporal, epochs: 2);
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        foreach (var hospital in run.Manifest.Hospitals)
        {
            var (a, y, shape) = run.Batch(40, salt: hospital.Length);
            (await router.ProcessAsync(await run.PrepareAsync(hospital, 0, FrameKind.Chunk, a, shape, y), 1, CancellationToken.None)).Kind.Should()
                .Be(OutcomeKind.Completed);
        }
        (await router.ProcessAsync(run.DoneMessage("alpha", 1, 1), 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
        var outcome = await router.ProcessToEndAsync(run.DoneMessage("beta", 1, 1), 1, CancellationToken.None);
        outcome.Detail.Should().Contain("2 epochs");
        var leased = await runs.OpenAsync("run-1", CancellationToken.None);
        leased!.State.Epochs.Should().HaveCount(2).And.OnlyContain(e => e.Samples == 80, "both hospitals' int8 chunks are read back and trained on");
    }
}
