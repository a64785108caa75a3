namespace SplitFunctions.ClientAgent.Wire;

/// <summary>
/// How long the agent sleeps between looks at its reply queue while it waits for one reply: an eighth of the time
/// waited so far, at least <see cref="Shortest"/>, at most <see cref="Cap"/> while the wait is shorter than
/// <see cref="FastFor"/> (a step of a running function) and at most <see cref="Slowest"/> after it (a function starting
/// cold), each sleep scaled by a random factor in [1 - <see cref="Jitter"/>, 1 + Jitter] so hospitals do not poll in step.
/// A reply is picked up at most about a sleep plus half a storage round trip after it was sent.
/// </summary>
public sealed record ReplyPolling(TimeSpan Shortest, TimeSpan Cap, TimeSpan FastFor, TimeSpan Slowest, double Jitter)
{
    /// <summary>
    /// The agent's: 5 ms growing to 40 ms for the first 30 s of a wait, then up to 1 s. While a reply is awaited that is at
    /// most about 25 looks a second (an empty receive each); a step of a few hundred milliseconds is seen at most about
    /// 40 ms late, where backing off to 1 s from the start (<see cref="Backoff"/>) let a wait of 2 s be seen up to 250 ms late.
    /// </summary>
    public static ReplyPolling Default { get; } = new(TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(40), TimeSpan.FromSeconds(30),
        TimeSpan.FromSeconds(1), 0.25);

    /// <summary>The agent's rule before issue 33 (an eighth of the time waited, 20 ms to 1 s, no jitter), kept for the benchmarks' before/after.</summary>
    public static ReplyPolling Backoff { get; } = new(TimeSpan.FromMilliseconds(20), TimeSpan.FromSeconds(1), TimeSpan.Zero, TimeSpan.FromSeconds(1), 0);

    /// <summary>The sleep before the next look, after <paramref name="waited"/> of waiting for this reply.</summary>
    public TimeSpan Next(TimeSpan waited, Random? random = null)
    {
        var longest = waited < FastFor ? Cap : Slowest;
        var ms = Math.Clamp(waited.TotalMilliseconds / 8, Shortest.TotalMilliseconds, Math.Max(Shortest.TotalMilliseconds, longest.TotalMilliseconds));
        if (Jitter > 0) ms *= 1 + Jitter * (2 * (random ?? Random.Shared).NextDouble() - 1);
        return TimeSpan.FromMilliseconds(ms);
    }
}
