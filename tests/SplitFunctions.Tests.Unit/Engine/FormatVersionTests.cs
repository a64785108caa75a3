using System.Text;
using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Tests.Engine;

/// <summary>
/// Runs and hospital states of earlier formats (1: the native engine; manifest 2: catalog models by name only) are refused with the versions named.
/// </summary>
public sealed class FormatVersionTests
{
    [Fact]
    public void A_manifest_records_the_engine_and_manifests_of_versions_1_and_2_are_refused_by_version()
    {
        var manifest = RunManifest.ForModel("run-1", ModelCatalog.LdlMlp, TrainingMode.Vanilla, ["h1"], 7);
        manifest.Version.Should().Be(3);
        manifest.Engine.Should().Be(TorchRuntime.EngineVersion);
        RunManifest.Parse(manifest.ToJson()).Engine.Should().Be(TorchRuntime.EngineVersion);

        foreach (var version in new[] { 1, 2 })
        {
            // As that build wrote it: version 2 named a catalog model and had no layers.
            var old = JsonNode.Parse(manifest.ToJson())!.AsObject();
            old["v"] = version;
            old.Remove("layers");
            var act = () => RunManifest.Parse(Encoding.UTF8.GetBytes(old.ToJsonString()));
            act.Should().Throw<RunManifestException>().WithMessage($"run manifest: manifest version {version} is not supported (this build reads version 3); "
                + $"upgrade the agent and the function together");
        }
    }

    [Fact]
    public void A_checkpoint_of_format_1_is_refused_by_version()
    {
        var state = new RunState { Step = 3 };
        RunState.FromJson(state.ToJson()).Step.Should().Be(3);
        var act = () => RunState.FromJson("""{"step":3,"checkpointNumber":1}"""u8);
        act.Should().Throw<InvalidDataException>().WithMessage("*checkpoint format 1 is not supported (this build reads format 2*");
    }

    [Fact]
    public void A_hospital_state_of_version_1_is_a_state_error_naming_both_versions()
    {
        using var dir = new TempDirectory();
        using var folder = StateFolder.Open(dir.Path, "run-1");
        File.WriteAllText(Path.Combine(folder.RunFolder, "state.json"),
            """{"v":1,"runId":"run-1","hospitalId":"h","model":"ldl-mlp","mode":"Vanilla","manifestSha256":"ab","trainSamples":10}""");
        var load = () => folder.Load();
        load.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.StateCorrupt)
            .WithMessage("*state version 1 was written by another agent release; this agent reads version 2*");
    }
}
