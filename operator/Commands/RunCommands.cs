using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using SplitFunctions.Core.CommandLine;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Operator.Commands;

/// <summary>`run create | status | watch`.</summary>
internal static class RunCommands
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var command = new Command("run", "Create a run and follow it.");
        command.Subcommands.Add(Create(output, error));
        command.Subcommands.Add(Status(output, error));
        command.Subcommands.Add(Watch(error));
        return command;
    }

    private static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Option<string?>("--model")
        {
            Description = $"Model preset from the catalog: {string.Join(", ", ModelCatalog.Names)} (or "
            + $"--model-file)."
        };
        var modelFile = new Option<string?>("--model-file")
        {
            Description = "A model file (JSON layers with the cut marked; docs/models/) instead of a "
            + "preset.",
            HelpName = "file"
        };
        var mode = new Option<TrainingMode>("--mode")
        {
            Description = "vanilla (a round trip per batch), temporal (features uploaded once, the paper's "
            + "Algorithm 1) or ushaped (head and tail with the loss at the hospital: labels stay there).",
            DefaultValueFactory = _ => TrainingMode.Vanilla
        };
        var hospitals = new Option<string>("--hospitals")
        {
            Description = "Onboarded hospital ids, comma-separated, e.g. "
            + "hospital-a,hospital-b.",
            Required = true
        };
        var runId = new Option<string?>("--run-id") { Description = "Run id (1-63 lowercase letters, digits, single hyphens; default: run-<UTC date-time>)." };
        var epochs = new Option<int?>("--epochs") { Description = "Training epochs (default: the model's)." };
        var batchSize = new Option<int?>("--batch-size") { Description = "Batch size (default: the model's)." };
        var lr = new Option<double?>("--lr") { Description = "Learning rate of the server and client optimizers (default: the model's)." };
        var seed = new Option<long>("--seed") { Description = "Seed of the initial weights and batch order.", DefaultValueFactory = _ => 42 };
        var featureType = new Option<string>("--feature-type")
        {
            Description = "Element type of features and gradients on the wire: Float32, Float16, "
            + "BFloat16 or QInt8 (int8 with a scale per sample, a quarter of fp32's "
            + "bytes).",
            DefaultValueFactory = _ => RunRequest.DefaultFeatureType.ToString()
        };
        featureType.AcceptOnlyFromAmong(nameof(ElementType.Float32), nameof(ElementType.Float16), nameof(ElementType.BFloat16), nameof(ElementType.QInt8));
        var privacy = new PrivacyOptions();
        var commitment = new Option<string?>("--consortium-commitment")
        {
            Description = "Privacy: the commitment `splitfn-agent init --consortium-secret` "
            + "prints; hospitals then start from their shared secret's weights, which the server cannot rebuild.",
            HelpName = "hex"
        };
        var inputShape = new Option<string?>("--input-shape")
        {
            Description = "Per-sample input shape, comma-separated (tabular models: the number of mapped "
            + "features), e.g. 7 or 1,28,28 (default: the model's)."
        };
        var offset = new Option<double>("--target-offset")
        {
            Description = "Regression: targets travel as (y - offset) / "
            + "scale.",
            DefaultValueFactory = _ => 0
        };
        var scale = new Option<double>("--target-scale") { Description = "Regression: see --target-offset.", DefaultValueFactory = _ => 1 };
        var onboarding = new Option<string>("--onboarding-dir")
        {
            Description = "Where the hospitals' onboarding packages are, for the printed "
            + "commands.",
            DefaultValueFactory = _ => "onboarding",
            HelpName = "folder"
        };
        var json = new Option<bool>("--json") { Description = "Print the manifest as JSON after the summary." };
        var command = new Command("create", "Create a run: the manifest is validated (model, settings, every hospital onboarded and active) before anything "
            + "is written; prints the run id and each hospital's commands.")
        {
            model, modelFile, mode, hospitals, runId, epochs, batchSize, lr, seed, featureType, commitment, inputShape, offset, scale, onboarding, json,
        };
        privacy.AddTo(command);
        command.SetAction((parse, ct) => OperatorCli.RunAsync(error, async () =>
        {
            var request = new RunRequest
            {
                RunId = parse.GetValue(runId) ?? "run-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture),
                Model = ResolveModel(parse.GetValue(model), parse.GetValue(modelFile)),
                Mode = parse.GetValue(mode),
                Hospitals = [.. parse.GetValue(hospitals)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
                Seed = unchecked((ulong)parse.GetValue(seed)),
                Epochs = parse.GetValue(epochs),
                BatchSize = parse.GetValue(batchSize),
                LearningRate = parse.GetValue(lr),
                InputShape = ParseShape(parse.GetValue(inputShape)),
                FeatureType = Enum.Parse<ElementType>(parse.GetValue(featureType)!),
                Privacy = new PrivacySettings
                {
                    NoiseSigma = parse.GetValue(privacy.NoiseSigma),
                    ClipNorm = parse.GetValue(privacy.ClipNorm),
                    NoPeekAlpha = parse.GetValue(privacy.NoPeekAlpha),
                    AttackerAwareWeight = parse.GetValue(privacy.AttackerAwareWeight),
                    ConsortiumCommitment = parse.GetValue(commitment)?.Trim().ToLowerInvariant()
                },
                UShaped = new UShapedSettings { Defence = privacy.UShapedDefence(parse) },
                TargetScaling = new TargetScaling(parse.GetValue(offset), parse.GetValue(scale)),
            };
            // Checked before storage is touched: a wrong setting never needs the account.
            RunCreation.BuildManifest(request);
            var manifest = await new RunCreation(OperatorCli.Storage(parse)).CreateAsync(request, ct).ConfigureAwait(false);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"run {manifest.RunId} created: {manifest.Model} ({manifest.Mode}), {manifest.Epochs} epochs, batch {manifest.BatchSize}, lr "
                    + $"{manifest.Optimizer.LearningRate}, seed {manifest.Seed}, {manifest.FeatureType}, noise sigma "
                    + $"{manifest.Privacy.NoiseSigma}")).ConfigureAwait(false);
            await output.WriteLineAsync($"each hospital runs, in its onboarding package folder (e.g. "
                + $"{Path.Combine(parse.GetValue(onboarding)!, "<hospital>")}):").ConfigureAwait(false);
            foreach (var hospital in manifest.Hospitals)
            {
                var secretArgument = manifest.Privacy.ConsortiumCommitment is null ? "" : " --consortium-secret <consortium-secret-file>";
                await output.WriteLineAsync($"  {hospital}: splitfn-agent --config agent-{manifest.RunId}.json init @{OnboardingPackage.ResponseFile} --run "
                    + $"{manifest.RunId} --data <data-file>{secretArgument}" +
                    $" && splitfn-agent --config agent-{manifest.RunId}.json train").ConfigureAwait(false);
            }
            if (manifest.Privacy.ConsortiumCommitment is null)
            {
                await output.WriteLineAsync("warning: no --consortium-commitment: the hospitals' initial client weights come from the run's seed, which the "
                    + "server holds (docs/privacy.md)").ConfigureAwait(false);
            }
            await output.WriteLineAsync($"follow it: splitfn-operator run watch {manifest.RunId}").ConfigureAwait(false);
            if (parse.GetValue(json)) await output.WriteLineAsync(System.Text.Encoding.UTF8.GetString(manifest.ToJson())).ConfigureAwait(false);
        }));
        return command;
    }

    /// <summary>A catalog preset or a model file: exactly one of the two.</summary>
    private static ModelDefinition ResolveModel(string? name, string? file)
    {
        if ((name is null) == (file is null)) throw new OperatorException(OperatorExitCode.Invalid, "name the network with exactly one of --model <preset> or "
            + "--model-file <file>");
        try
        {
            return file is not null ? ModelFile.Load(file) : ModelCatalog.Get(name!);
        }
        catch (UnknownModelException e)
        {
            throw new OperatorException(OperatorExitCode.Invalid, $"--model: {e.Message}", e);
        }
        catch (ModelDefinitionException e)
        {
            throw new OperatorException(OperatorExitCode.Invalid, $"--model-file: {e.Message}", e);
        }
    }

    private static long[]? ParseShape(string? text)
    {
        if (text is null) return null;
        try
        {
            return [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(p => long.Parse(p, NumberStyles.None, CultureInfo.InvariantCulture))];
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new OperatorException(OperatorExitCode.Invalid, $"--input-shape '{text}' is not a comma-separated list of positive whole numbers, e.g. "
                + $"1,28,28", e);
        }
    }

    private static Argument<string> RunArgument() => new("run") { Description = "The run id." };

    private static Command Status(TextWriter output, TextWriter error)
    {
        var run = RunArgument();
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of tables." };
        var command = new Command("status", "Show a run once: per hospital steps applied, last sequence, epoch, loss, validation, last seen; the server's "
            + "lease holder, checkpoint, queue depth and poisoned messages.")
        {
            run, json,
        };
        command.SetAction((parse, ct) => OperatorCli.RunAsync(error, async () =>
        {
            var status = await new RunStatusReader(OperatorCli.Storage(parse)).ReadAsync(parse.GetValue(run)!, ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(new { status.Manifest.RunId, status.Server, status.Hospitals, status.ReadAt },
                    StatusJson)).ConfigureAwait(false);
                return;
            }
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(output),
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No
            });
            console.Profile.Width = 160;
            console.Write(StatusView.Render(status));
        }));
        return command;
    }

    private static Command Watch(TextWriter error)
    {
        var run = RunArgument();
        var interval = new Option<double>("--interval") { Description = "Seconds between refreshes.", DefaultValueFactory = _ => 2 };
        var refreshes = new Option<int>("--refreshes") { Description = "Stop after this many refreshes (0: until Ctrl-C).", DefaultValueFactory = _ => 0 };
        var command = new Command("watch", "Show a run's status in the terminal, refreshing live until Ctrl-C.") { run, interval, refreshes };
        command.SetAction((parse, ct) => OperatorCli.RunAsync(error, async () =>
        {
            var seconds = parse.GetValue(interval);
            if (!double.IsFinite(seconds) || seconds is < 0.2 or > 3600) throw new OperatorException(OperatorExitCode.Invalid, $"--interval {seconds} is out "
                + $"of range 0.2..3600 seconds");
            var reader = new RunStatusReader(OperatorCli.Storage(parse));
            var id = parse.GetValue(run)!;
            var status = await reader.ReadAsync(id, ct).ConfigureAwait(false);
            var limit = parse.GetValue(refreshes);
            try
            {
                await AnsiConsole.Live(StatusView.Render(status)).AutoClear(false).StartAsync(async live =>
                {
                    for (var n = 1; limit == 0 || n < limit; n++)
                    {
                        await Task.Delay(TimeSpan.FromSeconds(seconds), ct).ConfigureAwait(false);
                        status = await reader.ReadAsync(id, ct).ConfigureAwait(false);
                        live.UpdateTarget(StatusView.Render(status));
                        live.Refresh();
                    }
                }).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Ctrl-C ends watching; that is the normal way out.
            }
        }));
        return command;
    }

    private static readonly JsonSerializerOptions StatusJson = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
