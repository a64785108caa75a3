using Azure;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// Publishes the hospital's per-epoch aggregates (<see cref="HospitalProgress"/>) to its own container for the operator's
/// `run status`. Best effort: a failed upload is a warning, never a reason to stop training.
/// </summary>
internal static class ProgressPublisher
{
    public static async Task PublishAsync(HospitalRun run, CancellationToken cancellationToken)
    {
        var history = TrainingHistoryFile.Load(run.Folder.HistoryPath);
        var last = history.LastOrDefault();
        var progress = new HospitalProgress(run.Config.HospitalId, run.Config.RunId, last?.Epoch ?? 0, last?.MeanTrainLoss,
            last?.ValidationMetric, last?.ValidationValue, run.State.NextSequence, DateTimeOffset.UtcNow);
        try
        {
            await run.Frames.Storage.Container.GetBlobClient(HospitalProgress.Blob(run.Config.RunId))
                .UploadAsync(BinaryData.FromBytes(progress.ToJson()), overwrite: true, cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException e)
        {
            run.Output.Warn($"could not publish progress for the operator ({e.Status} {e.ErrorCode}); training goes on");
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // A network failure or timeout (the agent's clients leave retries to its own policy): progress is only informational.
            run.Output.Warn($"could not publish progress for the operator ({e.GetType().Name}); training goes on");
        }
    }
}
