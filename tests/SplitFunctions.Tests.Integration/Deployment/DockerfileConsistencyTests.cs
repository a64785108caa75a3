using System.Text.RegularExpressions;
using SplitFunctions.Core.Contract;
using SplitFunctions.Functions.Hosting;

namespace SplitFunctions.Tests.Deployment;

/// <summary>
/// functions/Dockerfile against the code and the templates (no Docker engine runs here): base images as build arguments,
/// the settings it bakes in, where the worker and the native libraries land, and the entry points Bicep names.
/// </summary>
public sealed class DockerfileConsistencyTests
{
    /// <summary>The folder the engine loads libLibTorchSharp.so from when set (contract with the TorchSharp engine).</summary>
    private const string LibTorchPathVariable = "SPLITFN_LIBTORCH_PATH";

    private static readonly string Text = File.ReadAllText(Path.Combine(RepoRoot.Path, "functions", "Dockerfile"));

    /// <summary>Instructions without comment lines, continuation lines joined.</summary>
    private static readonly string[] Instructions = Regex.Replace(
            string.Join('\n', Text.Split('\n').Where(l => !l.TrimStart().StartsWith('#'))), @"\\\s*\n", " ")
        .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string FinalStage => Text[Text.LastIndexOf("\nFROM ", StringComparison.Ordinal)..];

    private static Dictionary<string, string> FinalEnv() =>
        Regex.Matches(string.Join('\n', Instructions.SkipWhile(i => i != Instructions.Last(x => x.StartsWith("FROM ", StringComparison.Ordinal)))
                .Where(i => i.StartsWith("ENV ", StringComparison.Ordinal))), @"(\w+)=(\S+)")
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value, StringComparer.Ordinal);

    [Fact]
    public void Base_images_are_build_arguments_without_a_registry()
    {
        var froms = Instructions.Where(i => i.StartsWith("FROM ", StringComparison.Ordinal)).ToList();
        froms.Should().HaveCount(3);
        froms.Should().OnlyContain(f => Regex.IsMatch(f, @"^FROM \$\{\w+\}( AS \w+)?$"), "every base image comes from a build argument");
        foreach (var arg in new[] { "DOTNET_SDK_IMAGE", "FUNCTIONS_BASE_IMAGE", "TORCH_IMAGE" })
            Instructions.Should().Contain($"ARG {arg}", $"{arg} is declared without a default: the repository names no registry");
        Text.Should().NotContainAny(["mcr.microsoft.com", "docker.io", ".azurecr.io"]);
        Text.Should().NotContain("cmake", "the engine is TorchSharp from NuGet: no native build stage");
    }

    [Fact]
    public void The_image_runs_the_isolated_worker_with_the_settings_the_templates_set()
    {
        var env = FinalEnv();
        env["FUNCTIONS_WORKER_RUNTIME"].Should().Be("dotnet-isolated").And.Be(
            DeploymentConsistencyTests.Value(DeploymentConsistencyTests.FunctionApp, "FUNCTIONS_WORKER_RUNTIME"));
        env["FUNCTIONS_WORKER_RUNTIME"].Should().Be(DeploymentConsistencyTests.SampleValues()["FUNCTIONS_WORKER_RUNTIME"]);
        env["AzureWebJobsScriptRoot"].Should().Be("/home/site/wwwroot");
        // Only settings the code reads, the platform's own, and the native library paths.
        env.Keys.Where(k => k.StartsWith("SplitFunctions__", StringComparison.Ordinal)).Should().OnlyContain(k => FunctionSettings.All.Contains(k));
        env[FunctionSettings.Device].Should().Be("auto");
        FinalStage.Should().Contain($"COPY --from=publish /app/ {env["AzureWebJobsScriptRoot"]}/", "the worker is published to the script root the host reads");
        Instructions.Should().Contain(i => i.StartsWith("RUN dotnet publish functions/SplitFunctions.Functions.csproj -c Release -o "
            + "/app", StringComparison.Ordinal));
    }

    [Fact]
    public void CUDA_libtorch_and_libLibTorchSharp_share_the_folder_the_engine_is_told_about()
    {
        var env = FinalEnv();
        var folder = env[LibTorchPathVariable];
        folder.Should().Be("/opt/libtorch/lib");
        env["LD_LIBRARY_PATH"].Should().Be(folder, "libtorch_cuda finds the CUDA libraries copied beside it");
        Instructions.Should().Contain(i => i.Contains("torch/lib/*.so* /out/", StringComparison.Ordinal), "libtorch comes from the PyTorch image's torch/lib");
        Instructions.Should().Contain(i => i.Contains("cp /app/runtimes/linux-x64/native/libLibTorchSharp.so " + folder + "/", StringComparison.Ordinal),
            "TorchSharp's native part comes from the publish output");
        FinalStage.Should().Contain($"COPY --from=libtorch /out/ {folder}/").And.Contain($"COPY --from=publish {folder}/libLibTorchSharp.so {folder}/");
    }

    [Fact]
    public void The_drain_command_in_Bicep_starts_the_published_worker_with_a_verb_it_has()
    {
        // What the deployed drain job runs (main.bicep's drainCommand, as the compiled template passes it on).
        var command = DeploymentConsistencyTests.Container(DeploymentConsistencyTests.DrainJob)["command"]!.AsArray().Select(c => c!.GetValue<string>())
            .ToList();
        command.Should().Equal("dotnet", $"{FinalEnv()["AzureWebJobsScriptRoot"]}/SplitFunctions.Functions.dll", "drain");
        ServerCommandLine.Build().Subcommands.Select(c => c.Name).Should().Contain(command[^1]);
        Text.Should().Contain("dotnet /home/site/wwwroot/SplitFunctions.Functions.dll drain", "the Dockerfile documents the same command");
    }
}
