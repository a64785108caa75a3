using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Model;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Tests.Function;

/// <summary>
/// Values beyond a bound derived from the run are refused before the optimizer (issue 31, item 2), not only those beyond
/// the absolute 1e6: the clip norm's bound when privacy.clipNorm is set, otherwise a multiple of the run's typical frame.
/// </summary>
public sealed class RunValueBoundsTests
{
    [Fact]
    public async Task With_a_clip_norm_a_sample_the_agent_could_not_have_released_is_refused_and_the_weights_stay()
    {
        await using var run = await RunHarness.StartAsync(configure: m => m with { Privacy = m.Privacy with { ClipNorm = 2 } });
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        var (a, y, shape) = run.Batch(16, salt: 1);
        var width = (int)(a.Length / shape[0]);
        Clip(a, width, 2);
        (await router.ProcessAsync(await run.PrepareAsync("alpha", 0, FrameKind.Train, a, shape, y), 1, CancellationToken.None)).Kind.Should()
            .Be(OutcomeKind.Completed);
        var before = await ServerStateAsync(run);

        // Sample 3 at norm 40: 20 times the clip norm, every value far below the absolute 1e6.
        var (b, yb, _) = run.Batch(16, salt: 2);
        Clip(b, width, 2);
        for (var i = 3 * width; i < 4 * width; i++) b[i] *= 20;
        var outcome = await router.ProcessAsync(await run.PrepareAsync("alpha", 1, FrameKind.Train, b, shape, yb), 1, CancellationToken.None);
        outcome.Kind.Should().Be(OutcomeKind.Rejected);
        outcome.Detail.Should().Contain("sample 3 has L2 norm").And.Contain("privacy.clipNorm 2").And.Contain("nothing was applied");
        (await ServerStateAsync(run)).Should().Be(before, "nothing reached the optimizer");
        (await run.ReplyToAsync("alpha", 1)).Kind.Should().Be(ReplyKind.Rejected);
    }

    [Fact]
    public async Task Without_a_clip_norm_a_frame_far_above_the_run_s_typical_frames_is_refused_after_the_warm_up()
    {
        await using var run = await RunHarness.StartAsync();
        var (router, runs) = run.CreateRouter();
        await using var _ = runs;
        for (var seq = 0; seq < RunValueBounds.Warmup; seq++)
        {
            var (a, y, shape) = run.Batch(16, salt: 10 + seq);
            (await router.ProcessAsync(await run.PrepareAsync(seq % 2 == 0 ? "alpha" : "beta", seq, FrameKind.Train, a, shape, y), 1,
                CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed);
        }
        // Honest values are within [-1, 1]; one value of 5,000 (far below 1e6) used to be trained on.
        var (h, yh, hShape) = run.Batch(16, salt: 99);
        h[17] = 5000;
        var outcome = await router.ProcessAsync(await run.PrepareAsync("alpha", RunValueBounds.Warmup, FrameKind.Train, h, hShape, yh), 1,
            CancellationToken.None);
        outcome.Kind.Should().Be(OutcomeKind.Rejected);
        outcome.Detail.Should().Contain("reach 5000").And.Contain("times the").And.Contain("nothing was applied");
        var (ok, yOk, okShape) = run.Batch(16, salt: 100);
        (await router.ProcessAsync(await run.PrepareAsync("beta", RunValueBounds.Warmup + 1, FrameKind.Train, ok, okShape, yOk), 1,
            CancellationToken.None)).Kind.Should().Be(OutcomeKind.Completed, "honest frames train on");
    }

    private static void Clip(float[] values, int width, double norm)
    {
        for (var r = 0; r < values.Length / width; r++)
        {
            var row = values.AsSpan(r * width, width);
            double sum = 0;
            foreach (var v in row) sum += (double)v * v;
            var scale = Math.Min(1, norm / Math.Sqrt(sum) * 0.999);
            for (var i = 0; i < row.Length; i++) row[i] = (float)(row[i] * scale);
        }
    }

    // The durable server state: the checkpoint pointer and the journal's blobs.
    private static async Task<string> ServerStateAsync(RunHarness run)
    {
        var names = new List<string>();
        await foreach (var blob in run.Storage.GetBlobContainerClient(StorageNames.RunsContainer)
            .GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "run-1/", CancellationToken.None))
        {
            names.Add(blob.Name);
        }
        return string.Join(",", names.Order(StringComparer.Ordinal));
    }
}
