using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>Evaluation at the hospital: activations in, the server layers' predictions sealed back (labels and metrics stay at the hospital).</summary>
public sealed class RemoteEvaluation(ServerFrameStore frames, HospitalReplies replies)
{
    public async Task<MessageOutcome> EvaluateAsync(LeasedRun run, FrameMessage message, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(message);
        // U-shaped: the body's outputs go back and the hospital's tail makes the predictions (none cross the wire).
        var ushaped = run.Manifest.Mode == SplitFunctions.Core.Runs.TrainingMode.UShaped;
        var (kind, replyKind) = ushaped ? (PayloadKind.ServerOutputs, ReplyKind.Outputs) : (PayloadKind.Predictions, ReplyKind.Predictions);
        // Not journaled (nothing is applied), so a redelivered or duplicated request finds its answer as a blob.
        if (await frames.TryReadWrittenAsync(message.RunId, message.HospitalId, message.Sequence, kind, ct).ConfigureAwait(false) is { } answered)
        {
            await replies.SendAsync(message, replyKind, answered.Blob, answered.Length, answered.Sha256, null, null, ct).ConfigureAwait(false);
            return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: repeated evaluation answered with the "
                + $"{(ushaped ? "server outputs" : "predictions")} already sent");
        }
        var activations = await TrainingFrames.ReadActivationsAsync(frames, run, message, "an evaluate frame holds activations only", ct).ConfigureAwait(false);
        var batch = TrainingFrames.Batch(activations);
        var predictions = run.Model.Predict(activations.Values, batch);
        var written = await frames.WriteOnceAsync(message.RunId, message.HospitalId, message.Sequence, kind, message.KeyId!,
            SplitFunctions.Core.Contract.ElementType.Float32, [(predictions, [batch, .. run.Model.OutputShape])], ct).ConfigureAwait(false);
        await replies.SendAsync(message, replyKind, written.Blob, written.Length, written.Sha256, null, null, ct).ConfigureAwait(false);
        return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: {batch} {(ushaped ? "server outputs" : "predictions")}");
    }
}
