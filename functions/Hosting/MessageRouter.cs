using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SplitFunctions.Core.CommandLine;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Functions.Hosting;

/// <summary>
/// The server's entry, shared by both hosts: parses a `features` message, checks it belongs to its run and
/// hospital, takes the run, and hands the message to the handler of its kind; a failure to trust it becomes a rejection
/// (the hospital told, the message poisoned by the host), never a step, and never stalls other hospitals.
/// </summary>
public sealed partial class MessageRouter(
    LeasedRuns runs, ServerFrameStore frames, VanillaSteps vanilla, UShapedSteps ushaped, TemporalChunks temporal, RemoteEvaluation evaluation,
        HospitalReplies replies,
    ILogger<MessageRouter> logger) : IMessageProcessor
{
    /// <summary>The router with its handlers, for callers without a container (tests, benchmarks).</summary>
    public static MessageRouter Create(LeasedRuns runs, ServerFrameStore frames, StepTimeline timeline, ILoggerFactory? loggers = null,
        long temporalWindowBytes = TemporalFeatureStream.DefaultWindowBytes, long temporalCacheBytes = DecryptedChunkCache.DefaultBudgetBytes)
    {
        loggers ??= NullLoggerFactory.Instance;
        var replies = new HospitalReplies(frames, loggers.CreateLogger<HospitalReplies>());
        var epochs = new TemporalEpochs(runs, new TemporalFeatureStream(frames, new DecryptedChunkCache(temporalCacheBytes)),
            loggers.CreateLogger<TemporalEpochs>(), temporalWindowBytes);
        return new MessageRouter(runs, frames, new VanillaSteps(runs, frames, replies, timeline), new UShapedSteps(runs, frames, replies),
            new TemporalChunks(runs, frames, replies, epochs),
            new RemoteEvaluation(frames, replies), replies, loggers.CreateLogger<MessageRouter>());
    }

    public async Task<MessageOutcome> ProcessAsync(string messageText, long dequeueCount, CancellationToken cancellationToken) =>
        await (await BeginAsync(messageText, dequeueCount, cancellationToken).ConfigureAwait(false)).Outcome.ConfigureAwait(false);

    /// <summary>
    /// Applies the message under the run's gate and returns as soon as the gate is free again: a vanilla step's sealing,
    /// upload, journal entry and reply continue in <see cref="PendingOutcome.Outcome"/> while the next message of the run
    /// computes. Journal entries stay in step order (each waits for the one before), so the journal still precedes every
    /// reply, and the host deletes the message only after the outcome (invariants 3 and 4).
    /// </summary>
    public async Task<PendingOutcome> BeginAsync(string messageText, long dequeueCount, CancellationToken cancellationToken)
    {
        FrameMessage message;
        try
        {
            message = MessageCodec.ParseFrame(messageText);
        }
        catch (ProtocolException e)
        {
            return Done(MessageOutcome.Rejected(e.Message));
        }
        // Before anything else (the run, a reply): does the message prove the hospital it names? Anyone with add rights
        // on `features` can name any hospital; only that hospital's key makes its MAC. A failure goes to the poison
        // queue with the reason and the named hospital is told nothing (it did not send it).
        if (await AuthenticationFailureAsync(message, cancellationToken).ConfigureAwait(false) is { } forged)
        {
            return Done(MessageOutcome.Rejected($"{message.HospitalId}#{message.Sequence} ({message.Kind}, run {message.RunId}): {forged}; no reply sent"));
        }
        if (message.ReplyQueue != StorageNames.RepliesQueue(message.HospitalId))
        {
            return Done(await replies.RejectAsync(message, $"replyQueue '{message.ReplyQueue}' is not hospital '{message.HospitalId}''s "
                + $"queue", cancellationToken).ConfigureAwait(false));
        }

        while (true)
        {
            LeasedRun? run;
            try
            {
                run = await runs.OpenAsync(message.RunId, cancellationToken).ConfigureAwait(false);
            }
            catch (RunManifestException e)
            {
                return Done(await replies.RejectAsync(message, e.Message, cancellationToken).ConfigureAwait(false));
            }
            if (run is null) return Done(MessageOutcome.Deferred($"run '{message.RunId}' is being trained by another instance"));

            await run.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            // A failed commit of an earlier step closed this run while we waited: open the run again from durable state.
            if (run.IsClosed)
            {
                run.Gate.Release();
                continue;
            }
            return await ApplyAsync(run, message, cancellationToken).ConfigureAwait(false);
        }
    }

    // Under the run's gate (released here): the handler of the message's kind.
    private async Task<PendingOutcome> ApplyAsync(LeasedRun run, FrameMessage message, CancellationToken cancellationToken)
    {
        var abandon = false;
        // A rejection after the handler changed the run in memory (a step whose result is not finite, a reply that cannot
        // be sealed) must not leave that change behind: the run is dropped and reloaded from durable state, which the
        // journal never saw the step in (invariant 9).
        var appliedBefore = run.Applied;
        try
        {
            if (!run.Manifest.Hospitals.Contains(message.HospitalId, StringComparer.Ordinal))
            {
                return Done(await replies.RejectAsync(message, $"hospital '{message.HospitalId}' is not part of run '{message.RunId}' (manifest lists "
                    + $"{string.Join(", ", run.Manifest.Hospitals)})", cancellationToken).ConfigureAwait(false));
            }
            try
            {
                // Every kind but a new vanilla step commits in line: the steps still committing must be journaled first.
                if (message.Kind != FrameKind.Train) await run.PendingCommit.ConfigureAwait(false);
                switch (message.Kind)
                {
                    case FrameKind.Train:
                        return new(FinishAsync(run, await vanilla.TrainAsync(run, message, cancellationToken).ConfigureAwait(false)));
                    case FrameKind.Forward:
                        return Done(await ushaped.ForwardAsync(run, message, cancellationToken).ConfigureAwait(false));
                    case FrameKind.Backward:
                        return Done(await ushaped.BackwardAsync(run, message, cancellationToken).ConfigureAwait(false));
                    case FrameKind.Chunk:
                        return Done(await temporal.IndexChunkAsync(run, message, cancellationToken).ConfigureAwait(false));
                    case FrameKind.Done:
                        return Done(await temporal.CompleteHospitalAsync(run, message, cancellationToken).ConfigureAwait(false));
                    case FrameKind.Evaluate:
                        return Done(await evaluation.EvaluateAsync(run, message, cancellationToken).ConfigureAwait(false));
                    default:
                        return Done(await replies.RejectAsync(message, $"unknown message kind '{message.Kind}'", cancellationToken).ConfigureAwait(false));
                }
            }
            catch (ProtocolException e)
            {
                abandon = run.Applied != appliedBefore;
                return Done(await replies.RejectAsync(message, e.Message, cancellationToken).ConfigureAwait(false));
            }
            catch (Exception e) when (e is TensorShapeException or NonFiniteValueException)
            {
                abandon = run.Applied != appliedBefore;
                return Done(await replies.RejectAsync(message, e.Message, cancellationToken).ConfigureAwait(false));
            }
            catch (EpochDataException e)
            {
                abandon = true;
                return Done(await replies.RejectAsync(message, e.Detail, cancellationToken, forHospital: e.Message).ConfigureAwait(false));
            }
            catch (ConcurrentWriterException e)
            {
                LogConflict(logger, Printable.Escape(message.RunId), Printable.Escape(e.Message));
                abandon = true;
                return Done(MessageOutcome.Deferred(e.Message));
            }
            catch
            {
                // A step may be applied in memory but not journaled: drop the run, the next message reloads durable state.
                abandon = true;
                throw;
            }
        }
        finally
        {
            // Dropped while the gate is still held, so no other message computes on a model being disposed.
            if (abandon) await runs.AbandonAsync(run).ConfigureAwait(false);
            run.Gate.Release();
        }
    }

    // A vanilla step's commit (seal, upload, journal, reply) after the gate is released. If it fails, this step and any
    // computed after it exist in memory only: the run is dropped, and their messages, not deleted, come back and
    // are applied again from durable state.
    private async Task<MessageOutcome> FinishAsync(LeasedRun run, Task<MessageOutcome> committing)
    {
        try
        {
            return await committing.ConfigureAwait(false);
        }
        catch (ConcurrentWriterException e)
        {
            LogConflict(logger, run.Manifest.RunId, Printable.Escape(e.Message));
            await AbandonUnderGateAsync(run).ConfigureAwait(false);
            return MessageOutcome.Deferred(e.Message);
        }
        catch
        {
            await AbandonUnderGateAsync(run).ConfigureAwait(false);
            throw;
        }
    }

    // The next message may be computing on this run: wait for the gate, so the model is never disposed under it.
    private async Task AbandonUnderGateAsync(LeasedRun run)
    {
        await run.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            await runs.AbandonAsync(run).ConfigureAwait(false);
        }
        finally
        {
            run.Gate.Release();
        }
    }

    private static PendingOutcome Done(MessageOutcome outcome) => new(Task.FromResult(outcome));

    private async Task<string?> AuthenticationFailureAsync(FrameMessage message, CancellationToken ct)
    {
        HospitalKey key;
        try
        {
            key = await frames.Keys.GetKeyAsync(message.HospitalId, message.KeyId, ct).ConfigureAwait(false);
        }
        catch (ProtocolException e)
        {
            return $"the message names key '{message.KeyId}' of hospital '{message.HospitalId}', which the server does not hold ({e.Rejection})";
        }
        return MessageAuthentication.Verify(message, key)
            ? null
            : $"the message's MAC does not verify under hospital '{message.HospitalId}''s key '{message.KeyId}': it was not sent by that hospital, or was "
                + $"altered on the way";
    }

    /// <summary>
    /// Reads ahead the frame a message points to (drain mode's prefetch); anything wrong with it is left for
    /// <see cref="ProcessAsync"/>. Only for a run this instance already holds (its bounds are known), and only once the
    /// message's MAC verifies: a forged message queued behind a valid one costs no download (invariant 10).
    /// </summary>
    public void Prefetch(string messageText, CancellationToken cancellationToken)
    {
        FrameMessage message;
        try
        {
            message = MessageCodec.ParseFrame(messageText);
        }
        catch (ProtocolException)
        {
            return;
        }
        // A frame inside its message has nothing to download ahead.
        if (message.Inline is null && message.Kind is FrameKind.Train or FrameKind.Chunk or FrameKind.Evaluate or FrameKind.Forward
            && runs.Held(message.RunId) is { } run)
        {
            frames.Prefetch(message.RunId, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256, message.KeyId,
                TrainingFrames.Bounds(run, message.Kind), async ct => await AuthenticationFailureAsync(message, ct).ConfigureAwait(false) is null,
                cancellationToken);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {Run}: another writer changed the run ({Reason}); run dropped, message deferred")]
    private static partial void LogConflict(ILogger logger, string run, string reason);
}
