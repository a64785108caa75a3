using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SplitFunctions.Core.CommandLine;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.LocalRun.LocalStorage;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.LocalRun;

/// <summary>`splitfn-local demo`: the README's main job, a three-hospital split-learning run on real processes.</summary>
public static class DemoCommand
{
    // The privacy trade-off's chosen point (docs/results.md, "Privacy trade-off"): chosen on validation among the arms
    // within 0.01 AUC of no defence, the one whose best reconstruction is least like the originals.
    private const string DefaultModel = "pneumonia-cnn-cut3";
    // Issue 29's grid (docs/results.md): clipped to C = 1, noise multiplier 0.05, the defence that lost the least validation AUC at
    // the smallest hospital; it states an epsilon (far too large to be a guarantee) and leaks about as much as absolute noise 1 did.
    private const double DefaultNoiseSigma = 0.05;
    private const double DefaultClipNorm = 1.0;

    public static Command Create()
    {
        var data = new Option<FileInfo?>("--data")
        {
            Description = "An image archive (.npz). Default: PneumoniaMNIST from ../shared/data when present, else "
            + "built-in synthetic images."
        };
        var mode = new Option<TrainingMode>("--mode")
        {
            Description = "vanilla (a round trip per batch), temporal (features uploaded once, the paper's "
            + "Algorithm 1) or ushaped (head and tail with the loss at the hospital: labels never leave "
            + "it).",
            DefaultValueFactory = _ => TrainingMode.Vanilla
        };
        var epochs = new Option<int>("--epochs") { Description = "Training epochs.", DefaultValueFactory = _ => 4 };
        var model = new Option<string>("--model")
        {
            Description = $"Catalog model: {string.Join(", ", ModelCatalog.Names)}.",
            DefaultValueFactory = _
            => DefaultModel
        };
        var modelFile = new Option<FileInfo?>("--model-file")
        {
            Description = "An image network of your own as a JSON model file (docs/models/, format in "
            + "docs/architecture.md) instead of --model."
        };
        var hospitals = new Option<int>("--hospitals")
        {
            Description = "Number of hospitals (3 splits the data 7:2:1 like the paper, otherwise "
            + "equally).",
            DefaultValueFactory = _ => 3
        };
        var seed = new Option<long>("--seed") { Description = "Seed of the data split, initial weights and batch order.", DefaultValueFactory = _ => 42 };
        var maxSamples = new Option<int?>("--max-samples") { Description = "Use at most this many images (quick runs); synthetic data defaults to 3000." };
        var privacy = new PrivacyOptions(defaultNoiseSigma: DefaultNoiseSigma, defaultClipNorm: DefaultClipNorm);
        var auditSteps = new Option<int>("--audit-steps")
        {
            Description = "Most steps per attacker decoder of each hospital's leakage audit after training (each stops at its best held-out score; 0: "
            + "no audit).",
            DefaultValueFactory = _ => 2000
        };
        var output = new Option<DirectoryInfo>("--out")
        {
            Description = "Output folder.",
            DefaultValueFactory = _
            => new DirectoryInfo(Path.Combine("artifacts", "demo"))
        };

        var command = new Command("demo", "Three hospitals train one network with split learning: Azurite, the function (drain mode) and one agent per "
            + "hospital as separate processes.")
        {
            data, mode, epochs, model, modelFile, hospitals, seed, maxSamples, auditSteps, output,
        };
        // The demo trains vanilla or temporal by default; its activation defences are noise, clipping and attacker-aware training.
        privacy.AddTo(command, [privacy.NoiseSigma, privacy.ClipNorm, privacy.AttackerAwareWeight]);
        command.SetAction(async (result, ct) =>
        {
            try
            {
                return await RunAsync(result, data, mode, epochs, model, modelFile, hospitals, seed, maxSamples, privacy, auditSteps, output, ct)
                    .ConfigureAwait(false);
            }
            catch (StudyException e)
            {
                await Console.Error.WriteLineAsync($"splitfn-local: {e.Message} (exit code {(int)e.Code})").ConfigureAwait(false);
                return (int)e.Code;
            }
        });
        return command;
    }

    private static async Task<int> RunAsync(ParseResult result, Option<FileInfo?> data, Option<TrainingMode> mode, Option<int> epochs, Option<string> model,
        Option<FileInfo?> modelFile, Option<int> hospitals, Option<long> seed, Option<int?> maxSamples, PrivacyOptions privacy,
        Option<int> auditSteps,
            Option<DirectoryInfo> output, CancellationToken ct)
    {
        {
            var definition = ModelChoice.Resolve(result.GetValue(model)!, result.GetValue(modelFile));
            if (definition.TailLayers.Count > 0) throw new StudyException(StudyExitCode.Model, $"--model-file: '{definition.Name}' marks a tail (a U-shaped "
                + $"split); the demo trains the two-part split only");
            if (result.GetValue(data) is { Exists: false } missing) throw new StudyException(StudyExitCode.Data, $"data file {missing.FullName} does not "
                + $"exist: check --data");
            if (definition.InputShape.Length != 3)
            {
                await Console.Error.WriteLineAsync($"the demo trains an image model; '{definition.Name}' is tabular (use `splitfn-local experiments --data "
                    + $"<csv>`)").ConfigureAwait(false);
                return 2;
            }
            var folder = result.GetValue(output)!.FullName;
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            Directory.CreateDirectory(folder);
            string dataPath, source;
            try
            {
                (dataPath, source) = ResolveData(result.GetValue(data), result.GetValue(maxSamples), definition, result.GetValue(seed), folder);
            }
            catch (DataFormatException e)
            {
                throw new StudyException(StudyExitCode.Data, e.Message, e);
            }
            if (privacy.Problem(result) is { } problem)
            {
                await Console.Error.WriteLineAsync(problem).ConfigureAwait(false);
                return 2;
            }
            var count = result.GetValue(hospitals);
            if (count is < 1 or > 10)
            {
                await Console.Error.WriteLineAsync("--hospitals must be 1 to 10").ConfigureAwait(false);
                return 2;
            }
            var settings = new SplitRunSettings
            {
                Model = definition,
                Mode = result.GetValue(mode),
                DataPath = dataPath,
                Epochs = result.GetValue(epochs),
                BatchSize = definition.BatchSize,
                LearningRate = definition.Optimizer.LearningRate,
                Seed = result.GetValue(seed),
                Hospitals = [.. Enumerable.Range(0, count).Select(i => $"hospital-{(char)('a' + i)}")],
                AuditSteps = Math.Max(0, result.GetValue(auditSteps)),
                NoiseSigma = result.GetValue(privacy.NoiseSigma),
                ClipNorm = result.GetValue(privacy.ClipNorm),
                AttackerAwareWeight = result.GetValue(privacy.AttackerAwareWeight),
            };
            Console.WriteLine($"data: {source}");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            IReadOnlyList<HospitalOutcome> outcomes;
            IReadOnlyList<ServerEpoch> serverEpochs;
            try
            {
                (outcomes, serverEpochs) = await SplitRun.RunWithServerAsync(settings, Path.Combine(folder, "system"), "test", ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                await Console.Error.WriteLineAsync("demo: stopped (Ctrl-C); Azurite, the function and every agent it started have been "
                    + "stopped.").ConfigureAwait(false);
                return 130;
            }
            DemoReport.Write(folder, settings, source, outcomes, serverEpochs, clock.Elapsed);
            return outcomes.All(o => o.TrainExitCode == 0 && o.EvaluateExitCode == 0) ? 0 : 1;
        }
    }

    private static (string Path, string Description) ResolveData(FileInfo? given, int? maxSamples, ModelDefinition model, long seed, string folder)
    {
        string? path = given?.FullName;
        if (path is null)
        {
            var shared = Path.GetFullPath(Path.Combine(AzuriteProcess.FindRepositoryRoot(AppContext.BaseDirectory), "..", "shared", "data", "pneumoniamnist",
                "pneumoniamnist_28.npz"));
            if (File.Exists(shared)) path = shared;
        }
        if (path is not null)
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"--data {path} does not exist", path);
            if (maxSamples is null) return (path, path);
            // A smaller copy of the pooled archive, so every agent reads the same rows.
            var small = Path.Combine(folder, "data", "subset.npz");
            var kept = ImageStudy.WriteSubset(path, (int)model.InputShape[1], (int)model.InputShape[2], maxSamples.Value, seed, small);
            return (small, $"{path} ({kept} images, a seeded subset)");
        }
        var synthetic = SyntheticImages.Generate(maxSamples ?? 3000, (int)model.InputShape[1], (int)model.InputShape[2], seed);
        var file = Path.Combine(folder, "data", "synthetic.npz");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        ImageArchive.Save(file, [new("train", synthetic)]);
        return (file, string.Create(CultureInfo.InvariantCulture, $"built-in synthetic images ({synthetic.Count}, {synthetic.Height}x{synthetic.Width}; "
            + $"../shared/data/pneumoniamnist not found)"));
    }
}
