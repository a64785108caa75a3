using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Wire;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>Predictions for local samples and the one server model that made them.</summary>
public sealed record RemotePredictions(float[] Values, ModelVersion Model);

/// <summary>
/// How an evaluation treats the server's model. <see cref="OneModel"/>: every batch from the same model (the evaluate
/// command), else the evaluation starts again, and fails after <see cref="MaxRestarts"/>. <see cref="Wait"/>: a temporal run
/// still training is waited for (<see cref="OnWaiting"/> hears its progress), otherwise refused at once.
/// </summary>
public sealed record PredictionRequest(bool OneModel, bool Wait, TimeSpan PollInterval, Action<ModelVersion>? OnWaiting)
{
    /// <summary>Restarts of an evaluation whose model changed under it before it fails.</summary>
    public const int MaxRestarts = 3;

    /// <summary>A validation during training: a progress signal on the models being trained (they change between batches in vanilla mode).</summary>
    public static PredictionRequest DuringTraining { get; } = new(false, false, TimeSpan.Zero, null);
}

/// <summary>
/// Predictions for local samples: client forward here (U-shaped: the head), `evaluate` frames with activations only
/// (labels never leave the hospital), the function's answer back: vanilla's `predictions`, or U-shaped's server outputs
/// that the tail here turns into predictions (which then never leave the hospital either). Each message takes a
/// sequence number that is persisted before it is sent. Every answer names the model that made it; an evaluation never
/// mixes answers of two models. Every pass sends the samples in a fresh order from the hospital's secret (never the
/// data's order, which would let the server line up a patient's views across passes), and counts as one release of each
/// sample (<see cref="ReleaseBudget"/>).
/// </summary>
public static class RemotePrediction
{
    public static Task<RemotePredictions> PredictAsync(HospitalRun run, ClientLayer client, TrainingSet data, ReleaseKind kind,
        PredictionRequest request, Action<int>? onBatch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(data);
        var width = run.Manifest.ModelDefinition.OutputWidth;
        return PredictAsync(run, client, data, kind, ReplyKind.Predictions, (tensors, n, sequence) =>
        {
            if (tensors.Length != 1 || tensors[0].Shape is not [var rows, var columns] || rows != n || columns != width)
            {
                throw new AgentException(ExitCode.Protocol, $"predictions #{sequence} have shape "
                    + $"[{string.Join(",", tensors.Select(t => $"[{string.Join(",", t.Shape)}]"))}]; expected one [{n},{width}] tensor.");
            }
            return tensors[0].Values;
        }, request, onBatch, cancellationToken);
    }

    public static Task<RemotePredictions> PredictAsync(HospitalRun run, UShapedLayers layers, TrainingSet data, ReleaseKind kind,
        PredictionRequest request, Action<int>? onBatch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(data);
        return PredictAsync(run, layers.HeadLayer, data, kind, ReplyKind.Outputs,
            (outputs, n, sequence) => layers.Predict(outputs[0].Values, UShapedTrainer.RequireOutputs(outputs, n, sequence, layers)), request, onBatch,
                cancellationToken);
    }

    private static async Task<RemotePredictions> PredictAsync(HospitalRun run, ClientLayer client, TrainingSet data, ReleaseKind kind, ReplyKind answer,
        Func<DecodedTensor[], int, long, float[]> toPredictions, PredictionRequest request, Action<int>? onBatch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var manifest = run.Manifest;
        // A vector per sample: one value, or K logits (multi-class, multi-label).
        var width = manifest.ModelDefinition.OutputWidth;
        var predictions = new float[data.Count * width];
        var batchSize = manifest.BatchSize;
        // Keyed by the pass's first sequence number: a fresh order per pass, which only this hospital can compute.
        var order = run.OrderSecret.Order(data.Count, manifest.RunId, kind.ToString(), run.State.NextSequence);
        ModelVersion? model = null;
        var restarts = 0;
        for (var start = 0; start < data.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(batchSize, data.Count - start);
            var state = run.State;
            var releases = start == 0 ? ReleaseBudget.Count(run, kind) : state.Releases;
            var sequence = state.NextSequence;
            FeatureFrame frame;
            using (var activations = client.Forward(data, order.AsSpan(start, n), train: false, out _))
            {
                frame = ActivationFrames.Seal(run, sequence, activations);
            }
            var pending = PendingFrame.For(sequence, FrameKind.Evaluate, frame);
            run.Folder.WritePendingFrame(frame.Bytes);
            run.Commit(state with { Pending = pending, NextSequence = sequence + 1, Releases = releases });

            var reply = await SendUntilReadyAsync(run, pending, frame.Bytes, request, cancellationToken).ConfigureAwait(false);
            var version = reply.Reply.Model ?? throw new AgentException(ExitCode.Protocol, $"the function's answer to evaluation message #{sequence} does not "
                + $"name the model that made it: the function runs an older SplitFunctions release; run the same release at the hospital and in the cloud.");
            if (model is not null && !model.SameModel(version) && request.OneModel)
            {
                // The model moved on between two batches (vanilla and U-shaped runs train while others evaluate): scores of
                // two models in one evaluation would describe neither, so the evaluation starts again on the newer one.
                Finish(run);
                await run.Frames.DeleteAsync(reply.Message, cancellationToken).ConfigureAwait(false);
                if (++restarts > PredictionRequest.MaxRestarts)
                {
                    throw new AgentException(ExitCode.ModelChanged, $"the server's model changed during this evaluation {restarts} times ({model.Describe()}, "
                        + $"then {version.Describe()}): other hospitals are still training it; evaluate once every hospital has finished training.");
                }
                run.Output.Info($"the server's model changed during this evaluation ({model.Describe()}, then {version.Describe()}); starting it again");
                model = null;
                start = -batchSize;
                continue;
            }
            model ??= version;
            if (!request.OneModel) model = version;
            var tensors = await ReplyFrames.ReadAsync(run, reply, answer, cancellationToken).ConfigureAwait(false);
            var batchPredictions = toPredictions(tensors, n, sequence);
            for (var i = 0; i < n; i++) batchPredictions.AsSpan(i * width, width).CopyTo(predictions.AsSpan(order[start + i] * width, width));
            Finish(run);
            await run.Frames.DeleteAsync(reply.Message, cancellationToken).ConfigureAwait(false);
            onBatch?.Invoke(n);
        }
        // An empty set asks nothing of the server; the caller refuses it before (the evaluate command) or skips it (validation).
        return new RemotePredictions(predictions, model ?? throw new AgentException(ExitCode.Data, "there are no samples to evaluate."));
    }

    // The batch's message is answered: nothing is pending any more.
    private static void Finish(HospitalRun run)
    {
        run.Commit(run.State with { Pending = null });
        run.Folder.DeletePendingFrame();
    }

    // Sends the evaluation message and returns its answer; a `notready` answer (a temporal run still training) is waited
    // out by asking again with the same message (no answer was stored for it), or refused at once without waiting.
    private static async Task<ReceivedReply> SendUntilReadyAsync(HospitalRun run, PendingFrame pending, byte[] bytes, PredictionRequest request,
        CancellationToken cancellationToken)
    {
        while (true)
        {
            await run.Frames.SendAsync(pending, bytes, cancellationToken).ConfigureAwait(false);
            var reply = await run.Frames.AwaitReplyAsync(pending.Sequence, cancellationToken).ConfigureAwait(false);
            if (reply.Reply.Kind == ReplyKind.Rejected) throw await run.RejectedAsync(reply, cancellationToken).ConfigureAwait(false);
            if (reply.Reply.Kind != ReplyKind.NotReady) return reply;
            await run.Frames.DeleteAsync(reply.Message, cancellationToken).ConfigureAwait(false);
            var progress = reply.Reply.Model!;
            if (!request.Wait)
            {
                Finish(run);
                throw new AgentException(ExitCode.NotReady, $"the server is still training this run ({progress.Describe()}): nothing was evaluated; evaluate "
                    + $"without --no-wait to wait for the end of training, or later.");
            }
            request.OnWaiting?.Invoke(progress);
            await Task.Delay(request.PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }
}
