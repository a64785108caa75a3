using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SplitFunctions.Core.Engine;
using SplitFunctions.Core.Protocol;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;

namespace SplitFunctions.Functions.Training;

/// <summary>
/// The training service's entry, shared by both hosts: parses a `features` message, checks it belongs to its run and
/// hospital, takes the run, and hands the message to the handler of its kind; a failure to trust it becomes a rejection
/// (the hospital told, the message poisoned by the host), never a step, and never stalls other hospitals.
/// </summary>
public sealed partial class MessageRouter(
    LeasedRuns sessions, ServerFrameStore frames, VanillaSteps vanilla, UShapedSteps ushaped, TemporalChunks temporal, RemoteEvaluation evaluation, HospitalReplies replies,
    ILogger<MessageRouter> logger) : IMessageProcessor
{
    /// <summary>The router with its handlers, for callers without a container (tests, benchmarks).</summary>
    public static MessageRouter Create(LeasedRuns sessions, ServerFrameStore frames, StepTimeline timeline, ILoggerFactory? loggers = null,
        long temporalWindowBytes = TemporalFeatureStream.DefaultWindowBytes)
    {
        loggers ??= NullLoggerFactory.Instance;
        var replies = new HospitalReplies(frames, loggers.CreateLogger<HospitalReplies>());
        var epochs = new TemporalEpochs(sessions, new TemporalFeatureStream(frames), loggers.CreateLogger<TemporalEpochs>(), temporalWindowBytes);
        return new MessageRouter(sessions, frames, new VanillaSteps(sessions, frames, replies, timeline), new UShapedSteps(sessions, frames, replies), new TemporalChunks(sessions, frames, replies, epochs),
            new RemoteEvaluation(frames, replies), replies, loggers.CreateLogger<MessageRouter>());
    }

    public async Task<MessageOutcome> ProcessAsync(string messageText, long dequeueCount, CancellationToken cancellationToken)
    {
        FrameMessage message;
        try
        {
            message = MessageCodec.ParseFrame(messageText);
        }
        catch (ProtocolException e)
        {
            return MessageOutcome.Rejected(e.Message);
        }
        // Before anything else (the run, a reply): does the message prove the hospital it names? Anyone with add rights
        // on `features` can name any hospital; only that hospital's key makes its MAC. A failure goes to the poison
        // queue with the reason and the named hospital is told nothing (it did not send it).
        if (await AuthenticationFailureAsync(message, cancellationToken).ConfigureAwait(false) is { } forged)
        {
            return MessageOutcome.Rejected($"{message.HospitalId}#{message.Sequence} ({message.Kind}, run {message.RunId}): {forged}; no reply sent");
        }
        if (message.ReplyQueue != StorageNames.RepliesQueue(message.HospitalId))
        {
            return await replies.RejectAsync(message, $"replyQueue '{message.ReplyQueue}' is not hospital '{message.HospitalId}''s queue", cancellationToken).ConfigureAwait(false);
        }

        LeasedRun? session;
        try
        {
            session = await sessions.OpenAsync(message.RunId, cancellationToken).ConfigureAwait(false);
        }
        catch (RunManifestException e)
        {
            return await replies.RejectAsync(message, e.Message, cancellationToken).ConfigureAwait(false);
        }
        if (session is null) return MessageOutcome.Deferred($"run '{message.RunId}' is being trained by another instance");

        await session.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        var abandon = false;
        try
        {
            if (!session.Manifest.Hospitals.Contains(message.HospitalId, StringComparer.Ordinal))
            {
                return await replies.RejectAsync(message, $"hospital '{message.HospitalId}' is not part of run '{message.RunId}' (manifest lists {string.Join(", ", session.Manifest.Hospitals)})", cancellationToken).ConfigureAwait(false);
            }
            try
            {
                return message.Kind switch
                {
                    FrameKind.Train => await vanilla.TrainAsync(session, message, cancellationToken).ConfigureAwait(false),
                    FrameKind.Forward => await ushaped.ForwardAsync(session, message, cancellationToken).ConfigureAwait(false),
                    FrameKind.Backward => await ushaped.BackwardAsync(session, message, cancellationToken).ConfigureAwait(false),
                    FrameKind.Chunk => await temporal.IndexChunkAsync(session, message, cancellationToken).ConfigureAwait(false),
                    FrameKind.Done => await temporal.CompleteHospitalAsync(session, message, cancellationToken).ConfigureAwait(false),
                    FrameKind.Evaluate => await evaluation.EvaluateAsync(session, message, cancellationToken).ConfigureAwait(false),
                    _ => await replies.RejectAsync(message, $"unknown message kind '{message.Kind}'", cancellationToken).ConfigureAwait(false),
                };
            }
            catch (ProtocolException e)
            {
                return await replies.RejectAsync(message, e.Message, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TensorShapeException or NonFiniteValueException)
            {
                return await replies.RejectAsync(message, e.Message, cancellationToken).ConfigureAwait(false);
            }
            catch (ConcurrentWriterException e)
            {
                LogConflict(logger, message.RunId, e.Message);
                abandon = true;
                return MessageOutcome.Deferred(e.Message);
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
            session.Gate.Release();
            if (abandon) await sessions.AbandonAsync(session).ConfigureAwait(false);
        }
    }

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
            : $"the message's MAC does not verify under hospital '{message.HospitalId}''s key '{message.KeyId}': it was not sent by that hospital, or was altered on the way";
    }

    /// <summary>Reads ahead the frame a message points to (drain mode's prefetch); anything wrong with it is left for <see cref="ProcessAsync"/>.</summary>
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
        if (message.Kind is FrameKind.Train or FrameKind.Chunk or FrameKind.Evaluate or FrameKind.Forward)
        {
            frames.Prefetch(message.RunId, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256, message.KeyId, cancellationToken);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {Run}: another writer changed the run ({Reason}); session dropped, message deferred")]
    private static partial void LogConflict(ILogger logger, string run, string reason);
}
