using System.Diagnostics;
using System.Globalization;
using Azure.Storage.Queues;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.LocalRun.Chaos;

/// <summary>One three-hospital run of one mode, with or without faults (a temporal run without faults is the reference).</summary>
/// <remarks>
/// <paramref name="Insider"/>: a further hospital of the run, onboarded and in the manifest but without an agent, that sends
/// <paramref name="InsiderAttacks"/> attacks (<see cref="InsiderMessages"/>) spread over the training, plus a forged reply to
/// an honest hospital after every third one.
/// </remarks>
public sealed record ChaosRunSettings(TrainingMode Mode, ModelDefinition Model, string DataPath, int Epochs, long Seed, string ConsortiumSecretPath,
    IReadOnlyList<string> Hospitals, TimeSpan Deadline, string? Insider = null, int InsiderAttacks = 0)
{
    /// <summary>Vanilla: batches each hospital keeps in flight (manifest pipelineDepth); null: synchronous.</summary>
    public int? PipelineDepth { get; init; }

    /// <summary>libtorch threads per process: one, so the same run computes the same floats whatever else the machine does.</summary>
    public const int Threads = 1;
}

/// <summary>What one run measured.</summary>
public sealed record ChaosRunResult(
    string Mode, string RunId, bool Faulted, bool Completed, double Seconds, StepLedger Ledger,
    IReadOnlyDictionary<string, int> Faults, int FaultsNotFired, double OutageSeconds, IReadOnlyList<string> UnplannedExits,
    IReadOnlyList<HostileOutcome> Hostile, IReadOnlyList<string> OtherPoisoned, byte[]? ServerWeights)
{
    /// <summary>Temporal: wall seconds per server epoch once every hospital was done (the reference run's paces the faulted run's faults).</summary>
    public double EpochSeconds { get; init; }

    /// <summary>The function's peak resident memory (VmHWM, largest over its processes), bytes; 0 where /proc is not there.</summary>
    public long FunctionPeakRss { get; init; }

    /// <summary>Values of the final server weights that are NaN or infinite (null: no checkpoint to read).</summary>
    public long? NonFiniteServerValues { get; init; }

    /// <summary>Forged replies the insider wrote on honest hospitals' reply queues.</summary>
    public int ForgedReplies { get; init; }
}

/// <summary>A hostile message and what became of it: poisoned with this reason, or not poisoned (null).</summary>
public sealed record HostileOutcome(HostileKind Kind, string? Reason);

/// <summary>
/// Runs the real system (Azurite, the function in drain mode, one agent per hospital, all processes, storage traffic
/// through the outage proxies) and fires the seeded plan of faults at it as the run progresses, restarting whatever it
/// killed; afterwards compares what each hospital committed with the server's durable state and matches every hostile
/// message with its poison record.
/// </summary>
public sealed class ChaosRun
{
    private static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(5);
    private const int VisibilitySeconds = 5;
    private readonly ChaosRunSettings settings;
    private readonly ChaosSettings? chaos;
    private readonly Random random;
    private readonly Action<string> say;
    private readonly Dictionary<string, int> faults = new(StringComparer.Ordinal);
    private readonly List<string> unplanned = [];
    private readonly HashSet<string> heldBack = new(StringComparer.Ordinal);
    private readonly HashSet<int> killed = [];
    private double outageSeconds;
    private long peakRss;

    private readonly double epochSeconds;
    private DateTime epochClock = DateTime.MaxValue;

    private ChaosRun(ChaosRunSettings settings, ChaosSettings? chaos, double epochSeconds, Action<string> say)
    {
        this.settings = settings;
        this.chaos = chaos;
        this.epochSeconds = epochSeconds;
        this.say = say;
        random = new Random(unchecked((int)(chaos?.Seed ?? 0) ^ (int)((chaos?.Seed ?? 0) >> 32) ^ (int)settings.Mode));
    }

    /// <summary>
    /// Runs one mode; <paramref name="chaos"/> null runs it undisturbed (the temporal reference run). Temporal faults during
    /// the server's epochs are placed by <paramref name="epochSeconds"/>, the reference run's pace.
    /// </summary>
    public static Task<ChaosRunResult> RunAsync(ChaosRunSettings settings, ChaosSettings? chaos, double epochSeconds, string folder, Action<string> say,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(say);
        return new ChaosRun(settings, chaos, Math.Max(0.5, epochSeconds), say).RunAsync(Path.GetFullPath(folder), ct);
    }

    private string Label => (settings.Insider is not null ? "insider " : chaos is null ? "reference " : "") + settings.Mode.ToString().ToLowerInvariant();

    private async Task<ChaosRunResult> RunAsync(string folder, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        // The same run id for the reference run (each run has its own Azurite): the client layer's initial weights derive from it.
        var runId = $"chaos-{settings.Mode.ToString().ToLowerInvariant()}";
        var request = new RunRequest
        {
            RunId = runId,
            Model = settings.Model,
            Mode = settings.Mode,
            Hospitals = settings.Insider is { } insiderId ? [.. settings.Hospitals, insiderId] : settings.Hospitals,
            Seed = (ulong)settings.Seed,
            Epochs = settings.Epochs,
            BatchSize = settings.Model.BatchSize,
            LearningRate = settings.Model.Optimizer.LearningRate,
            PipelineDepth = settings.Mode == TrainingMode.Vanilla ? settings.PipelineDepth : null,
        };
        var secret = ConsortiumSecret.Load(settings.ConsortiumSecretPath);
        request = request with { Privacy = request.Privacy with { ConsortiumCommitment = secret.Commitment } };
        var manifest = RunCreation.BuildManifest(request);
        await using var system = await LocalSystem.StartAsync(folder, ct, outageProxies: chaos is not null).ConfigureAwait(false);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, system.Cancelled);
        var token = linked.Token;
        foreach (var hospital in request.Hospitals) await system.OnboardAsync(hospital, token).ConfigureAwait(false);
        await system.CreateRunAsync(request, token).ConfigureAwait(false);
        var weights = ImageStudy.HospitalWeights(settings.Hospitals.Count);
        var enrolled = (await Task.WhenAll(settings.Hospitals.Select((hospital, i)
            => system.EnrollAsync(runId, new HospitalShare(hospital, i, weights, settings.Seed,
            settings.DataPath, ["--consortium-secret", settings.ConsortiumSecretPath]), token))).ConfigureAwait(false)).ToList();
        var plan = new Queue<PlannedFault>(chaos is null ? [] : ChaosPlan.Draw(chaos, random));
        say($"{Label}: run {runId}, {settings.Epochs} epochs, hospitals {string.Join(", ", settings.Hospitals)}; {plan.Count} faults planned; logs in "
            + $"{Path.Combine(folder, "logs")}");

        var direct = system.Azurite.Connection;
        var queues = new QueueObserver(direct, runId, system.KeyFolder);
        var storm = new HostileMessages(direct, system.KeyFolder, runId, settings.Mode == TrainingMode.Temporal ? FrameKind.Chunk : FrameKind.Train,
            settings.Hospitals);
        var insider = settings.Insider is { } id ? new InsiderMessages(direct, system.KeyFolder, manifest, id) : null;
        // The insider's attacks at evenly spaced points of the training (temporal: of the upload, before its own `done`).
        var (from, to) = settings.Mode == TrainingMode.Temporal ? (0.02, 0.28) : (0.05, 0.85);
        var attacks = new Queue<double>(Enumerable.Range(0, insider is null ? 0 : settings.InsiderAttacks)
            .Select(i => from + (to - from) * i / Math.Max(1, settings.InsiderAttacks - 1)));
        var insiderDone = false;
        // A short visibility timeout: a message the killed function held comes back after seconds, not a minute.
        var functionSettings = new Dictionary<string,
            string>
        { [FunctionSettings.VisibilityTimeoutSeconds] = VisibilitySeconds.ToString(CultureInfo.InvariantCulture) };
        system.StartFunction(ChaosRunSettings.Threads, functionSettings);
        var agents = enrolled.ToDictionary(h => h.HospitalId, h => (Process?)system.StartTraining(h, ChaosRunSettings.Threads), StringComparer.Ordinal);
        var finished = new HashSet<string>(StringComparer.Ordinal);
        var restarts = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        var unplannedRestarts = 0;
        DateTime? outageEnds = null;
        DateTime? headDue = null;
        DateTime? epochsStarted = null;
        var nextProgress = DateTime.UtcNow + ProgressEvery;
        var serverEpochs = 0;
        var deadline = DateTime.UtcNow + settings.Deadline;
        const string FunctionName = "function";

        while (!token.IsCancellationRequested && DateTime.UtcNow < deadline)
        {
            var now = DateTime.UtcNow;
            // Processes: a planned kill is restarted after its pause; any other exit but an agent's 0 is an unplanned crash.
            if (system.Function is { HasExited: true } fn && !restarts.ContainsKey(FunctionName))
            {
                if (!killed.Remove(fn.Id))
                {
                    unplanned.Add($"function exited with code {fn.ExitCode} at {Progress(enrolled, manifest, serverEpochs):P0} (see logs/function.log)");
                    unplannedRestarts++;
                }
                restarts[FunctionName] = now + TimeSpan.FromSeconds(1);
            }
            foreach (var hospital in enrolled)
            {
                if (agents[hospital.HospitalId] is not { HasExited: true } agent || restarts.ContainsKey(hospital.HospitalId)) continue;
                if (killed.Remove(agent.Id))
                {
                    restarts[hospital.HospitalId] = now + TimeSpan.FromSeconds(0.5 + random.NextDouble() * 2.5);
                }
                else if (agent.ExitCode == 0)
                {
                    finished.Add(hospital.HospitalId);
                    agents[hospital.HospitalId] = null;
                }
                else
                {
                    unplanned.Add($"{hospital.HospitalId} agent exited with code {agent.ExitCode} at {Progress(enrolled, manifest, serverEpochs):P0} (see "
                        + $"logs/{hospital.HospitalId}-train.log)");
                    unplannedRestarts++;
                    restarts[hospital.HospitalId] = now + TimeSpan.FromSeconds(2);
                }
            }
            if (unplannedRestarts > 20) break; // Something is broken for good: report rather than loop.
            foreach (var (name, at) in restarts.Where(r => r.Value <= now).ToList())
            {
                restarts.Remove(name);
                if (name == FunctionName)
                {
                    system.StartFunction(ChaosRunSettings.Threads, functionSettings);
                    // An interrupted epoch starts again once the held message is visible again and the checkpoint is reloaded.
                    if (epochClock != DateTime.MaxValue) epochClock = now + TimeSpan.FromSeconds(VisibilitySeconds + 3);
                }
                else agents[name] = system.StartTraining(enrolled.Single(h => h.HospitalId == name), ChaosRunSettings.Threads);
            }
            if (outageEnds is { } ends && now >= ends)
            {
                system.BringStorageBack();
                outageEnds = null;
                say($"{Label}: storage back");
            }

            if (settings.Mode == TrainingMode.Temporal)
            {
                var epochs = await StepLedgers.EpochsCompletedAsync(direct, runId, token).ConfigureAwait(false);
                if (finished.Count == enrolled.Count && (epochs != serverEpochs || epochClock == DateTime.MaxValue)) epochClock = now;
                // The pace counts from the moment every hospital is done: what the faulted run's epoch phase will take per epoch.
                epochsStarted ??= finished.Count == enrolled.Count ? now : null;
                serverEpochs = epochs;
            }
            var progress = Progress(enrolled, manifest, serverEpochs);
            await queues.WatchAsync(token).ConfigureAwait(false);
            await queues.CollectPoisonAsync(token).ConfigureAwait(false);
            SampleFunctionRss(system);
            if (insider is not null)
            {
                while (attacks.TryPeek(out var at) && progress >= at)
                {
                    attacks.Dequeue();
                    await AttackAsync(insider, queues, enrolled, token).ConfigureAwait(false);
                }
                // Temporal epochs wait for every hospital of the manifest: the insider says it is done once the honest ones are.
                if (settings.Mode == TrainingMode.Temporal && !insiderDone && attacks.Count == 0
                    && enrolled.All(h => AgentProgress.Read(h.StatePath(runId)).DoneSent))
                {
                    await insider.SendDoneAsync(token).ConfigureAwait(false);
                    insiderDone = true;
                }
            }

            // Planned faults fire in order once the run reaches their point; a kill a random moment (0-2.5 s) later, so kills
            // also land mid-step rather than just after a state file changed.
            while (plan.TryPeek(out var head) && progress >= head.At)
            {
                headDue ??= now + TimeSpan.FromSeconds(head.Kind == FaultKind.Kill && head.At > 0 ? random.NextDouble() * 2.5 : 0);
                if (now < headDue || !CanFire(head, system, agents, restarts, outageEnds)) break;
                plan.Dequeue();
                headDue = null;
                outageEnds = await FireAsync(head, system, agents, restarts, storm, queues, token).ConfigureAwait(false) ?? outageEnds;
                if (head.Kind == FaultKind.Kill) break; // Let the loop see the killed process before the next kill.
            }

            var done = finished.Count == enrolled.Count && (settings.Mode != TrainingMode.Temporal || serverEpochs >= settings.Epochs);
            if (now >= nextProgress || done)
            {
                nextProgress = now + ProgressEvery;
                say($"{Label} {progress,4:P0} | {StepsLine(enrolled, manifest, serverEpochs)} | faults {faults.Values.Sum()} ({Summary(faults)}), "
                    + $"{plan.Count} left" +
                    (outageEnds is null ? "" : " | STORAGE DOWN") + (queues.Hostile.Count > 0 ? $" | hostile poisoned "
                        + $"{queues.Matched}/{queues.Hostile.Count}" : "") +
                    (unplanned.Count > 0 ? $" | UNPLANNED EXITS {unplanned.Count}" : ""));
            }
            if (done) break;
            await Task.Delay(TimeSpan.FromMilliseconds(250), token).ConfigureAwait(false);
        }
        if (outageEnds is not null) system.BringStorageBack();
        var completed = finished.Count == enrolled.Count;
        var epochPace = epochsStarted is { } started && serverEpochs > 0 ? (DateTime.UtcNow - started).TotalSeconds / serverEpochs : 0;

        // Attacks the run ended before (a short run on a quiet machine): sent now, so every mode meets every one.
        while (insider is not null && attacks.TryDequeue(out _)) await AttackAsync(insider, queues, enrolled, token).ConfigureAwait(false);
        // The storm's stragglers: messages still on the queue are poisoned by the running function within seconds each.
        var settle = DateTime.UtcNow + TimeSpan.FromSeconds(Math.Max(60, queues.Hostile.Count / 5));
        while (queues.Hostile.Count > queues.Matched && DateTime.UtcNow < settle && !token.IsCancellationRequested)
        {
            if (system.Function is { HasExited: true }) system.StartFunction(ChaosRunSettings.Threads, functionSettings);
            await queues.CollectPoisonAsync(token).ConfigureAwait(false);
            SampleFunctionRss(system);
            await Task.Delay(TimeSpan.FromMilliseconds(500), token).ConfigureAwait(false);
        }
        SampleFunctionRss(system);
        await system.StopFunctionAsync().ConfigureAwait(false);
        await queues.CollectPoisonAsync(token).ConfigureAwait(false);
        foreach (var agent in agents.Values.OfType<Process>()) ProcessSupervisor.Kill(agent);

        var ledger = await StepLedgers.ReadAsync(direct, manifest, enrolled, token).ConfigureAwait(false);
        var serverWeights = await StepLedgers.ServerWeightsAsync(direct, runId, token).ConfigureAwait(false);
        var server = settings.Mode == TrainingMode.Temporal ? serverWeights : null;
        var outcomes = queues.Hostile.Select(h => new HostileOutcome(h.Kind, queues.ReasonFor(h))).ToList();
        var other = queues.Unmatched.Select(r => $"{r.Reason} [{Shorten(r.Message)}]").ToList();
        return new ChaosRunResult(settings.Mode.ToString().ToLowerInvariant(), runId, chaos is not null, completed && ledger.Complete,
            clock.Elapsed.TotalSeconds,
            ledger, new Dictionary<string, int>(faults), plan.Count, outageSeconds, unplanned, outcomes, other, server)
        {
            EpochSeconds = epochPace,
            FunctionPeakRss = peakRss,
            NonFiniteServerValues = serverWeights is null ? null : ServerWeights.NonFinite(serverWeights),
            ForgedReplies = insider?.ForgedReplies ?? 0,
        };
    }

    // One attack of the insider (cycling through its kinds), and after every third a forged reply to an honest hospital's agent.
    private async Task AttackAsync(InsiderMessages insider, QueueObserver queues, List<EnrolledHospital> enrolled, CancellationToken ct)
    {
        var sent = queues.Hostile.Count(h => InsiderMessages.Kinds.Contains(h.Kind));
        var kind = InsiderMessages.Kinds[sent % InsiderMessages.Kinds.Length];
        queues.Sent(await insider.SendAsync(kind, ct).ConfigureAwait(false));
        Count("insider message");
        say($"{Label}: insider sends {kind}");
        if (sent % 3 != 2) return;
        // One of the latest honest messages seen on `features` (its reply is what its agent waits for now, or did a moment
        // ago); before any was seen, the message a hospital's agent is about to send (the reply names its MAC unknown).
        var seen = queues.Seen.TakeLast(3).Select(MessageCodec.ParseFrame).ToList();
        string victim;
        long sequence;
        string? answers;
        if (seen.Count > 0)
        {
            var message = seen[random.Next(seen.Count)];
            (victim, sequence, answers) = (message.HospitalId, message.Sequence, message.Mac);
        }
        else
        {
            var hospital = enrolled[random.Next(enrolled.Count)];
            var runId = $"chaos-{settings.Mode.ToString().ToLowerInvariant()}";
            (victim, sequence, answers) = (hospital.HospitalId, AgentProgress.Read(hospital.StatePath(runId)).NextSequence, new string('0', 64));
        }
        await insider.ForgeReplyAsync(victim, sequence, answers, ct).ConfigureAwait(false);
        Count("insider forged reply");
        say($"{Label}: insider forges a 'rejected' reply to {victim}#{sequence}");
    }

    // The function's peak resident set (Linux VmHWM), the largest over the processes it ran as.
    private void SampleFunctionRss(LocalSystem system)
    {
        if (system.Function is not { HasExited: false } function) return;
        try
        {
            var line = File.ReadLines($"/proc/{function.Id}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            if (line is null) return;
            var kib = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            peakRss = Math.Max(peakRss, kib * 1024);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            // Exited between the check and the read, or no /proc (not Linux): no sample.
        }
    }

    // A kill needs a process to kill; an outage waits for the one before it to end.
    private static bool CanFire(PlannedFault fault, LocalSystem system, Dictionary<string, Process?> agents, Dictionary<string, DateTime> restarts,
        DateTime? outageEnds) => fault.Kind switch
        {
            FaultKind.Kill => (system.Function is { HasExited: false } && !restarts.ContainsKey("function"))
                || agents.Any(a => a.Value is { HasExited: false } && !restarts.ContainsKey(a.Key)),
            FaultKind.Outage => outageEnds is null,
            _ => true,
        };

    // Returns when an outage it started ends.
    private async Task<DateTime?> FireAsync(PlannedFault fault, LocalSystem system, Dictionary<string, Process?> agents, Dictionary<string, DateTime> restarts,
        HostileMessages storm, QueueObserver queues, CancellationToken ct)
    {
        switch (fault.Kind)
        {
            case FaultKind.Kill:
                {
                    var running = agents.Where(a => a.Value is { HasExited: false } && !restarts.ContainsKey(a.Key)).Select(a => a.Key).ToList();
                    var functionUp = system.Function is { HasExited: false } && !restarts.ContainsKey("function");
                    if (functionUp && (running.Count == 0 || random.Next(2) == 0))
                    {
                        killed.Add(system.Function!.Id);
                        system.KillFunction();
                        Count("kill function");
                        say($"{Label}: kill -9 function (pid {system.Function.Id})");
                    }
                    else if (running.Count > 0)
                    {
                        var name = running[random.Next(running.Count)];
                        killed.Add(agents[name]!.Id);
                        ProcessSupervisor.Kill(agents[name]!);
                        Count("kill agent");
                        say($"{Label}: kill -9 {name} agent (pid {agents[name]!.Id})");
                    }
                    return null;
                }
            case FaultKind.Outage:
                {
                    var seconds = chaos!.OutageMinSeconds + random.NextDouble() * (chaos.OutageMaxSeconds - chaos.OutageMinSeconds);
                    system.TakeStorageDown();
                    outageSeconds += seconds;
                    Count("storage outage");
                    say($"{Label}: storage down for {seconds:F0} s (every process's connections refused and cut)");
                    return DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
                }
            case FaultKind.Duplicate:
                for (var i = 0; i < fault.Count && queues.Seen.Count > 0; i++)
                {
                    // Mostly the newest messages (concurrent duplicates), sometimes any older one (a late replay).
                    var seen = queues.Seen;
                    var index = random.Next(3) > 0 ? Math.Max(0, seen.Count - 1 - random.Next(Math.Min(3, seen.Count))) : random.Next(seen.Count);
                    await queues.Features.SendMessageAsync(QueueText.Encode(seen[index]), ct).ConfigureAwait(false);
                    Count("duplicate delivery");
                }
                return null;
            case FaultKind.Reorder:
                {
                    // Hold back the message at the head (received, not deleted): it comes back after 3-8 s, behind later ones.
                    var received = (await queues.Features.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(3 + random.Next(6)), ct).ConfigureAwait(false)).Value;
                    var head = received.Length == 1 ? received[0] : null;
                    if (head is { DequeueCount: 1 } && heldBack.Add(head.MessageId) && queues.IsValid(head.Body.ToString()))
                    {
                        Count("reordered delivery");
                    }
                    if (queues.Seen.Count > 1)
                    {
                        await queues.Features.SendMessageAsync(QueueText.Encode(queues.Seen[random.Next(queues.Seen.Count - 1)]), ct).ConfigureAwait(false);
                        Count("reordered delivery");
                    }
                    return null;
                }
            case FaultKind.Hostile:
                {
                    var kinds = HostileMessages.StormKinds;
                    for (var i = 0; i < fault.Count; i++)
                    {
                        var kind = kinds[queues.Hostile.Count % kinds.Length];
                        queues.Sent(await storm.SendAsync(kind, random, queues.Seen, ct).ConfigureAwait(false));
                        Count("hostile message");
                    }
                    return null;
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(fault), fault.Kind, null);
        }
    }

    private void Count(string kind) => faults[kind] = faults.GetValueOrDefault(kind) + 1;

    private static string Summary(Dictionary<string, int> faults)
        => string.Join(", ", faults.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key} {f.Value}"));

    private static string Shorten(string text) => text.Length <= 160 ? text : text[..160] + "...";

    // Vanilla: client steps committed. Temporal: 30% upload, 70% server epochs, the epoch in progress paced by the reference run.
    private double Progress(IReadOnlyList<EnrolledHospital> hospitals, RunManifest manifest, int serverEpochs)
    {
        var agents = hospitals.Select(h => AgentProgress.Read(h.StatePath(manifest.RunId))).ToList();
        var chunks = agents.Sum(a => (double)((a.TrainSamples + manifest.BatchSize - 1) / manifest.BatchSize));
        if (chunks == 0) return 0;
        if (manifest.Mode == TrainingMode.Temporal)
        {
            var inEpoch = epochClock == DateTime.MaxValue ? 0 : Math.Clamp((DateTime.UtcNow - epochClock).TotalSeconds / epochSeconds, 0, 0.95);
            return 0.3 * agents.Sum(a => a.ChunksSent) / chunks + 0.7 * Math.Min(manifest.Epochs, serverEpochs + inEpoch) / manifest.Epochs;
        }
        return agents.Sum(a => a.ClientSteps) / (chunks * manifest.Epochs);
    }

    private static string StepsLine(IReadOnlyList<EnrolledHospital> hospitals, RunManifest manifest, int serverEpochs)
    {
        var agents = hospitals.Select(h => AgentProgress.Read(h.StatePath(manifest.RunId))).ToList();
        return manifest.Mode == TrainingMode.Temporal
            ? string.Create(CultureInfo.InvariantCulture, $"chunks sent {agents.Sum(a => a.ChunksSent)}, hospitals done "
                + $"{agents.Count(a => a.DoneSent)}/{agents.Count}, server epochs {serverEpochs}/{manifest.Epochs}")
            : string.Create(CultureInfo.InvariantCulture, $"client steps {string.Join("/", agents.Select(a => a.ClientSteps))}");
    }
}
