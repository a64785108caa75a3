namespace SplitFunctions.LocalRun.Chaos;

/// <summary>What the harness does to the running system at one point.</summary>
public enum FaultKind
{
    /// <summary>kill -9 of the function or of one agent (drawn when it fires, among the processes still running), then a restart.</summary>
    Kill,

    /// <summary>Storage unreachable for every process for a drawn number of seconds.</summary>
    Outage,

    /// <summary>Copies of valid `features` messages re-enqueued now (concurrent duplicates and replays of older ones).</summary>
    Duplicate,

    /// <summary>A valid message held back (received, not deleted) so later messages overtake it, and an old one re-sent late.</summary>
    Reorder,

    /// <summary>A burst of hostile messages.</summary>
    Hostile,
}

/// <summary>One planned fault: it fires once the run's progress (0 to 1) reaches <see cref="At"/>.</summary>
public sealed record PlannedFault(double At, FaultKind Kind, int Count);

/// <summary>The settings a plan is drawn from.</summary>
public sealed record ChaosSettings(int Kills, int Hostile, int OutageMinSeconds, int OutageMaxSeconds, long Seed)
{
    /// <summary>One outage per five kills, at least one.</summary>
    public int Outages => Math.Max(1, Kills / 5);

    /// <summary>A duplicate round and a reorder round per kill, at least two each.</summary>
    public int Rounds => Math.Max(2, Kills);

    /// <summary>Hostile messages go out in bursts, about one burst per kill.</summary>
    public int HostileBursts => Math.Min(Math.Max(1, Hostile), Math.Max(2, Kills));
}

/// <summary>
/// The seeded schedule of one mode's faults: every fault at a progress point drawn from the seed, so a printed seed
/// replays the same plan. Which process a kill hits and how long an outage lasts are drawn from the same generator when
/// they fire, so they also depend on which processes are running then (the run's timing).
/// </summary>
public static class ChaosPlan
{
    // Faults fall between 3% and 90% of the run: before the first step there is nothing to lose, after the last nothing to test.
    private const double First = 0.03, Last = 0.90;

    public static IReadOnlyList<PlannedFault> Draw(ChaosSettings settings, Random random)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(random);
        var faults = new List<PlannedFault>();
        void Add(FaultKind kind, int times, Func<int, int> count)
        {
            for (var i = 0; i < times; i++) faults.Add(new PlannedFault(First + random.NextDouble() * (Last - First), kind, count(i)));
        }
        Add(FaultKind.Kill, settings.Kills, _ => 1);
        // The first kill lands at the start: a run that finishes within seconds (a smoke run on a quiet machine) still
        // meets one. Its point is drawn all the same, so the rest of a seed's plan is unchanged.
        if (settings.Kills > 0) faults[0] = faults[0] with { At = 0 };
        Add(FaultKind.Outage, settings.Outages, _ => 1);
        Add(FaultKind.Duplicate, settings.Rounds, _ => 1 + random.Next(3));
        Add(FaultKind.Reorder, settings.Rounds, _ => 1);
        var bursts = settings.Hostile == 0 ? 0 : settings.HostileBursts;
        Add(FaultKind.Hostile, bursts, i => settings.Hostile / bursts + (i < settings.Hostile % bursts ? 1 : 0));
        return [.. faults.OrderBy(f => f.At)];
    }
}
