namespace SplitFunctions.LocalRun.LocalStorage;

/// <summary>
/// What a proxied link adds to loopback: a one-way delay in each direction and, optionally, a bandwidth cap (bytes per
/// second, per direction). This machine has no netem (docs: REFERENCES.md "Latency on this machine"), so the project's
/// proxies shape the link themselves.
/// </summary>
public sealed record LinkShape(TimeSpan Upstream, TimeSpan Downstream, double? BytesPerSecond = null)
{
    /// <summary>Plain loopback: nothing added.</summary>
    public static LinkShape None { get; } = new(TimeSpan.Zero, TimeSpan.Zero);

    /// <summary>A symmetric link with the given round trip (half of it each way).</summary>
    public static LinkShape RoundTrip(TimeSpan roundTrip, double? bytesPerSecond = null) => new(roundTrip / 2, roundTrip / 2, bytesPerSecond);

    public TimeSpan RoundTripTime => Upstream + Downstream;

    public bool IsNone => Upstream <= TimeSpan.Zero && Downstream <= TimeSpan.Zero && BytesPerSecond is null;
}
