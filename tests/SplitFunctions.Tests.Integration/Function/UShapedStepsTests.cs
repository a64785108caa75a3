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

/// <summary>The U-shaped two-leg exchange against a real Azurite and the real engine: each leg exactly once, restarts between legs, bad legs refused.</summary>
public sealed class UShapedStepsTests
{
    private static Task<RunHarness> StartAsync(int timeoutSeconds = 600) =>
        RunHarness.StartAsync(TrainingMode.UShaped, configure: m => m with { UShaped = new UShapedSettings { SecondLegTimeoutSeconds = timeoutSeconds } });

    private static readonly long[] OutputShape = [8, 32];

    private static float[] OutputGradient(int salt)
    {
        var rng = new Random(salt);
        return [.. Enumerable.Range(0, 8 * 32).Select(_ => (float)(rng.NextDouble() - 0.5) / 8)];
    }

    [Fact]
    public async Task Both_legs_compute_what_the_body_computes_in_process_and_a_redelivered_leg_is_answered_from_the_record()
    {
        await using var run = await StartAsync();
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var (a, _, shape) = run.Batch(8, salt: 1);
        var forward = await run.PrepareAsync("alpha", 1, FrameKind.Forward, a, shape, labels: null);
        (await router.ProcessAsync(forward, 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
        var outputsReply = await run.NextReplyAsync("alpha");
        outputsReply.Kind.Should().Be(ReplyKind.Outputs);
        outputsReply.Loss.Should().BeNull("the server has no labels, so no loss");
        var outputs = (await run.ReadReplyAsync(outputsReply)).Should().ContainSingle().Subject;
        outputs.Shape.Should().Equal(OutputShape, "ldl-mlp's tail is its last linear layer: the body ends at 32 features");

        (await router.ProcessAsync(forward, 2, CancellationToken.None)).Detail.Should().Contain("answered from the record");
        (await run.NextReplyAsync("alpha")).Sha256.Should().Be(outputsReply.Sha256);

        var g = OutputGradient(2);
        var backward = await run.PrepareBackwardAsync("alpha", 2, g, OutputShape);
        (await router.ProcessAsync(backward, 1, CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
        var gradientReply = await run.NextReplyAsync("alpha");
        gradientReply.Kind.Should().Be(ReplyKind.Gradients);
        gradientReply.Loss.Should().BeNull();
        var gradient = (await run.ReadReplyAsync(gradientReply)).Should().ContainSingle().Subject;
        (await router.ProcessAsync(backward, 2, CancellationToken.None)).Detail.Should().Contain("answered from the record");
        (await run.NextReplyAsync("alpha")).Sha256.Should().Be(gradientReply.Sha256);

        using var direct = new ServerModel(run.Manifest, torch.CPU);
        direct.ForwardOutputs(a, 8).Should().Equal(outputs.Values);
        var expected = direct.BackwardFromOutputs(a, g, 8);
        gradient.Values.Should().Equal(expected);
        expected.Should().Contain(v => v != 0f);
        var leased = await runs.OpenAsync("run-1", CancellationToken.None);
        leased!.State.BatchesApplied.Should().Be(1, "two deliveries of each leg are one step");
        leased.State.OpenForwards.Should().BeEmpty();
        leased.Model.SaveWeights().Should().NotBeEmpty();
        MessageRouterTests.WeightsOf(leased.Model.SaveWeights(), UShapedBody()).Should()
            .Equal(MessageRouterTests.WeightsOf(direct.SaveWeights(), UShapedBody()));
    }

    [Fact]
    public async Task A_restart_between_the_legs_resumes_the_batch_from_the_journal_and_gives_the_uninterrupted_weights()
    {
        async Task<List<float>> TrainAsync(bool restart)
        {
            await using var run = await StartAsync();
            var (router, runs) = run.CreateRouter("instance-a");
            for (var batch = 0; batch < 3; batch++)
            {
                var (a, _, shape) = run.Batch(8, salt: 10 + batch);
                var seq = 1 + 2 * batch;
                (await router.ProcessAsync(await run.PrepareAsync("alpha", seq, FrameKind.Forward, a, shape, null), 1, CancellationToken.None)).Kind.Should()
                    .Be(OutcomeKind.Completed);
                if (restart && batch == 1)
                {
                    // The instance vanishes after the forward leg was journaled, without a checkpoint.
                    await runs.DisposeAsync();
                    (router, runs) = run.CreateRouter("instance-a");
                }
                (await router.ProcessAsync(await run.PrepareBackwardAsync("alpha", seq + 1, OutputGradient(seq), OutputShape), 1, CancellationToken.None))
                    .Kind.Should().Be(OutcomeKind.Completed);
            }
            var leased = await runs.OpenAsync("run-1", CancellationToken.None);
            leased!.State.BatchesApplied.Should().Be(3);
            var weights = MessageRouterTests.WeightsOf(leased.Model.SaveWeights(), UShapedBody());
            await runs.DisposeAsync();
            return weights;
        }

        (await TrainAsync(restart: true)).Should().Equal(await TrainAsync(restart: false));
    }

    [Fact]
    public async Task Bad_legs_are_refused_with_a_reason_and_an_unanswered_forward_leg_blocks_no_one()
    {
        await using var run = await StartAsync(timeoutSeconds: 1);
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var (a, y, shape) = run.Batch(8, salt: 3);

        var orphan = await router.ProcessAsync(await run.PrepareBackwardAsync("alpha", 6, OutputGradient(1), OutputShape), 1, CancellationToken.None);
        var train = await router.ProcessAsync(await run.PrepareAsync("alpha", 7, FrameKind.Train, a, shape, y), 1, CancellationToken.None);
        var withLabels = await router.ProcessAsync(await run.PrepareAsync("alpha", 8, FrameKind.Forward, a, shape, y), 1, CancellationToken.None);

        // alpha opens a batch and never finishes it; beta trains meanwhile.
        (await router.ProcessAsync(await run.PrepareAsync("alpha", 9, FrameKind.Forward, a, shape, null), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed);
        var forged = await router.ProcessAsync(await run.PrepareBackwardAsync("alpha", 10, OutputGradient(2), OutputShape, sealAs: PayloadKind.Features), 1,
            CancellationToken.None);
        var tamperedText = await run.PrepareBackwardAsync("alpha", 10, OutputGradient(2), OutputShape);
        await run.TamperFeaturesAsync("alpha", 10);
        var tampered = await router.ProcessAsync(tamperedText, 1, CancellationToken.None);
        var wrongShape = await router.ProcessAsync(await run.PrepareBackwardAsync("alpha", 10, new float[8 * 31], [8, 31]), 1, CancellationToken.None);
        for (var seq = 1; seq < 5; seq += 2)
        {
            (await router.ProcessAsync(await run.PrepareAsync("beta", seq, FrameKind.Forward, a, shape, null), 1, CancellationToken.None)).Kind.Should()
                .Be(OutcomeKind.Completed);
            (await router.ProcessAsync(await run.PrepareBackwardAsync("beta", seq + 1, OutputGradient(seq), OutputShape), 1, CancellationToken.None))
                .Kind.Should().Be(OutcomeKind.Completed);
        }
        await Task.Delay(1500);
        var expired = await router.ProcessAsync(await run.PrepareBackwardAsync("alpha", 10, OutputGradient(2), OutputShape), 1, CancellationToken.None);

        orphan.Detail.Should().Contain("none is open");
        train.Detail.Should().Contain("vanilla runs");
        withLabels.Detail.Should().Contain("activations only");
        forged.Detail.Should().MatchRegex("(?i)authentic|tamper|sha-256|sealed|kind");
        tampered.Detail.Should().MatchRegex("(?i)authentic|tamper|sha-256");
        wrongShape.Detail.Should().Contain("shape");
        expired.Detail.Should().Contain("expired");
        new[] { orphan, train, withLabels, forged, tampered, wrongShape, expired }.Should().OnlyContain(o => o.Kind == OutcomeKind.Rejected);
        var leased = await runs.OpenAsync("run-1", CancellationToken.None);
        leased!.State.BatchesApplied.Should().Be(2, "beta's two batches, none of alpha's");
        leased.State.OpenForwards.Should().ContainKey("alpha").WhoseValue.Sequence.Should().Be(9, "the state shows alpha's unanswered leg");
    }

    private static Core.Model.Network UShapedBody() =>
        Core.Model.Network.Create(UShapedSplit.Body(ModelCatalog.LdlMlp), [64]);
}
