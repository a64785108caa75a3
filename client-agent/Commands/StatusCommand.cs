using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Storage;
using SplitFunctions.ClientAgent.Training;

namespace SplitFunctions.ClientAgent.Commands;

/// <summary>`status`: local progress (read without taking the lock, so it works while an agent trains) and the reply queue's length.</summary>
internal static class StatusCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text." };
        var command = new Command("status", "Show local progress (epoch, batch, sequence, pending message, history) and the reply queue length.") { json };
        command.SetAction((parse, cancellationToken) => AgentCli.RunAsync(error, async () =>
        {
            var config = AgentCli.LoadConfiguration(parse);
            var state = StateFolder.Peek(config.StateFolder, config.RunId);
            var history = TrainingHistoryFile.Load(Path.Combine(config.StateFolder, config.RunId, "history.json"));
            var running = StateLock.IsHeld(config.StateFolder);
            var evaluation = ReadEvaluation(Path.Combine(config.StateFolder, config.RunId, "evaluation.json"));
            string replies;
            try
            {
                var storage = HospitalStorage.Create(config);
                var resilience = new StorageResilience(TimeSpan.FromSeconds(5), attemptTimeout: TimeSpan.FromSeconds(5), maxDelay: TimeSpan.FromSeconds(1));
                var properties = await resilience.RunAsync("read the reply queue "
                    + "length", ct => storage.Replies.GetPropertiesAsync(ct), cancellationToken).ConfigureAwait(false);
                replies = properties.Value.ApproximateMessagesCount.ToString(CultureInfo.InvariantCulture);
            }
            catch (AgentException e)
            {
                replies = $"unknown ({e.Code}: {e.Message})";
            }
            if (parse.GetValue(json))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    config.HospitalId,
                    config.RunId,
                    AgentRunning = running,
                    state?.Releases.Epsilon,
                    state?.Releases.Delta,
                    config.Privacy.MaxEpsilon,
                    State = state,
                    History = history,
                    Evaluation = evaluation,
                    ReplyQueueLength = replies
                },
                    StateJson.Options)).ConfigureAwait(false);
                return ExitCode.Ok;
            }
            await output.WriteLineAsync($"hospital {config.HospitalId}, run {config.RunId}, state "
                + $"{Path.Combine(config.StateFolder, config.RunId)}").ConfigureAwait(false);
            await output.WriteLineAsync($"agent running now: {(running ? "yes" : "no")}").ConfigureAwait(false);
            if (state is null)
            {
                await output.WriteLineAsync("no local progress yet (train has not started)").ConfigureAwait(false);
            }
            else
            {
                var s = state;
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"mode {s.Mode}, model {s.Model}: epoch {s.Epoch + 1} (0 done = {s.Epoch}), next batch {s.Batch + 1}, client steps {s.ClientSteps}, next "
                        + $"sequence {s.NextSequence}")).ConfigureAwait(false);
                if (s.Mode == "Temporal") await output.WriteLineAsync($"temporal upload: {s.ChunksSent} chunks sent, done "
                    + $"{(s.DoneSent ? "sent" : "not sent")}").ConfigureAwait(false);
                await output.WriteLineAsync(s.Pending is { } p ? $"pending: {p.Kind} message #{p.Sequence} (re-sent on the next "
                    + $"start)" : "pending: none").ConfigureAwait(false);
                if (s.InFlight is { Count: > 0 } inFlight)
                {
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"in flight: {inFlight.Count} pipelined batches, messages "
                        + $"#{inFlight[0].Sequence} to #{inFlight[^1].Sequence} (re-sent on the next start)")).ConfigureAwait(false);
                }
                if (s.LastRejection is { } r) await output.WriteLineAsync($"REJECTED: message #{r.Sequence} ({r.Kind}) at {r.At:u}: "
                    + $"{r.Reason}").ConfigureAwait(false);
                await output.WriteLineAsync(Privacy(s, config.Privacy.MaxEpsilon)).ConfigureAwait(false);
                if (s.GradientRowsOutsideBound > 0)
                {
                    await output.WriteLineAsync($"WARNING: {s.GradientRowsOutsideBound} per-sample gradients from the server in "
                        + $"{s.GradientBatchesOutsideBound} batches fell outside privacy.gradients' bound and were clipped (docs/privacy.md)")
                        .ConfigureAwait(false);
                }
                await output.WriteLineAsync($"last update {s.UpdatedAt:u}").ConfigureAwait(false);
            }
            foreach (var h in history)
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"  epoch {h.Epoch}: mean train loss "
                        + $"{h.MeanTrainLoss:F4}{(h.ValidationValue is { } v ? $", validation {h.ValidationMetric} {v:F4}" : "")}")).ConfigureAwait(false);
            }
            if (evaluation is { } last)
            {
                var (metric, value) = last.Headline;
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"last evaluation ({last.At:u}): {last.Split} split, {last.Samples} "
                    + $"samples, {metric} {value:F4}, scored by the server's {last.ServerModel?.Describe() ?? "model (not recorded by an earlier release)"}"))
                    .ConfigureAwait(false);
            }
            await output.WriteLineAsync($"reply queue messages: {replies}").ConfigureAwait(false);
            return ExitCode.Ok;
        }));
        return command;
    }

    /// <summary>The privacy line: epsilon spent so far, the releases it covers, and the budget.</summary>
    internal static string Privacy(AgentState s, double? maxEpsilon)
    {
        var r = s.Releases;
        var budget = maxEpsilon is { } max ? string.Create(CultureInfo.InvariantCulture, $", budget privacy.maxEpsilon {max}") : ", no budget set";
        var releases = $"{r.Releases} releases per sample ({r.TrainingPasses} training, {r.ValidationPasses} validation, {r.EvaluationPasses} evaluation "
            + "passes)";
        return r.Epsilon is { } e
            ? string.Create(CultureInfo.InvariantCulture, $"privacy: epsilon {e:F2} at delta {r.Delta:G3} over {releases}, noise multiplier "
                + $"{r.NoiseMultiplier}{budget}")
            : $"privacy: epsilon {ReleaseBudget.Describe(null)} over {releases}{budget}";
    }

    // Status reads while an agent may write: a report that is missing or half-replaced is simply not shown.
    private static EvaluationReport? ReadEvaluation(string path)
    {
        try
        {
            return EvaluationReport.Load(path);
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null;
        }
    }
}
