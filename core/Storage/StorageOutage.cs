using System.Net.Sockets;
using Azure;
using SplitFunctions.Core.Contract;

namespace SplitFunctions.Core.Storage;

/// <summary>
/// Tells a storage outage (nothing answers, a timeout, 5xx, throttling) from an answer that will not change on retry, and
/// waits one out: the function and the agent both ride out outages of any length instead of giving up after the SDK's
/// retries (which end in an <see cref="AggregateException"/>).
/// </summary>
public static class StorageOutage
{
    /// <summary>True when <paramref name="exception"/> means storage could not be reached or could not answer now.</summary>
    public static bool IsTransient(Exception exception, CancellationToken callerToken = default) => exception switch
    {
        RequestFailedException r => r.Status is 0 or 408 or 429 or >= 500 || r.InnerException is HttpRequestException or IOException or SocketException,
        HttpRequestException or IOException or SocketException => true,
        // An HTTP timeout surfaces as a cancellation nobody asked for.
        OperationCanceledException => !callerToken.IsCancellationRequested,
        AggregateException a => a.InnerExceptions.Count > 0 && a.InnerExceptions.All(i => IsTransient(i, callerToken)),
        _ => false,
    };

    /// <summary>The outage's cause in one line (no stack, no inner chain).</summary>
    public static string Describe(Exception exception) => exception switch
    {
        AggregateException { InnerExceptions.Count: > 0 } a => Describe(a.InnerExceptions[^1]),
        RequestFailedException { Status: 0 } r => (r.InnerException?.Message ?? r.Message).Split('\n')[0],
        RequestFailedException r => $"{r.Status} {r.ErrorCode}".Trim(),
        _ => exception.Message.Split('\n')[0],
    };

    /// <summary>Delay before attempt <paramref name="attempt"/> (1-based) of a wait: 1, 2, 4 ... capped at <paramref name="max"/>.</summary>
    public static TimeSpan Backoff(int attempt, TimeSpan max) =>
        TimeSpan.FromTicks(Math.Min(max.Ticks, TimeSpan.FromSeconds(1).Ticks << Math.Min(Math.Max(attempt - 1, 0), 20)));

    /// <summary>
    /// Calls <paramref name="probe"/> until it succeeds, backing off up to <paramref name="maxDelay"/> and reporting each
    /// failed attempt through <paramref name="report"/> (attempt, delay, cause). Returns how long storage stayed away.
    /// A non-transient failure is thrown: it is not an outage.
    /// </summary>
    public static async Task<TimeSpan> WaitUntilReachableAsync(Func<CancellationToken, Task> probe, TimeSpan maxDelay, Action<int, TimeSpan, string> report,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(report);
        var started = DateTimeOffset.UtcNow;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await probe(ct).ConfigureAwait(false);
                return DateTimeOffset.UtcNow - started;
            }
            catch (Exception e) when (IsTransient(e, ct))
            {
                var delay = Backoff(attempt, maxDelay);
                report(attempt, delay, Describe(e));
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
        }
    }
}
