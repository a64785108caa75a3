using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SplitFunctions.Core.Configuration;
using SplitFunctions.Core.Protocol;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Core.Storage.Local;

namespace SplitFunctions.LocalRun;

/// <summary>How a simulated hospital's agent finds its share of the data (the agent's --partition-* options).</summary>
public sealed record HospitalShare(string HospitalId, int Index, IReadOnlyList<double> Weights, long Seed, string DataPath, string[] ExtraInitArguments);

/// <summary>A hospital enrolled in a run: its folder with the agent configuration, key store and state.</summary>
public sealed record EnrolledHospital(string HospitalId, string Folder, string ConfigPath)
{
    public string EvaluationPath(string runId) => Path.Combine(Folder, "state", runId, "evaluation.json");

    public string HistoryPath(string runId) => Path.Combine(Folder, "state", runId, "history.json");
}

/// <summary>
/// The whole system on one machine, as real processes: Azurite, the function in drain mode, one `splitfn-agent` per
/// hospital. Hospitals get only SAS for their own container and queues (minted as onboarding would), and their keys
/// reach the function's key folder the way an operator would load them into Key Vault.
/// </summary>
public sealed class LocalSystem : IAsyncDisposable
{
    private readonly ProcessSupervisor supervisor;
    private readonly string keyFolder;
    private Process? function;

    private LocalSystem(AzuriteProcess azurite, string folder, ProcessSupervisor supervisor)
    {
        Azurite = azurite;
        Folder = folder;
        this.supervisor = supervisor;
        keyFolder = Path.Combine(folder, "function-keys");
    }

    public AzuriteProcess Azurite { get; }

    public string Folder { get; }

    public CancellationToken Cancelled => supervisor.Cancelled.Token;

    /// <summary>Built executables next to this one's build output (the solution builds them all).</summary>
    public static string FunctionDll => Path.Combine(BuildRoot, "functions", "bin", "Release", "net10.0", "SplitFunctions.Functions.dll");

    public static string AgentDll => Path.Combine(BuildRoot, "client-agent", "bin", "Release", "net10.0", "splitfn-agent.dll");

    private static string BuildRoot => AzuriteProcess.FindRepositoryRoot(AppContext.BaseDirectory);

    public static async Task<LocalSystem> StartAsync(string folder, CancellationToken ct)
    {
        foreach (var dll in new[] { FunctionDll, AgentDll })
        {
            if (!File.Exists(dll)) throw new FileNotFoundException($"{dll} is not built: run scripts/setup.sh (it builds the solution)", dll);
        }
        Directory.CreateDirectory(folder);
        var supervisor = new ProcessSupervisor(Path.Combine(folder, "logs"));
        var azurite = await AzuriteProcess.StartAsync(BuildRoot, ct).ConfigureAwait(false);
        return new LocalSystem(azurite, folder, supervisor);
    }

    /// <summary>Creates the run's containers, queues and manifest (the operator's step).</summary>
    public Task ProvisionAsync(RunManifest manifest, CancellationToken ct) => new RunProvisioner(Azurite.Connection).ProvisionAsync(manifest, ct);

    /// <summary>Starts the function in drain mode (one instance; the lease makes more possible).</summary>
    public void StartFunction(int threads)
    {
        function = supervisor.Start("function", FunctionDll, ["drain", "--instance-id", "local-function"], new Dictionary<string, string>
        {
            [FunctionSettings.Storage] = Azurite.ConnectionString,
            [FunctionSettings.KeyDirectory] = keyFolder,
            [FunctionSettings.Device] = "auto",
            [FunctionSettings.Threads] = threads.ToString(CultureInfo.InvariantCulture),
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__SplitFunctions"] = "Information",
        });
    }

    public async Task StopFunctionAsync()
    {
        if (function is null || function.HasExited) return;
        // SIGTERM: the host checkpoints its runs and releases their leases before it exits.
        using (var term = Process.Start("kill", ["-TERM", function.Id.ToString(CultureInfo.InvariantCulture)])) await term.WaitForExitAsync().ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await function.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            ProcessSupervisor.Kill(function);
        }
    }

    /// <summary>Onboards a hospital: mints its SAS, runs `splitfn-agent init`, and loads its new key into the function's key folder.</summary>
    public async Task<EnrolledHospital> EnrollAsync(string runId, HospitalShare share, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(share);
        var folder = Path.Combine(Folder, "hospitals", share.HospitalId);
        Directory.CreateDirectory(folder);
        var config = Path.Combine(folder, "agent.json");
        var credentials = await new HospitalAccess(Azurite.Connection).MintAsync(share.HospitalId, TimeSpan.FromDays(1), ct).ConfigureAwait(false);
        string[] args =
        [
            "--config", config, "init", "--force",
            "--hospital", share.HospitalId, "--run", runId, "--data", share.DataPath,
            "--container-uri", $"{credentials.ContainerUri}?{credentials.ContainerSas}",
            "--features-queue-uri", $"{credentials.FeaturesQueueUri}?{credentials.FeaturesQueueSas}",
            "--replies-queue-uri", $"{credentials.RepliesQueueUri}?{credentials.RepliesQueueSas}",
            "--key-dir", Path.Combine(folder, "keys"), "--state", Path.Combine(folder, "state"),
            "--partition-seed", share.Seed.ToString(CultureInfo.InvariantCulture),
            "--partition-weights", string.Join(',', share.Weights.Select(w => w.ToString(CultureInfo.InvariantCulture))),
            "--partition-index", share.Index.ToString(CultureInfo.InvariantCulture),
            .. share.ExtraInitArguments,
        ];
        var code = await supervisor.RunAsync($"{share.HospitalId}-init", AgentDll, args, cancellationToken: ct).ConfigureAwait(false);
        if (code != 0) throw new InvalidOperationException($"splitfn-agent init for {share.HospitalId} failed with exit code {code}; see {Path.Combine(Folder, "logs", share.HospitalId + "-init.log")}");

        // The operator's side of onboarding: the hospital's key goes where the function reads keys.
        using var configJson = JsonDocument.Parse(await File.ReadAllBytesAsync(config, ct).ConfigureAwait(false));
        var keyNode = configJson.RootElement.GetProperty("key");
        var keyId = keyNode.GetProperty("keyId").GetString()!;
        var hospitalKey = new LocalKeyStore(keyNode.GetProperty("directory").GetString()!).GetKey(share.HospitalId, keyId);
        var functionKeys = new LocalKeyStore(keyFolder);
        if (functionKeys.GetCurrentKeyId(share.HospitalId) != keyId) functionKeys.ImportKey(share.HospitalId, keyId, hospitalKey.Key);
        return new EnrolledHospital(share.HospitalId, folder, config);
    }

    /// <summary>Runs `splitfn-agent train` for every hospital at once, echoing their log lines; returns each exit code.</summary>
    public async Task<IReadOnlyDictionary<string, int>> TrainAsync(IReadOnlyList<EnrolledHospital> hospitals, int threads, CancellationToken ct)
    {
        var runs = hospitals.Select(async h => (h.HospitalId, Code: await supervisor.RunAsync($"{h.HospitalId}-train", AgentDll,
            ["--config", h.ConfigPath, "--output", "log", "--threads", threads.ToString(CultureInfo.InvariantCulture), "train"], echo: true, cancellationToken: ct).ConfigureAwait(false)));
        return (await Task.WhenAll(runs).ConfigureAwait(false)).ToDictionary(r => r.HospitalId, r => r.Code);
    }

    /// <summary>Runs `splitfn-agent evaluate` at one hospital (metrics are computed there).</summary>
    public Task<int> EvaluateAsync(EnrolledHospital hospital, string split, int threads, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(hospital);
        return supervisor.RunAsync($"{hospital.HospitalId}-evaluate-{split}", AgentDll,
            ["--config", hospital.ConfigPath, "--output", "log", "--threads", threads.ToString(CultureInfo.InvariantCulture), "evaluate", "--split", split], echo: true, cancellationToken: ct);
    }

    public async ValueTask DisposeAsync()
    {
        await StopFunctionAsync().ConfigureAwait(false);
        await supervisor.DisposeAsync().ConfigureAwait(false);
        await Azurite.DisposeAsync().ConfigureAwait(false);
    }
}
