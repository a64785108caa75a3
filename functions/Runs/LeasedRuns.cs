using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Steps;
using TorchSharp;

namespace SplitFunctions.Functions.Runs;

/// <summary>
/// The runs this instance owns. Opening a run takes its lease, loads `latest` and replays the journal written after it,
/// so a restarted or second instance continues exactly where the last writer stopped (invariants 5 and 7).
/// </summary>
public sealed partial class LeasedRuns(RunStore store, ServerFrameStore frames, torch.Device device, string instanceId, ILogger<LeasedRuns> logger,
    TimeSpan? leaseRenewal = null) : IAsyncDisposable
{
    /// <summary>Checkpoint after this many journal entries, bounding the replay after a crash.</summary>
    public const int CheckpointEvery = 25;

    /// <summary>A run unused this long is checkpointed and its lease released, so other instances may take the run.</summary>
    public static readonly TimeSpan IdleRelease = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<string, LeasedRun> held = new(StringComparer.Ordinal);

    public RunStore Store => store;

    /// <summary>The run if this instance holds it open now (no storage call, no lease taken), else null.</summary>
    public LeasedRun? Held(string run) => held.TryGetValue(run, out var leased) && !leased.IsClosed ? leased : null;

    /// <summary>The run, leased by this instance, or null when another instance holds the run.</summary>
    public async Task<LeasedRun?> OpenAsync(string run, CancellationToken ct)
    {
        if (held.TryGetValue(run, out var existing))
        {
            if (existing.Lease.IsHeld)
            {
                existing.LastUsed = DateTimeOffset.UtcNow;
                return existing;
            }
            held.TryRemove(run, out _);
            await existing.DisposeAsync().ConfigureAwait(false);
        }
        var lease = await RunLease.TryAcquireAsync(store.Container, run, instanceId, leaseRenewal ?? RunLease.DefaultRenewEvery, logger, ct)
            .ConfigureAwait(false);
        if (lease is null) return null;
        try
        {
            var leased = await LoadAsync(run, lease, ct).ConfigureAwait(false);
            held[run] = leased;
            return leased;
        }
        catch
        {
            await lease.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Drops a run without writing (after a concurrent-writer conflict or a failed step); the next message reloads
    /// durable state. Called under the run's gate.
    /// </summary>
    public async Task AbandonAsync(LeasedRun leased)
    {
        ArgumentNullException.ThrowIfNull(leased);
        // Its commits still in flight settle first (each fails after the first failure, or succeeds): a stale one must not
        // upload a reply blob after a reloaded run has applied that step again and announced its own blob under the
        // same name (the hospital would then read bytes that do not match the digest it was sent).
        await Task.WhenAny(leased.PendingCommit).ConfigureAwait(false);
        // Only this copy of the run: a later one may already hold the run again after a reload.
        held.TryRemove(new KeyValuePair<string, LeasedRun>(leased.Manifest.RunId, leased));
        await leased.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Whether the vanilla step just applied takes a checkpoint copy (<see cref="CommitStepAsync"/>); counts it either way.
    /// Called under the gate.
    /// </summary>
    public static bool CheckpointDue(LeasedRun leased)
    {
        ArgumentNullException.ThrowIfNull(leased);
        if (++leased.AppliedSinceCheckpoint < CheckpointEvery) return false;
        leased.AppliedSinceCheckpoint = 0;
        return true;
    }

    /// <summary>
    /// Records a journal entry for a message applied under the gate, which the caller still holds; checkpoints every <see cref="CheckpointEvery"/> entries.
    /// </summary>
    public async Task CommitAsync(LeasedRun leased, JournalEntry entry, CancellationToken ct)
    {
        if (await AppendAsync(leased, entry, ct).ConfigureAwait(false) >= CheckpointEvery) await CheckpointAsync(leased, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Records the journal entry of a vanilla step whose commit runs after the gate was released, so later steps may be
    /// changing the live model: the checkpoint is written only from <paramref name="snapshot"/>, the copy the step took
    /// under the gate when <see cref="CheckpointDue"/> (it holds exactly the steps journaled up to this one).
    /// </summary>
    public async Task CommitStepAsync(LeasedRun leased, JournalEntry entry, Checkpoint? snapshot, CancellationToken ct)
    {
        await AppendAsync(leased, entry, ct).ConfigureAwait(false);
        if (snapshot is not null) await CheckpointAsync(leased, ct, snapshot).ConfigureAwait(false);
    }

    // Writes the entry and returns the entries written since the last checkpoint, this one included.
    private async Task<int> AppendAsync(LeasedRun leased, JournalEntry entry, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(leased);
        await store.AppendJournalAsync(leased.Manifest.RunId, entry, ct).ConfigureAwait(false);
        // A later step may have numbered its entry already (VanillaSteps): the next step never goes back.
        leased.State.Step = Math.Max(leased.State.Step, entry.Step + 1);
        return ++leased.SinceCheckpoint;
    }

    public async Task CheckpointAsync(LeasedRun leased, CancellationToken ct, Checkpoint? snapshot = null)
    {
        ArgumentNullException.ThrowIfNull(leased);
        await leased.Lease.ConfirmAsync(ct).ConfigureAwait(false);
        // Without a copy the caller holds the gate and the live model is the checkpoint: the count of steps restarts.
        if (snapshot is null) leased.AppliedSinceCheckpoint = 0;
        var checkpoint = snapshot ?? leased.ToCheckpoint();
        // Checkpoints are numbered in commit order from the live state, whenever the snapshot was taken.
        checkpoint.State.CheckpointNumber = leased.State.CheckpointNumber;
        leased.LatestETag = await store.WriteCheckpointAsync(leased.Manifest.RunId, checkpoint, leased.LatestETag, ct).ConfigureAwait(false);
        leased.State.CheckpointNumber = checkpoint.State.CheckpointNumber;
        leased.SinceCheckpoint = 0;
        LogCheckpoint(logger, leased.Manifest.RunId, checkpoint.State.Step);
    }

    /// <summary>Checkpoints and releases runs idle longer than <see cref="IdleRelease"/> (all of them with <paramref name="all"/>).</summary>
    public async Task ReleaseIdleAsync(bool all, CancellationToken ct)
    {
        foreach (var (run, leased) in held)
        {
            if (!all && DateTimeOffset.UtcNow - leased.LastUsed < IdleRelease) continue;
            if (!await leased.Gate.WaitAsync(0, ct).ConfigureAwait(false)) continue;
            try
            {
                // The model holds every step applied; the checkpoint may hold only journaled ones, so the commits finish first.
                // A failed commit drops the run itself (MessageRouter): nothing of it may be checkpointed.
                await Task.WhenAny(leased.PendingCommit).ConfigureAwait(false);
                if (leased.PendingCommit.IsCompletedSuccessfully && leased.Lease.IsHeld && leased.SinceCheckpoint > 0) await CheckpointAsync(leased, ct)
                    .ConfigureAwait(false);
            }
            catch (ConcurrentWriterException e)
            {
                // Another instance owns the run now: what this one applied is in the journal, which the owner replays.
                LogReleaseLost(logger, run, e.Message);
            }
            finally
            {
                leased.Gate.Release();
            }
            held.TryRemove(run, out _);
            await leased.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<LeasedRun> LoadAsync(string run, RunLease lease, CancellationToken ct)
    {
        var manifest = await store.LoadManifestAsync(run, ct).ConfigureAwait(false);
        var model = new ServerModel(manifest, device);
        try
        {
            var (checkpoint, etag) = await store.LoadLatestAsync(run, ct).ConfigureAwait(false);
            var state = checkpoint?.State ?? new RunState();
            if (checkpoint is not null) model.Load(checkpoint.ServerWeights, checkpoint.OptimizerState);
            var leased = new LeasedRun(manifest, lease, model, state, etag);
            var journal = await store.ReadJournalAsync(run, state.Step, ct).ConfigureAwait(false);
            foreach (var entry in journal) await RunEffects.ReplayAsync(leased, entry, frames, ct).ConfigureAwait(false);
            leased.SinceCheckpoint = journal.Count;
            leased.AppliedSinceCheckpoint = journal.Count;
            LogOpened(logger, run, checkpoint is null ? -1 : checkpoint.State.Step, journal.Count, device, TorchRuntime.Summary);
            return leased;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var leased in held.Values) await leased.DisposeAsync().ConfigureAwait(false);
        held.Clear();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "run {Run}: opened (checkpoint step {Step}, {Replayed} journal entries replayed, device {Device}, "
        + "engine {Engine})")]
    private static partial void LogOpened(ILogger logger, string run, long step, int replayed, torch.Device device, string engine);

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {Run}: not checkpointed on release ({Reason})")]
    private static partial void LogReleaseLost(ILogger logger, string run, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "run {Run}: checkpoint at step {Step}")]
    private static partial void LogCheckpoint(ILogger logger, string run, long step);
}

/// <summary>Kinds of journal entries.</summary>
public static class JournalKinds
{
    public const string Train = "train";
    public const string Chunk = "chunk";
    public const string Done = "done";
    public const string Forward = "forward";
    public const string Backward = "backward";
}
