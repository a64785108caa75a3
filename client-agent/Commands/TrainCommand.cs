using System.CommandLine;
using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.ClientAgent.Commands;

/// <summary>`train`: this hospital's part of the run, by the manifest's mode, bounded by --max-minutes / --max-batches and resumable.</summary>
internal static class TrainCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var maxMinutes = new Option<double>("--max-minutes")
        {
            Description = "Stop starting new batches after this many minutes (0 = no limit); the next start continues.",
            DefaultValueFactory = _ => 0,
        };
        maxMinutes.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<double>() is < 0 or double.NaN) r.AddError("--max-minutes must be 0 (no limit) or a positive number of minutes.");
        });
        var maxBatches = new Option<int>("--max-batches")
        {
            Description = "Stop after this many batches (vanilla) or messages (temporal) in this session (0 = no limit).",
            DefaultValueFactory = _ => 0,
        };
        maxBatches.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 0) r.AddError("--max-batches must be 0 (no limit) or a positive count.");
        });
        var noValidation = new Option<bool>("--no-validation")
        {
            Description = "Skip the validation evaluation at the end of each epoch (vanilla); history.json then has train loss only.",
        };
        var retryRejected = new Option<bool>("--retry-rejected")
        {
            Description = "Send a message the function rejected again, after fixing the cause (see the rejection message).",
        };
        // The manifest decides the number of epochs for every hospital alike; say so instead of "unrecognized option".
        var epochs = new Option<int?>("--epochs") { Hidden = true };
        epochs.Validators.Add(r => r.AddError("--epochs cannot be set at a hospital: the run manifest fixes the epochs for every hospital (ask the "
            + "operator)."));

        var command = new Command("train", "Train this hospital's part of the run (vanilla: batch round trips; temporal: upload features once, then done).")
        {
            maxMinutes, maxBatches, noValidation, retryRejected, epochs,
        };
        command.SetAction((parse, cancellationToken) => AgentCli.RunAsync(error, async () =>
        {
            var config = AgentCli.LoadConfiguration(parse);
            var agentOutput = AgentCli.CreateOutput(parse, output, error);
            var minutes = parse.GetValue(maxMinutes);
            var limits = new TrainingLimits(parse.GetValue(maxBatches), minutes > 0 ? TimeSpan.FromMinutes(minutes) : null,
                !parse.GetValue(noValidation), parse.GetValue(retryRejected));
            using var run = await HospitalRun.OpenAsync(config, agentOutput, cancellationToken).ConfigureAwait(false);
            if (run.State.LastRejection is { } rejection)
            {
                if (!limits.RetryRejected) throw HospitalRun.RejectionError(rejection);
                if (run.Manifest.Mode == TrainingMode.Temporal)
                {
                    throw new AgentException(ExitCode.Rejected,
                        $"a rejected temporal upload (message #{rejection.Sequence}: {rejection.Reason}) cannot be retried piecemeal: ask the operator to "
                            + $"reset this hospital's part of run '{config.RunId}'.");
                }
                // U-shaped: a refused backward leg (expired, or its forward leg gone) is redone from a new forward leg.
                var redo = run.Manifest.Mode == TrainingMode.UShaped && run.State.Pending is { Kind: FrameKind.Backward } leg
                    && leg.Sequence == rejection.Sequence;
                run.Commit(run.State with { LastRejection = null, Pending = redo ? null : run.State.Pending });
                agentOutput.Info($"retrying message #{rejection.Sequence} the function rejected ({rejection.Reason})");
            }
            RecordAugmentation(run, config);
            agentOutput.Info($"run {config.RunId} ({run.Manifest.Mode}, {run.Manifest.Model}, {run.Manifest.Epochs} epochs) at hospital {config.HospitalId}");
            if (config.Data.Augmentation is { Enabled: true } a)
            {
                agentOutput.Info(run.Augmentation is null
                    ? "data.augmentation is off in temporal mode: each training image is sent once"
                    : $"training batches augmented (data.augmentation): horizontal flip {(a.HorizontalFlip ? "on" : "off")}, rotation up to "
                        + $"{a.MaxRotationDegrees} degrees, shift up to {a.MaxShift:P0} of the side; validation and test images are not");
            }
            // Complete and Paused both exit 0: a bounded session is normal for a scheduled agent; `status` tells them apart.
            _ = run.Manifest.Mode switch
            {
                TrainingMode.Vanilla => await new VanillaTrainer(run, limits).RunAsync(cancellationToken).ConfigureAwait(false),
                TrainingMode.UShaped => await new UShapedTrainer(run, limits).RunAsync(cancellationToken).ConfigureAwait(false),
                _ => await new TemporalUploader(run, limits).RunAsync(cancellationToken).ConfigureAwait(false),
            };
            return ExitCode.Ok;
        }));
        return command;
    }

    /// <summary>
    /// A training batch sent but not yet answered is recomputed when the reply comes (after a restart too), with the augmentation it was sent
    /// with; a data.augmentation edited in between would pair the server's gradients with other images, silently. So with a batch pending the
    /// change is refused (one line, exit 3); with none it takes effect from the next batch, which is harmless (each batch is drawn afresh).
    /// </summary>
    internal static void RecordAugmentation(HospitalRun run, AgentConfiguration config)
    {
        var now = run.Augmentation is null || config.Data.Augmentation is not { Enabled: true } a ? "off" : a.Describe();
        if (AugmentationRefusal(run.State, now) is { } refusal) throw new AgentException(ExitCode.Configuration, refusal);
        if (run.State.Augmentation != now) run.Commit(run.State with { Augmentation = now });
    }

    /// <summary>Why <paramref name="now"/> (the augmentation this session would use) cannot replace the state's, or null when it can.</summary>
    internal static string? AugmentationRefusal(AgentState state, string now)
    {
        var pending = state.InFlight is { Count: > 0 } || state.Pending is { Kind: FrameKind.Train or FrameKind.Forward or FrameKind.Backward };
        if (!pending || state.Augmentation is not { } was || was == now) return null;
        var batch = state.InFlight is { Count: > 0 } inFlight ? inFlight[0] : state.Pending!;
        return $"data.augmentation changed ({was} -> {now}) while training batch {batch.Batch + 1} of epoch {batch.Epoch + 1} awaits the function's "
            + $"reply, and that batch is recomputed with the augmentation it was sent with. Put data.augmentation back to '{was}' for one `train` "
            + "session (the batch is answered), then change it.";
    }
}
