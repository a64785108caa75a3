using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Functions.Steps;

/// <summary>
/// Evaluation at the hospital: activations in, the server layers' predictions sealed back (labels and metrics stay at the
/// hospital), each answer naming the model that made it (<see cref="ModelVersion"/>). A temporal run is evaluated only
/// once its last epoch is trained: before that the hospital hears `notready` with the epoch the server is at.
/// </summary>
public sealed class RemoteEvaluation(ServerFrameStore frames, HospitalReplies replies)
{
    /// <summary>The model the run holds now: mode, journal step, temporal epoch, newest checkpoint, and whether training is over.</summary>
    public static ModelVersion VersionOf(LeasedRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var temporal = run.Manifest.Mode == TrainingMode.Temporal;
        var epoch = Math.Min(run.State.EpochsCompleted, run.Manifest.Epochs);
        return new ModelVersion
        {
            Mode = run.Manifest.Mode,
            Step = run.State.Step,
            Epoch = temporal ? epoch : null,
            Epochs = temporal ? run.Manifest.Epochs : null,
            Checkpoint = run.State.CheckpointNumber,
            Final = temporal && epoch >= run.Manifest.Epochs,
        };
    }

    public async Task<MessageOutcome> EvaluateAsync(LeasedRun run, FrameMessage message, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(message);
        // U-shaped: the body's outputs go back and the hospital's tail makes the predictions (none cross the wire).
        var ushaped = run.Manifest.Mode == TrainingMode.UShaped;
        var (kind, replyKind) = ushaped ? (PayloadKind.ServerOutputs, ReplyKind.Outputs) : (PayloadKind.Predictions, ReplyKind.Predictions);
        var what = ushaped ? "server outputs" : "predictions";
        // Not journaled (nothing is applied), so a redelivered or duplicated request finds its answer as a blob, with the
        // version of the model that made it (the model may have moved on since).
        if (await frames.TryReadAnswerAsync(message.RunId, message.HospitalId, message.Sequence, kind, ct).ConfigureAwait(false) is { } answered)
        {
            if (answered.Model is null)
            {
                return await replies.RejectAsync(message, $"the {what} for evaluation message #{message.Sequence} were written by an earlier release that "
                    + $"did not record their model; evaluate again (the agent's next evaluation uses new sequence numbers)", ct).ConfigureAwait(false);
            }
            await replies.SendAsync(message, replyKind, answered.Blob, answered.Length, answered.Sha256, null, null, ct, answered.Model).ConfigureAwait(false);
            return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: repeated evaluation answered with the {what} already sent "
                + $"({answered.Model.Describe()})");
        }
        var version = VersionOf(run);
        // A temporal model is the product of all E epochs: scoring one in the middle of them measures an unfinished model,
        // so the hospital hears how far training is (no frame is read) and asks again.
        if (version.Mode == TrainingMode.Temporal && !version.Final)
        {
            await replies.SendAsync(message, ReplyKind.NotReady, null, 0, null, null, null, ct, version).ConfigureAwait(false);
            return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: evaluation not ready ({version.Describe()}, "
                + $"{run.State.Done.Count} of {run.Manifest.Hospitals.Count} hospitals done)");
        }
        var activations = await TrainingFrames.ReadActivationsAsync(frames, run, message, "an evaluate frame holds activations only", ct).ConfigureAwait(false);
        var batch = TrainingFrames.Batch(activations);
        var predictions = run.Model.Predict(activations.Values, batch);
        var written = await frames.WriteOnceAsync(message.RunId, message.HospitalId, message.Sequence, kind, message.KeyId!, ElementType.Float32,
            [(predictions, [batch, .. run.Model.OutputShape])], version, ct).ConfigureAwait(false);
        var model = written.Model ?? version;
        await replies.SendAsync(message, replyKind, written.Blob, written.Length, written.Sha256, null, null, ct, model).ConfigureAwait(false);
        return MessageOutcome.Completed($"{message.HospitalId}#{message.Sequence}: {batch} {what} ({model.Describe()})");
    }
}
