using System.Diagnostics;
using System.Text.Json;
using Azure.Storage.Queues.Models;
using Azure.Storage.Queues;
using Microsoft.Extensions.Logging;
using SplitFunctions.Core.Engine;
using SplitFunctions.Core.Protocol;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Core.Training;
using SplitFunctions.Functions.Hosting;

namespace SplitFunctions.Functions.Training;

/// <summary>
/// The server side of split learning, shared by the custom handler and drain mode: validates a `features` message,
/// applies it to its run exactly once, makes the effect durable, then answers the hospital. Anything that cannot be
/// trusted is rejected with a reason (and the hospital told), never trained on, and never stalls other hospitals.
/// </summary>
public sealed partial class TrainingService(RunSessions sessions, FrameIo frames, QueueClient poison, ILogger<TrainingService> logger) : IMessageProcessor
{
    /// <summary>Step timings of the last vanilla step, for the benchmark's latency breakdown.</summary>
    public StepTimings LastStep { get; private set; } = new(0, 0, 0, 0, 0, 0);

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
        if (message.ReplyQueue != StorageNames.RepliesQueue(message.HospitalId))
        {
            return await RejectAsync(message, $"replyQueue '{message.ReplyQueue}' is not hospital '{message.HospitalId}''s queue", cancellationToken).ConfigureAwait(false);
        }

        RunSession? session;
        try
        {
            session = await sessions.OpenAsync(message.RunId, cancellationToken).ConfigureAwait(false);
        }
        catch (RunManifestException e)
        {
            return await RejectAsync(message, e.Message, cancellationToken).ConfigureAwait(false);
        }
        if (session is null) return MessageOutcome.Deferred($"run '{message.RunId}' is being trained by another instance");

        await session.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        var abandon = false;
        try
        {
            if (!session.Manifest.Hospitals.Contains(message.HospitalId, StringComparer.Ordinal))
            {
                return await RejectAsync(message, $"hospital '{message.HospitalId}' is not part of run '{message.RunId}' (manifest lists {string.Join(", ", session.Manifest.Hospitals)})", cancellationToken).ConfigureAwait(false);
            }
            try
            {
                return message.Kind switch
                {
                    FrameKind.Train => await TrainAsync(session, message, cancellationToken).ConfigureAwait(false),
                    FrameKind.Chunk => await IndexChunkAsync(session, message, cancellationToken).ConfigureAwait(false),
                    FrameKind.Done => await CompleteHospitalAsync(session, message, cancellationToken).ConfigureAwait(false),
                    FrameKind.Evaluate => await EvaluateAsync(session, message, cancellationToken).ConfigureAwait(false),
                    _ => await RejectAsync(message, $"unknown message kind '{message.Kind}'", cancellationToken).ConfigureAwait(false),
                };
            }
            catch (ProtocolException e)
            {
                return await RejectAsync(message, e.Message, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TensorShapeException or NonFiniteValueException)
            {
                return await RejectAsync(message, e.Message, cancellationToken).ConfigureAwait(false);
            }
            catch (ConcurrentWriterException e)
            {
                LogConflict(logger, message.RunId, e.Message);
                abandon = true;
                return MessageOutcome.Deferred(e.Message);
            }
        }
        finally
        {
            session.Gate.Release();
            if (abandon) await sessions.AbandonAsync(session).ConfigureAwait(false);
        }
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
        if (message.Kind is FrameKind.Train or FrameKind.Chunk or FrameKind.Evaluate)
        {
            frames.Prefetch(message.RunId, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256, message.KeyId, cancellationToken);
        }
    }

    private async Task<MessageOutcome> TrainAsync(RunSession session, FrameMessage message, CancellationToken ct)
    {
        var manifest = session.Manifest;
        if (manifest.Mode != TrainingMode.Vanilla) return await RejectAsync(message, $"run '{manifest.RunId}' is {manifest.Mode}: per-batch 'train' messages belong to vanilla runs", ct).ConfigureAwait(false);
        if (IsReplay(session, message))
        {
            // Redelivered or replayed: answer from the record, never apply twice (invariant 4).
            var blob = StorageNames.FrameBlob("gradients", message.RunId, message.Sequence);
            // One download gives both the length and the digest the reply announces.
            var stored = (await frames.Container(message.HospitalId).GetBlobClient(blob).DownloadContentAsync(ct).ConfigureAwait(false)).Value.Content;
            var sha256 = SecureFrameCodec.Digest(stored.ToMemory().Span);
            var record = session.State.RecentBatches.LastOrDefault(b => b.Hospital == message.HospitalId && b.Sequence == message.Sequence);
            await ReplyAsync(message, ReplyKind.Gradients, blob, stored.ToMemory().Length, sha256, record?.Loss, null, ct).ConfigureAwait(false);
            return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: replay answered from the record");
        }

        var clock = Stopwatch.StartNew();
        var (tensors, readTimings) = await frames.ReadAsync(message.RunId, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256, message.KeyId, ct).ConfigureAwait(false);
        RequireTrainingFrame(session, tensors);
        var batch = Batch(tensors[0]);
        var computeStart = clock.Elapsed;
        var (loss, gradient) = session.Model.TrainStep(tensors[0].Values, tensors[1].Values, batch);
        var compute = clock.Elapsed - computeStart;
        var written = await frames.WriteAsync(message.RunId, message.HospitalId, message.Sequence, PayloadKind.Gradients, message.KeyId!,
            manifest.FeatureType, [(gradient, tensors[0].Shape)], ct).ConfigureAwait(false);
        var commitStart = clock.Elapsed;

        session.State.Watermarks[message.HospitalId] = message.Sequence;
        session.State.BatchesApplied++;
        session.State.RecordBatch(message.HospitalId, message.Sequence, loss, batch);
        await sessions.CommitAsync(session, Entry(session, message, JournalKinds.Train), ct).ConfigureAwait(false);
        await ReplyAsync(message, ReplyKind.Gradients, written.Blob, written.Length, written.Sha256, loss, null, ct).ConfigureAwait(false);
        LastStep = new StepTimings(readTimings.TransferMs, readTimings.CryptoMs, compute.TotalMilliseconds, written.Timings.CryptoMs, written.Timings.TransferMs,
            (clock.Elapsed - commitStart).TotalMilliseconds);
        return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: step {session.State.BatchesApplied}, loss {loss:F4}");
    }

    private async Task<MessageOutcome> IndexChunkAsync(RunSession session, FrameMessage message, CancellationToken ct)
    {
        if (session.Manifest.Mode != TrainingMode.Temporal) return await RejectAsync(message, $"run '{message.RunId}' is {session.Manifest.Mode}: 'chunk' messages belong to temporal runs", ct).ConfigureAwait(false);
        if (session.State.Done.ContainsKey(message.HospitalId) && !IsReplay(session, message))
        {
            return await RejectAsync(message, $"hospital '{message.HospitalId}' already marked its upload complete; a chunk after 'done' is not accepted", ct).ConfigureAwait(false);
        }
        if (!IsReplay(session, message))
        {
            // Validate now (decrypt, decode, shapes, NaN) so bad data is rejected while the hospital can still hear about it.
            var tensors = (await frames.ReadAsync(message.RunId, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256, message.KeyId, ct).ConfigureAwait(false)).Tensors;
            RequireTrainingFrame(session, tensors);
            session.State.Chunks.Add(new FeatureChunk(message.HospitalId, message.Sequence, message.Blob!, message.Length, message.Sha256!, message.KeyId!));
            session.State.Watermarks[message.HospitalId] = message.Sequence;
            await sessions.CommitAsync(session, Entry(session, message, JournalKinds.Chunk), ct).ConfigureAwait(false);
        }
        await ReplyAsync(message, ReplyKind.Accepted, null, 0, null, null, null, ct).ConfigureAwait(false);
        return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: chunk indexed ({session.State.Chunks.Count} in all)");
    }

    private async Task<MessageOutcome> CompleteHospitalAsync(RunSession session, FrameMessage message, CancellationToken ct)
    {
        var state = session.State;
        if (session.Manifest.Mode != TrainingMode.Temporal) return await RejectAsync(message, $"run '{message.RunId}' is {session.Manifest.Mode}: 'done' messages belong to temporal runs", ct).ConfigureAwait(false);
        var expected = message.ChunkCount ?? 0;
        var indexed = state.Chunks.Count(c => c.Hospital == message.HospitalId);
        if (!state.Done.ContainsKey(message.HospitalId))
        {
            if (indexed < expected) return MessageOutcome.Deferred($"{message.HospitalId}: {indexed} of {expected} chunks indexed so far");
            if (indexed > expected) return await RejectAsync(message, $"hospital '{message.HospitalId}' says it sent {expected} chunks, but {indexed} were indexed", ct).ConfigureAwait(false);
            state.Done[message.HospitalId] = expected;
            state.Watermarks[message.HospitalId] = Math.Max(state.Watermarks.GetValueOrDefault(message.HospitalId, -1), message.Sequence);
            await sessions.CommitAsync(session, Entry(session, message, JournalKinds.Done), ct).ConfigureAwait(false);
            await sessions.CheckpointAsync(session, ct).ConfigureAwait(false);
        }
        if (session.Manifest.Hospitals.Any(h => !state.Done.ContainsKey(h)))
        {
            await ReplyAsync(message, ReplyKind.Accepted, null, 0, null, null, null, ct).ConfigureAwait(false);
            var waiting = string.Join(", ", session.Manifest.Hospitals.Where(h => !state.Done.ContainsKey(h)));
            return MessageOutcome.Completed($"{message.HospitalId} complete; waiting for {waiting}");
        }
        var loss = await TrainTemporalAsync(session, ct).ConfigureAwait(false);
        await ReplyAsync(message, ReplyKind.Accepted, null, 0, null, loss, null, ct).ConfigureAwait(false);
        return MessageOutcome.Completed($"temporal training complete: {state.EpochsCompleted} epochs, final loss {loss:F4}");
    }

    // Algorithm 1: E epochs over the union of every hospital's features, seeded order, a checkpoint per epoch so an
    // interrupted run resumes at the epoch boundary and ends with the same weights.
    private async Task<double> TrainTemporalAsync(RunSession session, CancellationToken ct)
    {
        var state = session.State;
        var manifest = session.Manifest;
        if (state.EpochsCompleted >= manifest.Epochs) return state.Epochs.LastOrDefault()?.Loss ?? double.NaN;
        var union = await LoadUnionAsync(session, ct).ConfigureAwait(false);
        while (state.EpochsCompleted < manifest.Epochs)
        {
            ct.ThrowIfCancellationRequested();
            if (!session.Lease.IsHeld) throw new ConcurrentWriterException($"run '{manifest.RunId}': lease lost during temporal training");
            var clock = Stopwatch.StartNew();
            var epoch = state.EpochsCompleted;
            var (loss, samples) = session.Model.TrainEpoch(union, epoch);
            state.EpochsCompleted++;
            state.BatchesApplied += (samples + manifest.BatchSize - 1) / manifest.BatchSize;
            state.Epochs.Add(new EpochRecord(epoch + 1, loss, samples, clock.Elapsed.TotalSeconds));
            await sessions.CheckpointAsync(session, ct).ConfigureAwait(false);
            LogEpoch(logger, manifest.RunId, epoch + 1, manifest.Epochs, loss, samples / clock.Elapsed.TotalSeconds);
        }
        return state.Epochs[^1].Loss;
    }

    /// <summary>All indexed chunks decrypted into one set, in (hospital, sequence) order so every replay sees the same data.</summary>
    public async Task<TrainingSet> LoadUnionAsync(RunSession session, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(session);
        var features = new List<float>();
        var labels = new List<float>();
        foreach (var chunk in session.State.Chunks.OrderBy(c => c.Hospital, StringComparer.Ordinal).ThenBy(c => c.Sequence))
        {
            var tensors = (await frames.ReadAsync(session.Manifest.RunId, chunk.Hospital, chunk.Sequence, chunk.Blob, chunk.Length, chunk.Sha256, chunk.KeyId, ct).ConfigureAwait(false)).Tensors;
            features.AddRange(tensors[0].Values);
            labels.AddRange(tensors[1].Values);
        }
        return new TrainingSet([.. features], [.. labels], session.Model.CutShape);
    }

    private async Task<MessageOutcome> EvaluateAsync(RunSession session, FrameMessage message, CancellationToken ct)
    {
        var tensors = (await frames.ReadAsync(message.RunId, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256, message.KeyId, ct).ConfigureAwait(false)).Tensors;
        if (tensors.Length != 1) throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"an evaluate frame holds activations only (labels stay at the hospital); it has {tensors.Length} tensors");
        RequireCut(session, tensors[0]);
        var predictions = session.Model.Predict(tensors[0].Values, Batch(tensors[0]));
        var written = await frames.WriteAsync(message.RunId, message.HospitalId, message.Sequence, PayloadKind.Predictions, message.KeyId!,
            SplitFunctions.Core.ElementType.Float32, [(predictions, [Batch(tensors[0]), 1])], ct).ConfigureAwait(false);
        await ReplyAsync(message, ReplyKind.Predictions, written.Blob, written.Length, written.Sha256, null, null, ct).ConfigureAwait(false);
        return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: {Batch(tensors[0])} predictions");
    }

    public async Task PoisonAsync(string messageText, long dequeueCount, string reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messageText);
        var record = new PoisonRecord(reason, dequeueCount, DateTimeOffset.UtcNow,
            messageText.Length <= PoisonRecord.MaxMessageChars ? messageText : messageText[..PoisonRecord.MaxMessageChars]);
        await poison.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await poison.SendMessageAsync(JsonSerializer.Serialize(record, StoreJson.Options), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    private static bool IsReplay(RunSession session, FrameMessage message) =>
        message.Sequence <= session.State.Watermarks.GetValueOrDefault(message.HospitalId, -1);

    private static void RequireTrainingFrame(RunSession session, DecodedTensor[] tensors)
    {
        if (tensors.Length != 2) throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"a training frame holds activations and labels; it has {tensors.Length} tensors");
        RequireCut(session, tensors[0]);
        var labels = tensors[1];
        if (labels.Shape.Length != 2 || labels.Shape[0] != tensors[0].Shape[0] || labels.Shape[1] != 1)
        {
            throw new ProtocolException(ProtocolRejection.ShapeMismatch, $"labels have shape [{string.Join(",", labels.Shape)}]; expected [{tensors[0].Shape[0]},1]");
        }
    }

    private static void RequireCut(RunSession session, DecodedTensor activations)
    {
        var cut = session.Model.CutShape;
        if (activations.Shape.Length != cut.Length + 1 || !activations.Shape.AsSpan(1).SequenceEqual(cut) || activations.Shape[0] < 1)
        {
            throw new ProtocolException(ProtocolRejection.ShapeMismatch,
                $"activations have shape [{string.Join(",", activations.Shape)}]; model '{session.Manifest.Model}' expects [batch,{string.Join(",", cut)}]");
        }
    }

    private static int Batch(DecodedTensor tensor) => checked((int)tensor.Shape[0]);

    private static JournalEntry Entry(RunSession session, FrameMessage message, string kind) =>
        new(session.State.Step, kind, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256, message.KeyId ?? "", message.ChunkCount);

    private async Task<MessageOutcome> RejectAsync(FrameMessage message, string reason, CancellationToken ct)
    {
        // Tell the hospital why, so its agent stops with a clear message instead of waiting for a reply.
        try
        {
            await ReplyAsync(message, ReplyKind.Rejected, null, 0, null, null, reason, ct).ConfigureAwait(false);
        }
        catch (Azure.RequestFailedException e)
        {
            LogReplyFailed(logger, message.HospitalId, e.Message);
        }
        return MessageOutcome.Rejected($"{message.HospitalId}#{message.Sequence} ({message.Kind}, run {message.RunId}): {reason}");
    }

    private async Task ReplyAsync(FrameMessage message, ReplyKind kind, string? blob, long length, string? sha256, double? loss, string? reason, CancellationToken ct)
    {
        var reply = new ReplyMessage
        {
            RunId = message.RunId,
            HospitalId = message.HospitalId,
            Sequence = message.Sequence,
            Kind = kind,
            KeyId = blob is null ? null : message.KeyId,
            Blob = blob,
            Length = length,
            Sha256 = sha256,
            Loss = loss is { } l && double.IsFinite(l) ? l : null,
            Reason = reason,
        };
        var queue = frames.Replies(message.HospitalId);
        await queue.SendMessageAsync(MessageCodec.Serialize(reply), cancellationToken: ct).ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "run {Run}: another writer changed the run ({Reason}); session dropped, message deferred")]
    private static partial void LogConflict(ILogger logger, string run, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "could not tell hospital {Hospital} about a rejection: {Reason}")]
    private static partial void LogReplyFailed(ILogger logger, string hospital, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "run {Run}: temporal epoch {Epoch}/{Epochs} loss {Loss:F4} ({Rate:F0} samples/s)")]
    private static partial void LogEpoch(ILogger logger, string run, int epoch, int epochs, double loss, double rate);
}

/// <summary>Where the time of one vanilla step went, in milliseconds.</summary>
public sealed record StepTimings(double DownloadMs, double DecryptMs, double ComputeMs, double EncryptMs, double UploadMs, double CommitMs);

/// <summary>What goes to `features-poison`: the reason first, then the original message (truncated).</summary>
public sealed record PoisonRecord(string Reason, long DequeueCount, DateTimeOffset At, string Message)
{
    public const int MaxMessageChars = 16 * 1024;
}
