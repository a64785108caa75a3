using Microsoft.Extensions.Logging;
using SplitFunctions.Core.Protocol;
using SplitFunctions.Functions.Hosting;

namespace SplitFunctions.Functions.Training;

/// <summary>What the server says to a hospital on its reply queue: the answer to a message, or why it was rejected.</summary>
public sealed partial class HospitalReplies(ServerFrameStore frames, ILogger<HospitalReplies> logger)
{
    public async Task SendAsync(FrameMessage message, ReplyKind kind, string? blob, long length, string? sha256, double? loss, string? reason, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(message);
        var reply = new ReplyMessage
        {
            RunId = message.RunId,
            HospitalId = message.HospitalId,
            Sequence = message.Sequence,
            Kind = kind,
            KeyId = blob is null ? null : message.KeyId,
            Blob = blob,
            Length = length,
            Sha256 = sha256,
            Loss = loss is { } l && double.IsFinite(l) ? l : null,
            Reason = reason,
        };
        var queue = frames.Replies(message.HospitalId);
        await queue.SendMessageAsync(MessageCodec.Serialize(reply), cancellationToken: ct).ConfigureAwait(false);
    }

    /// <summary>Tells the hospital why (so its agent stops with a clear message instead of waiting) and returns the rejection.</summary>
    public async Task<MessageOutcome> RejectAsync(FrameMessage message, string reason, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(message);
        try
        {
            await SendAsync(message, ReplyKind.Rejected, null, 0, null, null, reason, ct).ConfigureAwait(false);
        }
        catch (Azure.RequestFailedException e)
        {
            LogReplyFailed(logger, message.HospitalId, e.Message);
        }
        return MessageOutcome.Rejected($"{message.HospitalId}#{message.Sequence} ({message.Kind}, run {message.RunId}): {reason}");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "could not tell hospital {Hospital} about a rejection: {Reason}")]
    private static partial void LogReplyFailed(ILogger logger, string hospital, string reason);
}
