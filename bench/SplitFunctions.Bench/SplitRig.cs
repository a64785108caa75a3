using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;
using SplitFunctions.LocalRun.LocalStorage;

namespace SplitFunctions.Bench;

/// <summary>
/// The cloud side a benchmark hospital talks to, in this process: one Azurite started for the run, hospital keys in a
/// temporary key folder, provisioned runs, and the function's real drain loop (QueueDrainService over MessageRouter),
/// as tests/SplitFunctions.Tests/Function/RunHarness.cs drives it. Started with links (<see cref="StartAsync(LinkShape?)"/>),
/// the function side reaches Azurite through <see cref="FunctionLink"/> (in the storage account's region) and the
/// hospitals through <see cref="HospitalLink"/> (over the internet), latency proxies that also count round trips.
/// </summary>
public sealed class SplitRig : IAsyncDisposable
{
    private readonly string keyFolder;

    private SplitRig(AzuriteProcess azurite, string keyFolder, StorageLink? functionLink, StorageLink? hospitalLink)
    {
        Azurite = azurite;
        this.keyFolder = keyFolder;
        FunctionLink = functionLink;
        HospitalLink = hospitalLink;
        Storage = functionLink?.Connection ?? azurite.Connection;
        HospitalStorage = hospitalLink?.Connection ?? azurite.Connection;
        Keys = new LocalKeyStore(keyFolder);
        Frames = new ServerFrameStore(azurite.Connection, Keys);
        var store = new RunStore(Storage.GetBlobContainerClient(StorageNames.RunsContainer), 3);
        Runs = new LeasedRuns(store, Frames, TorchSharp.torch.CPU, "bench", NullLogger<LeasedRuns>.Instance);
        Router = MessageRouter.Create(Runs, Frames, Timeline);
        Stream = new TemporalFeatureStream(Frames);
        Processor = new TimedProcessor(Router, Timeline);
    }

    public AzuriteProcess Azurite { get; }

    /// <summary>Storage as the function reaches it (through <see cref="FunctionLink"/> when there is one).</summary>
    public StorageConnection Storage { get; }

    /// <summary>Storage as the hospitals reach it (through <see cref="HospitalLink"/> when there is one).</summary>
    public StorageConnection HospitalStorage { get; }

    /// <summary>The function's connection string, for a function started as its own process.</summary>
    public string FunctionConnectionString => FunctionLink?.ConnectionString ?? Azurite.ConnectionString;

    /// <summary>The function's way to storage, or null when it reaches Azurite directly.</summary>
    public StorageLink? FunctionLink { get; }

    /// <summary>The hospitals' way to storage, or null when they reach Azurite directly; its shape is the hospitals' round trip.</summary>
    public StorageLink? HospitalLink { get; }

    /// <summary>The hospitals' key files, which a function started as its own process reads (SplitFunctions__KeyDirectory).</summary>
    public string KeyFolder => keyFolder;

    public LocalKeyStore Keys { get; }

    public ServerFrameStore Frames { get; }

    public LeasedRuns Runs { get; }

    public MessageRouter Router { get; }

    /// <summary>The timings of the last vanilla step the service applied.</summary>
    public StepTimeline Timeline { get; } = new();

    /// <summary>Temporal mode's feature windows, streamed from the chunks as the function's epochs read them.</summary>
    public TemporalFeatureStream Stream { get; }

    /// <summary>The server as the drain loop sees it, recording when and how long each message was worked on.</summary>
    public TimedProcessor Processor { get; }

    /// <summary>
    /// Starts Azurite; with <paramref name="functionLink"/> the function reaches it through a proxy of that shape and the
    /// hospitals through one whose shape <see cref="HospitalLink"/> sets (none at first).
    /// </summary>
    public static async Task<SplitRig> StartAsync(LinkShape? functionLink = null)
    {
        var azurite = await AzuriteProcess.StartAsync(RepoPaths.Root).ConfigureAwait(false);
        var folder = Path.Combine(Path.GetTempPath(), "splitfn-bench-keys-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return functionLink is null
            ? new SplitRig(azurite, folder, null, null)
            : new SplitRig(azurite, folder, new StorageLink(azurite, functionLink), new StorageLink(azurite, LinkShape.None));
    }

    /// <summary>Provisions the run (manifest, containers, queues) and gives each hospital a key.</summary>
    public async Task ProvisionAsync(RunManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        await new RunProvisioner(Storage).ProvisionAsync(manifest).ConfigureAwait(false);
        foreach (var hospital in manifest.Hospitals)
        {
            if (Keys.GetCurrentKeyId(hospital) is null) Keys.CreateKey(hospital);
        }
    }

    /// <summary>Runs <paramref name="work"/> on the benchmark's own run, holding its gate as the function does while it trains.</summary>
    public async Task<T> UnderRunGateAsync<T>(string runId, Func<LeasedRun, Task<T>> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        var run = await Runs.OpenAsync(runId, CancellationToken.None).ConfigureAwait(false)
            ?? throw new InvalidOperationException("the benchmark's own run is held by another writer");
        await run.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            return await work(run).ConfigureAwait(false);
        }
        finally
        {
            run.Gate.Release();
        }
    }

    /// <summary>
    /// Starts the function's drain loop (what `SplitFunctions.Functions drain` runs) on this Azurite; by default as the product configures it.
    /// </summary>
    public async Task<QueueDrainService> StartDrainAsync(bool prefetch, TimeSpan maxPollDelay, bool overlapCommits = true)
    {
        var options = new DrainOptions(TimeSpan.FromSeconds(60), 5, ExitWhenEmpty: false, maxPollDelay)
        {
            Prefetch = prefetch,
            OverlapCommits = overlapCommits
        };
        var drain = new QueueDrainService(Storage, Processor, new PoisonQueue(Storage), options, new BenchLifetime(), NullLogger<QueueDrainService>.Instance);
        await drain.StartAsync(CancellationToken.None).ConfigureAwait(false);
        return drain;
    }

    public async ValueTask DisposeAsync()
    {
        await Runs.DisposeAsync().ConfigureAwait(false);
        if (HospitalLink is not null) await HospitalLink.DisposeAsync().ConfigureAwait(false);
        if (FunctionLink is not null) await FunctionLink.DisposeAsync().ConfigureAwait(false);
        await Azurite.DisposeAsync().ConfigureAwait(false);
        try
        {
            Directory.Delete(keyFolder, recursive: true);
        }
        catch (IOException)
        {
            // A key folder left in the temp folder is harmless.
        }
    }

    private sealed class BenchLifetime : IHostApplicationLifetime
    {
        public CancellationToken ApplicationStarted => CancellationToken.None;

        public CancellationToken ApplicationStopping => CancellationToken.None;

        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void StopApplication()
        {
        }
    }
}

/// <summary>
/// When the server took one message (Stopwatch timestamps: begun, its step applied with the run's gate free again, its
/// commit ended) and where its time went.
/// </summary>
public sealed record ServerStep(long Start, long Applied, long End, StepTimings Timings)
{
    /// <summary>From the message's start to its step applied: reading the frame, validating, computing, (a due checkpoint).</summary>
    public double ApplyMs => Stopwatch.GetElapsedTime(Start, Applied).TotalMilliseconds;

    public double TotalMs => Stopwatch.GetElapsedTime(Start, End).TotalMilliseconds;
}

/// <summary>The server (its message router) with a record per message of when it started and ended, for latency breakdowns and busy time.</summary>
public sealed class TimedProcessor(MessageRouter inner, StepTimeline timeline) : IMessageProcessor
{
    private static readonly StepTimings None = new(0, 0, 0, 0, 0, 0);

    private readonly ConcurrentDictionary<(string Hospital, long Sequence), ServerStep> steps = new();

    public async Task<MessageOutcome> ProcessAsync(string messageText, long dequeueCount, CancellationToken cancellationToken) =>
        await (await BeginAsync(messageText, dequeueCount, cancellationToken).ConfigureAwait(false)).Outcome.ConfigureAwait(false);

    // As the drain loop drives the router: the step's commit may still run while the next message begins.
    public async Task<PendingOutcome> BeginAsync(string messageText, long dequeueCount, CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        var pending = await inner.BeginAsync(messageText, dequeueCount, cancellationToken).ConfigureAwait(false);
        return new PendingOutcome(RecordAsync(MessageCodec.ParseFrame(messageText), start, Stopwatch.GetTimestamp(), pending.Outcome));
    }

    private async Task<MessageOutcome> RecordAsync(FrameMessage message, long start, long applied, Task<MessageOutcome> outcome)
    {
        var done = await outcome.ConfigureAwait(false);
        steps[(message.HospitalId, message.Sequence)] = new ServerStep(start, applied, Stopwatch.GetTimestamp(),
            timeline.Find(message.RunId, message.HospitalId, message.Sequence) ?? None);
        return done;
    }

    public void Prefetch(string messageText, CancellationToken cancellationToken) => inner.Prefetch(messageText, cancellationToken);

    /// <summary>The server's record of a hospital's message, or null when it has not been handled.</summary>
    public ServerStep? Find(string hospital, long sequence) => steps.TryGetValue((hospital, sequence), out var step) ? step : null;

    public IReadOnlyList<ServerStep> All => [.. steps.Values];
}
