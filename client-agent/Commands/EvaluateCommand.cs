using System.CommandLine;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.ClientAgent.Commands;

/// <summary>`evaluate`: predictions for held-out local data from the function, metrics computed here (labels never leave).</summary>
internal static class EvaluateCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var split = new Option<string>("--split")
        {
            Description = "Which held-out rows to evaluate: test or validation.",
            DefaultValueFactory = _ => "test",
        };
        split.AcceptOnlyFromAmong("test", "validation");
        var noWait = new Option<bool>("--no-wait")
        {
            Description = "Temporal runs: refuse at once (exit code 14) instead of waiting while the server still trains the run's epochs.",
        };
        var poll = new Option<int>("--poll-seconds")
        {
            Description = "Temporal runs: seconds between two questions to the server while it trains (1-600).",
            DefaultValueFactory = _ => 10,
        };
        poll.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 600) r.AddError("--poll-seconds must be 1-600.");
        });
        var command = new Command("evaluate", "Evaluate the run's model on this hospital's held-out data; writes <state>/<run>/evaluation.json. A temporal "
            + "run is evaluated once the server has trained all its epochs (waited for, unless --no-wait).") { split, noWait, poll };
        command.SetAction((parse, cancellationToken) => AgentCli.RunAsync(error, async () =>
        {
            var config = AgentCli.LoadConfiguration(parse);
            var agentOutput = AgentCli.CreateOutput(parse, output, error);
            using var run = await HospitalRun.OpenAsync(config, agentOutput, cancellationToken).ConfigureAwait(false);
            if (run.State.Pending is { Kind: FrameKind.Train or FrameKind.Forward or FrameKind.Backward } pending)
            {
                throw new AgentException(ExitCode.Usage,
                    $"training batch #{pending.Sequence} is still in flight: run `splitfn-agent train --max-batches 1` to complete it, then evaluate.");
            }
            if (run.State.Pending is { } stale)
            {
                run.Commit(run.State with { Pending = null });
                run.Folder.DeletePendingFrame();
                agentOutput.Info($"dropping interrupted {stale.Kind} message #{stale.Sequence}");
            }
            var vanilla = run.Manifest.Mode == TrainingMode.Vanilla;
            var ushaped = run.Manifest.Mode == TrainingMode.UShaped;
            using var client = ClientLayer.Create(run.Manifest, trainable: vanilla, run.ConsortiumSecret);
            using var layers = ushaped ? UShapedLayers.Create(run.Manifest, run.ConsortiumSecret) : null;
            if (layers is not null) UShapedTrainer.Restore(run, layers);
            if (vanilla && run.State.ClientWeights is { } weights) client.Restore(run.Folder.ReadFile(weights), null);
            else if ((vanilla || ushaped) && run.State.ClientWeights is null) agentOutput.Warn("this hospital has not trained yet: evaluating with the run's "
                + "initial client layer");

            var splitName = parse.GetValue(split)!;
            var data = run.Data.Split(splitName);
            if (data.Count == 0) throw new AgentException(ExitCode.Data, $"the {splitName} split of this hospital's data is empty: set "
                + $"data.partition.{splitName}Fraction above 0.");
            var batches = (data.Count + run.Manifest.BatchSize - 1) / run.Manifest.BatchSize;
            // One line per change of the server's progress (an epoch done), not one per question.
            string? lastProgress = null;
            var request = new PredictionRequest(OneModel: true, Wait: !parse.GetValue(noWait), TimeSpan.FromSeconds(parse.GetValue(poll)), progress =>
            {
                var line = progress.Epoch is { } epoch
                    ? $"waiting for the server to finish training: epoch {epoch} of {progress.Epochs}"
                    : $"waiting for the server: {progress.Describe()}";
                if (line != lastProgress) agentOutput.Info(line);
                lastProgress = line;
            });
            var predictions = await agentOutput.TrackAsync($"evaluate {splitName}", batches, 0, async tracker =>
            {
                var batch = 0;
                var clock = System.Diagnostics.Stopwatch.StartNew();
                void OnBatch(int n)
                {
                    tracker.Report(new StepProgress("evaluate", 1, 1, ++batch, batches, null, n / Math.Max(clock.Elapsed.TotalSeconds, 1e-6),
                        run.State.NextSequence - 1));
                    clock.Restart();
                }
                return layers is not null
                    ? await RemotePrediction.PredictAsync(run, layers, data, ReleaseKind.Evaluation, request, OnBatch, cancellationToken).ConfigureAwait(false)
                    : await RemotePrediction.PredictAsync(run, client, data, ReleaseKind.Evaluation, request, OnBatch, cancellationToken).ConfigureAwait(false);
            }).ConfigureAwait(false);
            var report = EvaluationReport.Score(run, splitName, data, predictions.Values)
                with
            { ServerModel = predictions.Model, Privacy = run.State.Releases };
            report.Save(run.Folder.EvaluationPath);
            foreach (var line in report.Describe()) agentOutput.Info(line);
            agentOutput.Info($"written to {run.Folder.EvaluationPath}");
            return ExitCode.Ok;
        }));
        return command;
    }
}
