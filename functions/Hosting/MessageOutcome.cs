using SplitFunctions.Core.CommandLine;

namespace SplitFunctions.Functions.Hosting;

/// <summary>What the queue side must do with a message once the server has looked at it.</summary>
public enum OutcomeKind
{
    /// <summary>The effect is durable: delete the message.</summary>
    Completed,

    /// <summary>The message can never succeed (tampered, malformed, wrong run, NaN, oversized): poison it at once, with the reason.</summary>
    Rejected,

    /// <summary>Not now (the run is busy on another instance): leave it for later without counting a failure.</summary>
    Deferred,

    /// <summary>
    /// Part of the work is durable and more remains (a temporal run's next epoch): queue the message again as a fresh
    /// delivery and delete this one, so a long run is many short deliveries and a few kills in it do not poison it.
    /// </summary>
    Continue,
}

/// <summary>
/// The outcome with its reason, as logged and recorded on `features-rejections`. Reasons quote what senders wrote (ids,
/// blob names, field values), so their control characters are escaped here, once, for every log and record they reach.
/// </summary>
public sealed record MessageOutcome(OutcomeKind Kind, string Detail)
{
    public string Detail { get; init; } = Printable.Escape(Detail);

    public static MessageOutcome Completed(string detail) => new(OutcomeKind.Completed, detail);

    public static MessageOutcome Rejected(string reason) => new(OutcomeKind.Rejected, reason);

    public static MessageOutcome Deferred(string reason) => new(OutcomeKind.Deferred, reason);

    public static MessageOutcome Continue(string progress) => new(OutcomeKind.Continue, progress);
}

/// <summary>A message whose effect is applied in memory; <see cref="Outcome"/> completes when it is durable (or fails: the message is retried).</summary>
public sealed record PendingOutcome(Task<MessageOutcome> Outcome);
