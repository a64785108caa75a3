using Azure;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Functions.Runs;

/// <summary>
/// A run this server instance holds the lease of (the hospital's side of a run is the agent's <c>HospitalRun</c>): the lease, the manifest, the server model
/// and the run state, plus the ETag of
/// the `latest` pointer it last wrote. Lives between messages so consecutive batches do not reload the checkpoint.
/// </summary>
public sealed class LeasedRun(RunManifest manifest, RunLease lease, ServerModel model, RunState state, ETag? latest) : IAsyncDisposable
{
    public RunManifest Manifest { get; } = manifest;

    public RunLease Lease { get; } = lease;

    public ServerModel Model { get; } = model;

    public RunState State { get; } = state;

    public ETag? LatestETag { get; set; } = latest;

    /// <summary>
    /// Temporal: per hospital, the chunks indexed when its `done` was last deferred and how many deliveries in a row found no
    /// new chunk (<see cref="TemporalChunks.MaxDoneDeferrals"/>). Under the gate; not persisted (a reload starts counting again).
    /// </summary>
    public Dictionary<string, (int Indexed, int Deferrals)> DoneDeferrals { get; } = new(StringComparer.Ordinal);

    /// <summary>What the run accepts from hospitals beyond the absolute bound (clip norm, running scale), checked before any step.</summary>
    public RunValueBounds ValueBounds { get; } = new(manifest, model.CutShape);

    /// <summary>Journal entries written since the last checkpoint.</summary>
    public int SinceCheckpoint
    {
        get => Volatile.Read(ref sinceCheckpoint);
        set => Volatile.Write(ref sinceCheckpoint, value);
    }

    private int sinceCheckpoint;

    /// <summary>
    /// Vanilla steps applied since the last checkpoint copy was taken (or the checkpoint loaded). Read and written only
    /// under the gate, so the copy is due exactly every <see cref="LeasedRuns.CheckpointEvery"/> steps, however the
    /// commits in flight finish.
    /// </summary>
    public int AppliedSinceCheckpoint { get; set; }

    public DateTimeOffset LastUsed { get; set; } = DateTimeOffset.UtcNow;

    /// <summary>
    /// Messages applied in memory by this copy (not persisted): a handler that fails after its count moved has changed the
    /// run, and the router drops the copy so the next message reloads durable state, which the journal never saw the step in.
    /// </summary>
    public long Applied => Interlocked.Read(ref applied);

    private long applied;

    /// <summary>Counts one more message applied in memory (<see cref="RunEffects"/>).</summary>
    public void MarkApplied() => Interlocked.Increment(ref applied);

    /// <summary>Serialises work on the run inside this instance (the lease serialises across instances).</summary>
    public SemaphoreSlim Gate { get; } = new(1, 1);

    private int closed;

    /// <summary>
    /// The commit of the latest vanilla step (journal entry, reply), which may still run after the gate is released; the next commit waits for it.
    /// </summary>
    public Task PendingCommit { get; set; } = Task.CompletedTask;

    /// <summary>True once this copy of the run was dropped: a message that waited for its gate must open the run again.</summary>
    public bool IsClosed => Volatile.Read(ref closed) == 1;

    public Checkpoint ToCheckpoint() => new(State, Model.SaveWeights(), Model.SaveOptimizer());

    /// <summary>
    /// A copy of the run as it is now (state, weights, optimizer), taken under the gate, which a commit can write later
    /// while further steps change the live model.
    /// </summary>
    public Checkpoint SnapshotCheckpoint() => new(RunState.FromJson(State.ToJson()), Model.SaveWeights(), Model.SaveOptimizer());

    public async ValueTask DisposeAsync()
    {
        // Dropped by whichever fails first, a step's commit or the one after it: once is enough. The gate is not disposed,
        // as a message may still be waiting on it (it then sees IsClosed).
        if (Interlocked.Exchange(ref closed, 1) == 1) return;
        Model.Dispose();
        await Lease.DisposeAsync().ConfigureAwait(false);
    }
}
