using Azure;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Functions.Training;

/// <summary>
/// A run this server instance holds the lease of (the hospital's side of a run is the agent's <c>HospitalRun</c>): the lease, the manifest, the server model and the run state, plus the ETag of
/// the `latest` pointer it last wrote. Lives between messages so consecutive batches do not reload the checkpoint.
/// </summary>
public sealed class LeasedRun(RunManifest manifest, RunLease lease, ServerModel model, RunState state, ETag? latest) : IAsyncDisposable
{
    public RunManifest Manifest { get; } = manifest;

    public RunLease Lease { get; } = lease;

    public ServerModel Model { get; } = model;

    public RunState State { get; } = state;

    public ETag? LatestETag { get; set; } = latest;

    /// <summary>Journal entries written since the last checkpoint.</summary>
    public int SinceCheckpoint { get; set; }

    public DateTimeOffset LastUsed { get; set; } = DateTimeOffset.UtcNow;

    /// <summary>Serialises work on the run inside this instance (the lease serialises across instances).</summary>
    public SemaphoreSlim Gate { get; } = new(1, 1);

    public Checkpoint ToCheckpoint() => new(State, Model.SaveWeights(), Model.SaveOptimizer());

    public async ValueTask DisposeAsync()
    {
        Model.Dispose();
        Gate.Dispose();
        await Lease.DisposeAsync().ConfigureAwait(false);
    }
}
