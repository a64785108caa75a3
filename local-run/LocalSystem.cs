using System.Diagnostics;
using System.Globalization;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.LocalRun.LocalStorage;

namespace SplitFunctions.LocalRun;

/// <summary>How a simulated hospital's agent finds its share of the data (the agent's --partition-* options).</summary>
public sealed record HospitalShare(string HospitalId, int Index, IReadOnlyList<double> Weights, long Seed, string DataPath, string[] ExtraInitArguments);

/// <summary>A hospital enrolled in a run: its folder with the agent configuration, key store and state.</summary>
public sealed record EnrolledHospital(string HospitalId, string Folder, string ConfigPath)
{
    /// <summary>The agent's state.json (epoch, client steps, chunks sent), replaced atomically after each committed step.</summary>
    public string StatePath(string runId) => Path.Combine(Folder, "state", runId, "state.json");

    public string EvaluationPath(string runId) => Path.Combine(Folder, "state", runId, "evaluation.json");

    public string HistoryPath(string runId) => Path.Combine(Folder, "state", runId, "history.json");

    /// <summary>Where the hospital's leakage audit (`splitfn-agent audit`) writes audit.json and audit.png.</summary>
    public string AuditFolder => Path.Combine(Folder, "audit");
}

/// <summary>
/// The whole system on one machine, as real processes: Azurite, the function in drain mode, one `splitfn-agent` per
/// hospital. Hospitals are onboarded and the run created by the operator's code (core/Consortium, what
/// `splitfn-operator` runs); each agent is configured only from its onboarding package. Routed through outage proxies
/// (<see cref="StartAsync"/>), the function's and the agents' storage traffic passes two <see cref="TcpOutageProxy"/>s
/// that can take storage away; the operator's calls and observers use <see cref="AzuriteProcess.Connection"/> directly.
/// </summary>
public sealed class LocalSystem : IAsyncDisposable
{
    private readonly ProcessSupervisor supervisor;
    private readonly TcpOutageProxy[] proxies;
    private Process? function;

    private LocalSystem(AzuriteProcess azurite, string folder, ProcessSupervisor supervisor, TcpOutageProxy[] proxies)
    {
        Azurite = azurite;
        Folder = folder;
        this.supervisor = supervisor;
        this.proxies = proxies;
        KeyFolder = Path.Combine(folder, "function-keys");
        if (proxies.Length == 2)
        {
            var account = StorageConnection.DevelopmentAccountName;
            var blob = new Uri($"http://127.0.0.1:{proxies[0].Port}/{account}");
            var queue = new Uri($"http://127.0.0.1:{proxies[1].Port}/{account}");
            Storage = StorageConnection.FromSharedKey(new Azure.Storage.StorageSharedKeyCredential(account, StorageConnection.DevelopmentAccountKey), blob,
                queue);
            StorageConnectionString = $"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={StorageConnection.DevelopmentAccountKey};"
                + $"BlobEndpoint={blob};QueueEndpoint={queue};";
        }
        else
        {
            Storage = azurite.Connection;
            StorageConnectionString = azurite.ConnectionString;
        }
    }

    public AzuriteProcess Azurite { get; }

    /// <summary>Where the function and the agents reach storage: Azurite itself, or the outage proxies in front of it.</summary>
    public StorageConnection Storage { get; }

    public string StorageConnectionString { get; }

    /// <summary>The function's key folder: every hospital's key, as the operator's tool stored it.</summary>
    public string KeyFolder { get; }

    /// <summary>The function process while it runs (for watching its exit).</summary>
    public Process? Function => function;

    public string Folder { get; }

    public CancellationToken Cancelled => supervisor.Cancelled.Token;

    /// <summary>Built executables next to this one's build output (the solution builds them all).</summary>
    public static string FunctionDll => Path.Combine(BuildRoot, "functions", "bin", "Release", "net10.0", "SplitFunctions.Functions.dll");

    public static string AgentDll => Path.Combine(BuildRoot, "client-agent", "bin", "Release", "net10.0", "splitfn-agent.dll");

    private static string BuildRoot => AzuriteProcess.FindRepositoryRoot(AppContext.BaseDirectory);

    /// <summary>
    /// Starts Azurite; with <paramref name="outageProxies"/> the processes reach it only through proxies that <see cref="TakeStorageDown"/> can cut.
    /// </summary>
    public static async Task<LocalSystem> StartAsync(string folder, CancellationToken ct, bool outageProxies = false)
    {
        foreach (var dll in new[] { FunctionDll, AgentDll })
        {
            if (!File.Exists(dll)) throw new FileNotFoundException($"{dll} is not built: run scripts/setup.sh (it builds the solution)", dll);
        }
        Directory.CreateDirectory(folder);
        var supervisor = new ProcessSupervisor(Path.Combine(folder, "logs"));
        var azurite = await AzuriteProcess.StartAsync(BuildRoot, ct).ConfigureAwait(false);
        TcpOutageProxy[] proxies = outageProxies ? [new TcpOutageProxy(azurite.BlobPort), new TcpOutageProxy(azurite.QueuePort)] : [];
        return new LocalSystem(azurite, folder, supervisor, proxies);
    }

    /// <summary>Storage becomes unreachable for the function and the agents: new connections refused, open ones cut.</summary>
    public void TakeStorageDown()
    {
        foreach (var proxy in proxies) proxy.Down();
    }

    public void BringStorageBack()
    {
        foreach (var proxy in proxies) proxy.Up();
    }

    /// <summary>
    /// Onboards a hospital with the operator's code (`splitfn-operator hospital add`): container, reply queue, its key in the
    /// function's key folder, and its onboarding package (key and init arguments) in the hospital's folder.
    /// </summary>
    public async Task OnboardAsync(string hospitalId, CancellationToken ct)
    {
        // Through Storage: the SAS URIs in the package name the endpoint the hospital's agent will use.
        var onboarding = new HospitalOnboarding(Storage, new LocalFunctionKeys(new LocalKeyStore(KeyFolder)));
        var package = await onboarding.AddAsync(new OnboardingRequest { HospitalId = hospitalId, SasLifetime = TimeSpan.FromDays(1) }, ct)
            .ConfigureAwait(false);
        package.WriteTo(HospitalFolder(hospitalId));
    }

    /// <summary>Creates the run as `splitfn-operator run create` does (validated, every hospital onboarded).</summary>
    public Task<RunManifest> CreateRunAsync(RunRequest request, CancellationToken ct) => new RunCreation(Azurite.Connection).CreateAsync(request, ct);

    /// <summary>Starts the function in drain mode (one instance; the lease makes more possible); <paramref name="settings"/> adds app settings.</summary>
    public void StartFunction(int threads, IReadOnlyDictionary<string, string>? settings = null)
    {
        var environment = new Dictionary<string, string>
        {
            [FunctionSettings.Storage] = StorageConnectionString,
            [FunctionSettings.KeyDirectory] = KeyFolder,
            [FunctionSettings.Device] = "auto",
            [FunctionSettings.Threads] = threads.ToString(CultureInfo.InvariantCulture),
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__SplitFunctions"] = "Information",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) environment[key] = value;
        function = supervisor.Start("function", FunctionDll, ["drain", "--instance-id", "local-function"], environment);
    }

    /// <summary>kill -9 of the function: no checkpoint, no lease release (what a crash or an evicted container does).</summary>
    public void KillFunction()
    {
        if (function is not null) ProcessSupervisor.Kill(function);
    }

    public async Task StopFunctionAsync()
    {
        if (function is null || function.HasExited) return;
        // SIGTERM: the host checkpoints its runs and releases their leases before it exits.
        using (var term = Process.Start("kill", ["-TERM", function.Id.ToString(CultureInfo.InvariantCulture)])) await term.WaitForExitAsync()
            .ConfigureAwait(false);
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

    /// <summary>
    /// The hospital's side: `splitfn-agent init @init.rsp` in its onboarding package folder (what the operator's tool
    /// printed), plus its data share.
    /// </summary>
    public async Task<EnrolledHospital> EnrollAsync(string runId, HospitalShare share, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(share);
        var folder = HospitalFolder(share.HospitalId);
        var config = Path.Combine(folder, "agent.json");
        string[] args =
        [
            "--config", config, "init", "--force", "@" + OnboardingPackage.ResponseFile,
            "--run", runId, "--data", Path.GetFullPath(share.DataPath), "--state", Path.Combine(folder, "state"),
            "--partition-seed", share.Seed.ToString(CultureInfo.InvariantCulture),
            "--partition-weights", string.Join(',', share.Weights.Select(w => w.ToString(CultureInfo.InvariantCulture))),
            "--partition-index", share.Index.ToString(CultureInfo.InvariantCulture),
            // The studies train undefended arms on purpose (one client layer, no noise): the simulated hospitals accept any manifest.
            "--privacy-floor", "open",
            .. share.ExtraInitArguments,
        ];
        var code = await supervisor.RunAsync($"{share.HospitalId}-init", AgentDll, args, workingDirectory: folder, cancellationToken: ct).ConfigureAwait(false);
        if (code != 0) throw new InvalidOperationException($"splitfn-agent init for {share.HospitalId} failed with exit code {code}; see "
            + $"{Path.Combine(Folder, "logs", share.HospitalId + "-init.log")}");
        return new EnrolledHospital(share.HospitalId, folder, config);
    }

    private string HospitalFolder(string hospitalId) => Path.Combine(Folder, "hospitals", hospitalId);

    /// <summary>Runs `splitfn-agent train` for every hospital at once, echoing their log lines; returns each exit code.</summary>
    public async Task<IReadOnlyDictionary<string, int>> TrainAsync(IReadOnlyList<EnrolledHospital> hospitals, int threads, CancellationToken ct)
    {
        var runs = hospitals.Select(async h
            => (h.HospitalId, Code: await supervisor.RunAsync($"{h.HospitalId}-train", AgentDll, TrainArguments(h, threads), echo: true,
            cancellationToken: ct).ConfigureAwait(false)));
        return (await Task.WhenAll(runs).ConfigureAwait(false)).ToDictionary(r => r.HospitalId, r => r.Code);
    }

    /// <summary>Starts `splitfn-agent train` for one hospital and returns at once (its output goes to its log only).</summary>
    public Process StartTraining(EnrolledHospital hospital, int threads)
    {
        ArgumentNullException.ThrowIfNull(hospital);
        return supervisor.Start($"{hospital.HospitalId}-train", AgentDll, TrainArguments(hospital, threads));
    }

    private static string[] TrainArguments(EnrolledHospital hospital, int threads) =>
        ["--config", hospital.ConfigPath, "--output", "log", "--threads", threads.ToString(CultureInfo.InvariantCulture), "train"];

    /// <summary>Runs `splitfn-agent evaluate` at one hospital (metrics are computed there).</summary>
    public Task<int> EvaluateAsync(EnrolledHospital hospital, string split, int threads, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(hospital);
        return supervisor.RunAsync($"{hospital.HospitalId}-evaluate-{split}", AgentDll,
            ["--config", hospital.ConfigPath, "--output", "log", "--threads", threads.ToString(CultureInfo.InvariantCulture), "evaluate", "--split", split],
                echo: true, cancellationToken: ct);
    }

    /// <summary>The hospital plays the curious server against its own trained layer on its own data (nothing is sent).</summary>
    /// <remarks><paramref name="extra"/>: more `audit` arguments (public images, a colluder's weights; see AuditInputs).</remarks>
    public Task<int> AuditAsync(EnrolledHospital hospital, int decoderSteps, int threads, IReadOnlyList<string> extra, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(hospital);
        ArgumentNullException.ThrowIfNull(extra);
        return supervisor.RunAsync($"{hospital.HospitalId}-audit", AgentDll,
            ["--config", hospital.ConfigPath, "--output", "log", "--threads", threads.ToString(CultureInfo.InvariantCulture), "audit",
             "--steps", decoderSteps.ToString(CultureInfo.InvariantCulture), "--out", hospital.AuditFolder, .. extra], echo: true, cancellationToken: ct);
    }

    public async ValueTask DisposeAsync()
    {
        await StopFunctionAsync().ConfigureAwait(false);
        await supervisor.DisposeAsync().ConfigureAwait(false);
        foreach (var proxy in proxies) await proxy.DisposeAsync().ConfigureAwait(false);
        await Azurite.DisposeAsync().ConfigureAwait(false);
    }
}
