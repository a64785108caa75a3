using System.Diagnostics;
using SplitFunctions.Core.Protocol;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;

namespace SplitFunctions.Functions.Training;

/// <summary>
/// The vanilla split-learning step: a hospital's activations and labels in, the server layers trained, dL/dA sealed back
/// to the hospital, the journal entry written before the reply. A redelivered step is answered from its stored gradient.
/// </summary>
public sealed class VanillaSteps(LeasedRuns runs, ServerFrameStore frames, HospitalReplies replies, StepTimeline timeline)
{
    public async Task<MessageOutcome> TrainAsync(LeasedRun session, FrameMessage message, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(message);
        var manifest = session.Manifest;
        if (manifest.Mode != TrainingMode.Vanilla) return await replies.RejectAsync(message, $"run '{manifest.RunId}' is {manifest.Mode}: per-batch 'train' messages belong to vanilla runs", ct).ConfigureAwait(false);
        if (RunEffects.IsApplied(session, message))
        {
            // Redelivered or replayed: answer from the record, never apply twice (invariant 4).
            var blob = StorageNames.FrameBlob("gradients", message.RunId, message.Sequence);
            // One download gives both the length and the digest the reply announces.
            var stored = await frames.Container(message.HospitalId).GetBlobClient(blob).DownloadContentAsync(cancellationToken: ct).ConfigureAwait(false);
            var sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stored.ToMemory().Span));
            var record = session.State.RecentBatches.LastOrDefault(b => b.Hospital == message.HospitalId && b.Sequence == message.Sequence);
            await replies.SendAsync(message, ReplyKind.Gradients, blob, stored.ToMemory().Length, sha256, record?.Loss, null, ct).ConfigureAwait(false);
            return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: replay answered from the record");
        }

        var clock = Stopwatch.StartNew();
        var (tensors, readTimings) = await frames.ReadAsync(message.RunId, message.HospitalId, message.Sequence, message.Blob, message.Length, message.Sha256, message.KeyId, ct).ConfigureAwait(false);
        TrainingFrames.RequireTrainingFrame(session, tensors);
        var entry = RunEffects.Entry(session, message, JournalKinds.Train);
        var computeStart = clock.Elapsed;
        var (loss, gradient) = RunEffects.ApplyTrain(session, message.HospitalId, message.Sequence, tensors);
        var compute = clock.Elapsed - computeStart;
        // Until the journal entry exists the step is in memory only: a failure from here drops the run (MessageRouter).
        var written = await frames.WriteAsync(message.RunId, message.HospitalId, message.Sequence, PayloadKind.Gradients, message.KeyId!,
            manifest.FeatureType, [(gradient, tensors[0].Shape)], ct).ConfigureAwait(false);
        var commitStart = clock.Elapsed;
        await runs.CommitAsync(session, entry, ct).ConfigureAwait(false);
        await replies.SendAsync(message, ReplyKind.Gradients, written.Blob, written.Length, written.Sha256, loss, null, ct).ConfigureAwait(false);
        timeline.Record(new StepTimings(readTimings.TransferMs, readTimings.CryptoMs, compute.TotalMilliseconds, written.Timings.CryptoMs, written.Timings.TransferMs,
            (clock.Elapsed - commitStart).TotalMilliseconds));
        return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: step {session.State.BatchesApplied}, loss {loss:F4}");
    }
}
