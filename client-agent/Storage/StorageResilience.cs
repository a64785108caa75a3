using System.Net.Sockets;
using Azure;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace SplitFunctions.ClientAgent.Storage;

/// <summary>
/// The one resilience policy of every storage call the agent makes (Polly): an overall outage budget, retries with
/// exponential backoff and jitter on transient failures, a circuit breaker so a dead endpoint is probed rather than
/// hammered, and a timeout per attempt. What still fails becomes an <see cref="AgentException"/> with its exit code.
/// </summary>
public sealed class StorageResilience
{
    private readonly ResiliencePipeline _pipeline;
    private readonly TimeSpan _outageBudget;
    private long _retries;

    /// <summary>Retries made so far by every call: a caller that sees it unchanged across its call knows storage answered at once.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    public StorageResilience(TimeSpan outageBudget, Action<string>? onRetry = null, TimeSpan? attemptTimeout = null, TimeSpan? maxDelay = null)
    {
        _outageBudget = outageBudget;
        var transient = new Func<Outcome<object>, ResilienceContext, bool>((outcome, context) =>
            outcome.Exception is { } e && (e is BrokenCircuitException || IsTransient(e, context.CancellationToken)));
        _pipeline = new ResiliencePipelineBuilder()
            .AddTimeout(outageBudget)
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(transient(args.Outcome, args.Context)),
                MaxRetryAttempts = int.MaxValue, // bounded by the outage budget above, not by a count
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(250),
                MaxDelay = maxDelay ?? TimeSpan.FromSeconds(15),
                OnRetry = args =>
                {
                    Interlocked.Increment(ref _retries);
                    onRetry?.Invoke($"storage: {Describe(args.Outcome.Exception)}; retry {args.AttemptNumber + 1} in {args.RetryDelay.TotalSeconds:F1} s");
                    return ValueTask.CompletedTask;
                },
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } e && IsTransient(e, args.Context.CancellationToken)),
                FailureRatio = 0.5,
                MinimumThroughput = 4,
                SamplingDuration = TimeSpan.FromSeconds(30),
                BreakDuration = TimeSpan.FromSeconds(5),
                OnOpened = args =>
                {
                    onRetry?.Invoke($"storage: circuit open for {args.BreakDuration.TotalSeconds:F0} s after repeated failures; waiting for storage to come "
                        + $"back");
                    return ValueTask.CompletedTask;
                },
            })
            .AddTimeout(attemptTimeout ?? TimeSpan.FromSeconds(30))
            .Build();
    }

    /// <summary>Runs one storage operation under the policy; <paramref name="what"/> names it in messages.</summary>
    public async Task<T> RunAsync<T>(string what, Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(operation);
        try
        {
            return await _pipeline.ExecuteAsync(async ct => await operation(ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is TimeoutRejectedException or BrokenCircuitException || IsTransient(e, cancellationToken))
        {
            throw new AgentException(ExitCode.StorageUnreachable,
                $"storage unreachable while trying to {what} for {_outageBudget.TotalSeconds:F0} s ({Describe(e)}). Check the network, proxy and firewall " +
                "to the storage endpoints and that the storage account (or Azurite) is running; the next start resumes where this one stopped.", e);
        }
        catch (RequestFailedException e) when (e.Status is 401 or 403)
        {
            throw new AgentException(ExitCode.StorageAccess,
                $"storage refused the credentials while trying to {what} ({e.Status} {e.ErrorCode}). The SAS may have expired or lack a permission: " +
                "ask the operator for new storage URIs (docs/deploy.md, onboarding) and update the configuration.", e);
        }
        catch (RequestFailedException e) when (e.Status == 404 && e.ErrorCode is "ContainerNotFound" or "QueueNotFound")
        {
            throw new AgentException(ExitCode.StorageAccess,
                $"storage says the {(e.ErrorCode == "QueueNotFound" ? "queue" : "container")} does not exist while trying to {what}: " +
                "the operator has not provisioned this hospital (`splitfn-operator hospital add`, docs/operator.md) or the configuration names another "
                    + "account.", e);
        }
    }

    public Task RunAsync(string what, Func<CancellationToken, Task> operation, CancellationToken cancellationToken) =>
        RunAsync(what, async ct =>
        {
            await operation(ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <summary>Failures that may go away by themselves: network errors, timeouts, throttling, server errors.</summary>
    public static bool IsTransient(Exception exception, CancellationToken callerToken) => exception switch
    {
        RequestFailedException r => r.Status is 0 or 408 or 429 or >= 500 || r.InnerException is HttpRequestException or IOException or SocketException,
        HttpRequestException or IOException or SocketException or TimeoutRejectedException => true,
        // An HTTP timeout surfaces as a cancellation nobody asked for.
        OperationCanceledException => !callerToken.IsCancellationRequested,
        AggregateException a => a.InnerExceptions.All(i => IsTransient(i, callerToken)),
        _ => false,
    };

    private static string Describe(Exception? e) => e switch
    {
        null => "failed",
        RequestFailedException { Status: 0 } r => r.InnerException?.Message ?? r.Message.Split('\n')[0],
        RequestFailedException r => $"{r.Status} {r.ErrorCode}".Trim(),
        _ => e.Message.Split('\n')[0],
    };
}
