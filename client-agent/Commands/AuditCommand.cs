using System.CommandLine;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.ClientAgent.Commands;

/// <summary>
/// `audit`: plays the curious server against this hospital's own client layer on its own data (nothing is sent):
/// decoders from activations back to images, against the mean-image baseline (docs/privacy.md).
/// </summary>
internal static class AuditCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var steps = new Option<int>("--steps")
        {
            Description = "Optimizer steps per attacker decoder (the attacker's "
            + "budget).",
            DefaultValueFactory = _ => 400
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
            + "nothing).") { steps, maxTest, folder };
        command.SetAction((parse, cancellationToken) => AgentCli.RunAsync(error, async () =>
        {
            var config = AgentCli.LoadConfiguration(parse);
            var agentOutput = AgentCli.CreateOutput(parse, output, error);
            using var run = await HospitalRun.OpenAsync(config, agentOutput, cancellationToken).ConfigureAwait(false);
            var manifest = run.Manifest;
            if (parse.GetValue(steps) < 1 || parse.GetValue(maxTest) < 2) throw new AgentException(ExitCode.Usage, "--steps must be at least 1 and --max-test "
                + "at least 2.");
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
            LeakageReport report;
            try
            {
                report = LeakageAudit.Run(audited, data.Train, data.Test, new AuditOptions
                {
                    NoiseSigma = manifest.Privacy.NoiseSigma,
                    DecoderSteps = parse.GetValue(steps),
                    MaxTestImages = parse.GetValue(maxTest),
                    Seed = manifest.Seed,
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
