using System.Text.Json;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Tests.Function;

/// <summary>`run status` reads the function's run state as <see cref="RunProgress"/>: the same JSON, no field lost.</summary>
public sealed class RunProgressTests
{
    [Fact]
    public void A_checkpoints_run_state_reads_as_the_progress_run_status_shows()
    {
        var state = new RunState { Step = 42, BatchesApplied = 40, EpochsCompleted = 2, CheckpointNumber = 3 };
        state.Watermarks["alpha"] = 17;
        state.Watermarks["beta"] = 9;
        state.RecordBatch("alpha", 17, 0.25, 16);
        state.RecordBatch("beta", 9, 0.5, 8);
        state.Chunks.Add(new FeatureChunk("alpha", 3, "features/run-1/000000000003.sfe", 100, "ab", "k1"));
        state.Epochs.Add(new EpochRecord(1, 0.75, 64, 1.5));
        state.Epochs.Add(new EpochRecord(2, 0.625, 64, 1.25));

        var progress = JsonSerializer.Deserialize<RunProgress>(state.ToJson(), RunLayout.Json)!;

        progress.Step.Should().Be(42);
        progress.BatchesApplied.Should().Be(40);
        progress.EpochsCompleted.Should().Be(2);
        progress.Watermarks.Should().Equal(new Dictionary<string, long> { ["alpha"] = 17, ["beta"] = 9 });
        progress.RecentBatches.Should().Equal(state.RecentBatches);
        progress.Chunks.Should().Equal(state.Chunks);
        progress.Epochs.Should().Equal(state.Epochs);
        RunState.FromJson(state.ToJson()).ToJson().Should().Equal(state.ToJson(), "the state reads back to the same bytes");
    }
}
