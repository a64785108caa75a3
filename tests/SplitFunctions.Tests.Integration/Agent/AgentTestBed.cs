using System.Diagnostics;
using SplitFunctions.ClientAgent.Commands;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Tests.Agent;

/// <summary>What one agent invocation printed and returned.</summary>
internal sealed record AgentRun(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
}

/// <summary>
/// One simulated hospital for agent tests: a temp folder with synthetic images, its storage (container, queues, the run
/// manifest) on a real Azurite, and an agent configuration written by the agent's own `init`.
/// </summary>
internal sealed class AgentTestBed : IDisposable
{
    public const string Hospital = "hospital-a";

    private readonly TempDirectory _dir = new();

    public AgentTestBed(string runId) => RunId = runId;

    public string RunId { get; }

    public string Folder => _dir.Path;

    public string ConfigPath => _dir.File("agent.json");

    public string KeyDirectory => _dir.File("keys");

    public string StateFolder => _dir.File("state");

    public string RunStateFolder => Path.Combine(StateFolder, RunId);

    public LocalKeyStore Keys => new(KeyDirectory);

    /// <summary>A small pneumonia-cnn run: batch 16 and two epochs unless changed.</summary>
    public static RunManifest SmallManifest(string runId, TrainingMode mode = TrainingMode.Vanilla, int epochs = 2, int batchSize = 16) =>
        RunManifest.ForModel(runId, ModelCatalog.PneumoniaCnn, mode, [Hospital], seed: 7) with { BatchSize = batchSize, Epochs = epochs };

    /// <summary>Writes `count` synthetic 28x28 images; with the default 10%/10% held out, 80% are this hospital's training rows.</summary>
    public string WriteImages(int count, string name = "images.npz")
    {
        var path = _dir.File(name);
        ImageArchive.Save(path, [new("train", SyntheticImages.Generate(count, 28, 28, seed: 3))]);
        return path;
    }

    /// <summary>Creates the hospital's container and queues and puts the manifest where the agent reads it.</summary>
    public static async Task ProvisionAsync(StorageConnection storage, RunManifest manifest, string hospital = Hospital)
    {
        var container = storage.GetBlobContainerClient(StorageNames.HospitalContainer(hospital));
        await container.CreateIfNotExistsAsync();
        await storage.GetQueueClient(StorageNames.FeaturesQueue).CreateIfNotExistsAsync();
        await storage.GetQueueClient(StorageNames.RepliesQueue(hospital)).CreateIfNotExistsAsync();
        await container.GetBlobClient($"manifests/{manifest.RunId}.json").UploadReplacingAsync(BinaryData.FromBytes(manifest.ToJson()));
    }

    /// <summary>
    /// The floor the test hospitals take: they train one-layer cuts without noise on purpose, which the recommended floor
    /// refuses (PrivacyFloorTests checks that refusal).
    /// </summary>
    public static readonly string[] OpenFloor = ["--privacy-floor", "open"];

    /// <summary>Runs `init` with a connection string; extra arguments are appended.</summary>
    public async Task<AgentRun> InitAsync(string connectionString, string dataPath, params string[] extra)
    {
        var run = await RunAsync(["init", "--config", ConfigPath, "--hospital", Hospital, "--run", RunId, "--data", dataPath,
            "--connection-string", connectionString, "--key-dir", KeyDirectory, "--state", StateFolder, "--reply-timeout", "60", "--storage-outage", "120",
                .. OpenFloor, .. extra]);
        run.ExitCode.Should().Be(0, run.ToString());
        return run;
    }

    /// <summary>Runs the agent's command line in this process.</summary>
    public static async Task<AgentRun> RunAsync(string[] args, CancellationToken cancellationToken = default)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await AgentCli.InvokeAsync(args, output, error, cancellationToken);
        return new AgentRun(code, output.ToString(), error.ToString());
    }

    /// <summary>Starts the real `splitfn-agent` as a child process (`dotnet splitfn-agent.dll ...`), output redirected.</summary>
    public static Process StartProcess(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "splitfn-agent.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var a in args) start.ArgumentList.Add(a);
        return Process.Start(start) ?? throw new InvalidOperationException("could not start the agent");
    }

    public void Dispose() => _dir.Dispose();
}
