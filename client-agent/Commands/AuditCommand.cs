using System.CommandLine;
using SplitFunctions.ClientAgent.Data;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.ClientAgent.Commands;

/// <summary>
/// `audit`: plays the curious server against this hospital's own client layer on its own data (nothing is sent): a ridge
/// map and decoders from activations back to images, with public images, every view of a patient the run sends and a
/// colluding hospital's layer when given, against the mean-image baseline (docs/privacy.md).
/// </summary>
internal static class AuditCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var steps = new Option<int>("--steps")
        {
            Description = "Most optimizer steps per attacker decoder (each stops at its best score on held-out auxiliary images; the old "
                + "attacker's row: 300 at most).",
            DefaultValueFactory = _ => 2000
        };
        var publicImages = new Option<string?>("--public-images")
        {
            Description = "An .npz of public images of the same kind (e.g. public chest X-rays), added to the attacker's auxiliary data.",
            HelpName = "file"
        };
        var publicName = new Option<string>("--public-name")
        {
            Description = "How the report names the public images.",
            DefaultValueFactory = _ => "public"
        };
        var views = new Option<int?>("--views")
        {
            Description = "Times the run sends each patient, averaged by the multi-view attack (default: the run's epochs, one send per epoch).",
        };
        var colluder = new Option<string?>("--colluder-weights")
        {
            Description = "Client weights of another hospital of this run (collusion: the server trains its attack with that layer).",
            HelpName = "file"
        };
        var colluderName = new Option<string>("--colluder-name")
        {
            Description = "How the report names the colluding hospital.",
            DefaultValueFactory = _ => "another hospital"
        };
        var maxTest = new Option<int>("--max-test")
        {
            Description = "Test images scored (re-identification among all of "
            + "them).",
            DefaultValueFactory = _ => 1000
        };
        var folder = new Option<string?>("--out")
        {
            Description = "Folder for audit.json, audit.md and audit.png (default: "
            + "<state>/<run>/audit).",
            HelpName = "folder"
        };
        var command = new Command("audit", "Measure what a curious server could rebuild from this hospital's activations (runs locally; sends "
            + "nothing).") { steps, maxTest, folder, publicImages, publicName, views, colluder, colluderName };
        command.SetAction((parse, cancellationToken) => AgentCli.RunAsync(error, async () =>
        {
            var config = AgentCli.LoadConfiguration(parse);
            var agentOutput = AgentCli.CreateOutput(parse, output, error);
            using var run = await HospitalRun.OpenAsync(config, agentOutput, cancellationToken).ConfigureAwait(false);
            var manifest = run.Manifest;
            if (parse.GetValue(steps) < 1 || parse.GetValue(maxTest) < 2) throw new AgentException(ExitCode.Usage, "--steps must be at least 1 and --max-test "
                + "at least 2.");
            if (parse.GetValue(views) is < 1) throw new AgentException(ExitCode.Usage, "--views must be at least 1.");
            // The layer whose output the server decrypts: vanilla's trained client layer, U-shaped's trained head,
            // temporal's fixed privacy layer (from the consortium secret).
            using var client = ClientLayer.Create(manifest, trainable: false, run.ConsortiumSecret);
            using var ushapedLayers = manifest.Mode == TrainingMode.UShaped ? UShapedLayers.Create(manifest, run.ConsortiumSecret) : null;
            var weights = run.State.ClientWeights is { } file ? run.Folder.ReadFile(file) : null;
            if (manifest.Mode == TrainingMode.Vanilla && weights is not null) client.Restore(weights, null);
            ushapedLayers?.Restore(weights, null, null, null);
            var audited = ushapedLayers?.Head ?? client.Network;
            var data = run.Data;
            if (data.Test.Count < 2 || data.Train.Count < 2) throw new AgentException(ExitCode.Data, "the audit needs at least 2 training rows (the "
                + "attacker's auxiliary data) and 2 test rows.");
            var publicSet = parse.GetValue(publicImages) is { } publicPath
                ? PublicImagesLoader.Load(Path.GetFullPath(publicPath), manifest.ModelDefinition, data.ImageStatistics
                    ?? throw new AgentException(ExitCode.Usage, "--public-images needs an image data set at this hospital."))
                : null;
            // The colluding hospital's layer: the same architecture, its trained weights.
            using var colluding = parse.GetValue(colluder) is not null ? ClientLayer.Create(manifest, trainable: false, run.ConsortiumSecret) : null;
            using var colluderLayers = colluding is not null && manifest.Mode == TrainingMode.UShaped
                ? UShapedLayers.Create(manifest, run.ConsortiumSecret)
                : null;
            if (colluding is not null)
            {
                var path = Path.GetFullPath(parse.GetValue(colluder)!);
                if (!File.Exists(path)) throw new AgentException(ExitCode.Usage, $"--colluder-weights {path} does not exist.");
                var bytes = File.ReadAllBytes(path);
                try
                {
                    if (manifest.Mode == TrainingMode.Vanilla) colluding.Restore(bytes, null);
                    colluderLayers?.Restore(bytes, null, null, null);
                }
                catch (Exception e) when (e is not AgentException and not OutOfMemoryException)
                {
                    throw new AgentException(ExitCode.Usage, $"--colluder-weights {path} are not client weights of this run's model ({e.Message}).", e);
                }
            }
            LeakageReport report;
            try
            {
                report = LeakageAudit.Run(audited, data.Train, data.Test, new AuditOptions
                {
                    // What the agent releases (ActivationNoise.Release): with a clip norm C each sample is clipped to C, then noise sigma x C.
                    NoiseSigma = manifest.Privacy.ClipNorm > 0 ? manifest.Privacy.NoiseSigma * manifest.Privacy.ClipNorm : manifest.Privacy.NoiseSigma,
                    BeforeNoise = manifest.Privacy.ClipNorm > 0 ? a => ActivationClipping.Clip(a, manifest.Privacy.ClipNorm) : null,
                    DecoderSteps = parse.GetValue(steps),
                    // The old attacker's row costs up to 300 steps; a shortened audit (--steps) shortens it too.
                    LegacyDecoderSteps = Math.Min(AuditOptions.DefaultLegacyDecoderSteps, parse.GetValue(steps)),
                    MaxTestImages = parse.GetValue(maxTest),
                    Seed = manifest.Seed,
                    PublicImages = publicSet,
                    PublicName = parse.GetValue(publicName)!,
                    // A training patient is sent once per epoch (a validation patient once per epoch's validation).
                    Views = parse.GetValue(views) ?? manifest.Epochs,
                    // Batches, validations and evaluations go in the hospital's secret order (OrderSecret): the server can link a
                    // patient's views only by their content, which the multi-view attack does by nearest neighbour.
                    OrderKnownToServer = false,
                    Colluder = colluderLayers?.Head ?? colluding?.Network,
                    ColluderName = parse.GetValue(colluderName)!,
                    Progress = agentOutput.Info,
                });
            }
            catch (ArgumentException e)
            {
                throw new AgentException(ExitCode.Usage, $"audit: {e.Message}", e);
            }
            var target = parse.GetValue(folder) is { } f ? Path.GetFullPath(f) : Path.Combine(run.Folder.RunFolder, "audit");
            var png = LeakageReportFiles.Save(report, target);
            foreach (var line in LeakageReportFiles.Markdown(report).Split('\n', StringSplitOptions.RemoveEmptyEntries)) agentOutput.Info(line);
            agentOutput.Info($"written to {target} (picture {png})");
            return ExitCode.Ok;
        }));
        return command;
    }
}
