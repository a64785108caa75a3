using System.Diagnostics;
using System.Globalization;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Wire;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// Pipelined vanilla training (manifest pipelineDepth, docs/agent.md "Pipelined training"): up to depth batches of the
/// epoch in flight at once, so the round trips of later batches overlap the wait for the oldest. Each forward runs on a
/// stash of the weights it used (<see cref="ClientLayer.ForwardStashed"/>), so each backward is exact for its own forward,
/// and its gradient is applied to the live weights, which have moved on by the batches applied meanwhile (PipeDream's
/// weight stashing: at most depth - 1 steps stale). Batches are applied in sequence order; the pipeline drains at each
/// epoch's end, so validation, history and the release count see the epoch's final weights as in synchronous training.
/// <para>
/// Crash-safe ordering per batch: (1) forward, seal, save the frame under its sequence and commit the state with the
/// batch appended to <see cref="AgentState.InFlight"/> (its sequence taken, the weight file its forward used named);
/// (2) send; (3) oldest first: await the reply, apply it through the batch's own forward, write the new weights and
/// commit the state with the batch out of InFlight and the cursor past it; (4) delete its frame, the weights no batch
/// in flight needs and the reply. A restart recomputes every batch in flight with the weights its forward used and
/// re-sends it under the same sequence and bytes; the function answers one it applied from its record, so no batch is
/// lost or applied twice.
/// </para>
/// </summary>
internal sealed class PipelinedSteps(HospitalRun run, ClientLayer client, EpochBatches batches, int configuredDepth, CancellationToken cancellationToken)
{
    /// <summary>The manifest's pipelineDepth that lets the agent choose (<see cref="Depth"/>).</summary>
    public const int Automatic = 0;

    /// <summary>The deepest pipeline the agent chooses by itself (the manifest may set up to <see cref="RunManifest.MaxPipelineDepth"/>).</summary>
    public const int MaxAutomaticDepth = 8;

    private readonly List<Slot> slots = [];
    private Task deletes = Task.CompletedTask;
    // Automatic depth: smoothed round trip of a batch (send to gradient downloaded) and the agent's own time per batch.
    private double roundTripMs;
    private double busyMs;

    /// <summary>
    /// Batches kept in flight: the manifest's, or (automatic) ceil(round trip / the agent's time per batch) + 1 from what
    /// this session measured, between 2 and <see cref="MaxAutomaticDepth"/>.
    /// </summary>
    public int Depth { get; private set; } = configuredDepth == Automatic ? 2 : configuredDepth;

    /// <summary>One batch applied: the batches in flight at a restart re-sent first, the pipeline filled, the oldest applied.</summary>
    public async Task StepAsync(IProgressTracker tracker, Func<int, bool> mayStart)
    {
        ArgumentNullException.ThrowIfNull(tracker);
        ArgumentNullException.ThrowIfNull(mayStart);
        if (slots.Count == 0 && run.State.InFlight is { Count: > 0 } inFlight) Resume(inFlight);
        while (slots.Count < Depth && run.State.Batch + slots.Count < batches.PerEpoch && (slots.Count == 0 || mayStart(slots.Count)))
        {
            Start(run.State.Epoch, run.State.Batch + slots.Count);
        }

        var head = slots[0];
        var reply = await head.Reply.ConfigureAwait(false);
        if (reply.Reply.Kind == ReplyKind.Rejected) throw await run.RejectedAsync(reply, cancellationToken).ConfigureAwait(false);
        var tensors = await head.Frame.ConfigureAwait(false) ?? throw new InvalidOperationException("a gradient reply without its frame");
        var busy = Stopwatch.StartNew();
        var pending = head.Pending;
        var shape = head.Stash.Activations.shape;
        await GradientStep.ApplyAsync(run, client, gradient => client.ApplyStashedGradient(head.Stash, gradient), shape, pending, reply, tensors,
            pending.Epoch, pending.Batch, head.Rows, batches.PerEpoch, state => state with { InFlight = Rest(state, pending.Sequence) },
            () => run.Folder.DeleteInFlightFrames(run.State), tracker, head.Clock, cancellationToken).ConfigureAwait(false);
        slots.RemoveAt(0);
        // Committed: the reply's delete travels while the next batches compute (deletes run one after another).
        var before = deletes;
        deletes = DeleteAfterAsync(before, reply);
        GradientStep.Report(run, pending, pending.Epoch, pending.Batch, head.Rows, batches.PerEpoch, reply, tracker, head.Clock);
        Measure(head, head.BusyMs + busy.Elapsed.TotalMilliseconds);
        // Before a pause, a validation or the end nothing of this session is left undeleted.
        if (slots.Count == 0) await deletes.ConfigureAwait(false);
    }

    private static List<PendingFrame>? Rest(AgentState state, long applied)
    {
        var rest = (state.InFlight ?? []).Where(p => p.Sequence != applied).ToList();
        return rest.Count == 0 ? null : rest;
    }

    // (1) and (2) for the next batch of the epoch.
    private void Start(int epoch, int batch)
    {
        var clock = Stopwatch.StartNew();
        var state = run.State;
        if (state.ClientWeights is null)
        {
            // A restart recomputes a forward from the weights it used: the initial ones get a file too.
            var (weights, optimizer) = run.Folder.WriteWeights(state.ClientSteps, client.Network.SaveState(), client.Optimizer!.SaveState());
            run.Commit(state with { ClientWeights = weights, OptimizerState = optimizer });
            state = run.State;
        }
        var rows = batches.Rows(epoch, batch);
        var stash = client.ForwardStashed(run.Data.Train, rows.AsSpan(), out var targets, augmentation: run.Augmentation?.ForEpoch(epoch));
        try
        {
            // The first batch of an epoch releases a new pass: counted (and checked against the budget) before it is sealed.
            var releases = ReleaseBudget.BeginsTrainingPass(state, epoch) ? ReleaseBudget.Count(run, ReleaseKind.Training) : state.Releases;
            var sequence = state.NextSequence;
            var frame = ActivationFrames.Seal(run, sequence, stash.Activations, targets);
            var pending = PendingFrame.For(sequence, FrameKind.Train, frame) with
            {
                Epoch = epoch,
                Batch = batch,
                ForwardSteps = state.ClientSteps,
                ForwardWeights = state.ClientWeights,
            };
            run.Folder.WriteInFlightFrame(sequence, frame.Bytes);
            run.Commit(state with { InFlight = [.. state.InFlight ?? [], pending], NextSequence = sequence + 1, Releases = releases });
            Launch(pending, stash, rows.Count, frame.Bytes, clock);
        }
        catch
        {
            client.Release(stash);
            throw;
        }
    }

    // A restart: every batch in flight recomputed with the weights its forward used and re-sent as it was.
    private void Resume(IReadOnlyList<PendingFrame> inFlight)
    {
        var state = run.State;
        run.Output.Info(string.Create(CultureInfo.InvariantCulture,
            $"resuming: re-sending {inFlight.Count} pipelined batches in flight (messages #{inFlight[0].Sequence} to #{inFlight[^1].Sequence}, epoch "
                + $"{state.Epoch + 1} from batch {state.Batch + 1})"));
        run.Folder.DeleteInFlightFrames(state);
        for (var i = 0; i < inFlight.Count; i++)
        {
            var pending = inFlight[i];
            if (pending.Epoch != state.Epoch || pending.Batch != state.Batch + i || pending.ForwardWeights is null)
            {
                throw new AgentException(ExitCode.StateCorrupt, string.Create(CultureInfo.InvariantCulture,
                    $"local state lists pipelined batch #{pending.Sequence} (epoch {pending.Epoch + 1}, batch {pending.Batch + 1}) in flight where batch "
                        + $"{state.Batch + i + 1} of epoch {state.Epoch + 1} with its weights is due. Move {run.Folder.RunFolder} aside to restart this "
                        + $"hospital's part of the run."));
            }
            var clock = Stopwatch.StartNew();
            var rows = batches.Rows(pending.Epoch, pending.Batch);
            var stash = client.ForwardStashed(run.Data.Train, rows.AsSpan(), out _, run.Folder.ReadFile(pending.ForwardWeights),
                run.Augmentation?.ForEpoch(pending.Epoch));
            Launch(pending, stash, rows.Count, run.Folder.ReadInFlightFrame(pending.Sequence), clock);
        }
    }

    private void Launch(PendingFrame pending, StashedForward stash, int rows, byte[] sealedBytes, Stopwatch clock)
    {
        var previous = slots.Count > 0 ? slots[^1].Reply : Task.FromResult<ReceivedReply>(null!);
        var send = run.Frames.SendAsync(pending, sealedBytes, cancellationToken);
        var launched = Stopwatch.GetTimestamp();
        var reply = ReceiveAsync(send, previous, pending.Sequence);
        var slot = new Slot(pending, stash, rows, clock, reply, clock.Elapsed.TotalMilliseconds);
        slot.Frame = DownloadAsync(slot, reply, launched);
        slots.Add(slot);
    }

    private async Task<ReceivedReply> ReceiveAsync(Task send, Task previous, long sequence)
    {
        await send.ConfigureAwait(false);
        // One look at the reply queue at a time, oldest sequence first: a later batch's reply met on the way is held for it.
        try
        {
            await previous.ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // The earlier batch's own slot reports its failure.
        }
        return await run.Frames.AwaitReplyAsync(sequence, cancellationToken).ConfigureAwait(false);
    }

    // The gradient's frame is downloaded and opened as soon as its reply is in, beside the other batches' downloads.
    private async Task<DecodedTensor[]?> DownloadAsync(Slot slot, Task<ReceivedReply> received, long launched)
    {
        var reply = await received.ConfigureAwait(false);
        if (reply.Reply.Kind == ReplyKind.Rejected) return null;
        var tensors = await ReplyFrames.ReadAsync(run, reply, ReplyKind.Gradients, cancellationToken).ConfigureAwait(false);
        slot.RoundTripMs = Stopwatch.GetElapsedTime(launched).TotalMilliseconds;
        return tensors;
    }

    private async Task DeleteAfterAsync(Task before, ReceivedReply reply)
    {
        await before.ConfigureAwait(false);
        await run.Frames.DeleteAsync(reply.Message, cancellationToken).ConfigureAwait(false);
    }

    private void Measure(Slot slot, double busy)
    {
        if (configuredDepth != Automatic || slot.RoundTripMs <= 0) return;
        const double Weight = 0.2;
        roundTripMs = roundTripMs == 0 ? slot.RoundTripMs : (1 - Weight) * roundTripMs + Weight * slot.RoundTripMs;
        busyMs = busyMs == 0 ? busy : (1 - Weight) * busyMs + Weight * busy;
        var depth = Math.Clamp((int)Math.Ceiling(roundTripMs / Math.Max(busyMs, 1)) + 1, 2, MaxAutomaticDepth);
        if (depth != Depth)
        {
            run.Output.Info(string.Create(CultureInfo.InvariantCulture,
                $"pipeline depth {depth}: a batch's round trip takes {roundTripMs:F0} ms, the agent's own work on it {busyMs:F0} ms"));
            Depth = depth;
        }
    }

    private sealed class Slot(PendingFrame pending, StashedForward stash, int rows, Stopwatch clock, Task<ReceivedReply> reply, double busyMs)
    {
        public PendingFrame Pending { get; } = pending;
        public StashedForward Stash { get; } = stash;
        public int Rows { get; } = rows;
        public Stopwatch Clock { get; } = clock;
        public Task<ReceivedReply> Reply { get; } = reply;
        public Task<DecodedTensor[]?> Frame { get; set; } = Task.FromResult<DecodedTensor[]?>(null);
        public double BusyMs { get; } = busyMs;
        public double RoundTripMs { get; set; }
    }
}
