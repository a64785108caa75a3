using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using SplitFunctions.Core.CommandLine;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Functions.Runs;

/// <summary>What the server says to a hospital on its reply queue: the answer to a message, or why it was rejected.</summary>
public sealed partial class HospitalReplies(ServerFrameStore frames, ILogger<HospitalReplies> logger)
{
    /// <summary>
    /// The reason as a hospital may read it: file system paths of the server (its key folder, say, in a key store's
    /// message) are replaced by "&lt;server path&gt;"; the full reason stays in the server's log and poison record.
    /// </summary>
    public static string ForHospital(string reason)
    {
        var text = ServerPath().Replace(reason ?? "", "<server path>");
        return text.Length <= MessageCodec.MaxReasonLength ? text : text[..(MessageCodec.MaxReasonLength - 3)] + "...";
    }

    // An absolute Unix path (a '/' that starts a word, so blob names and URLs are left alone) or a Windows drive path.
    [GeneratedRegex(@"(?:\b[A-Za-z]:\\|(?<![\w:/.\-])/(?=[\w.\-]))[^\s'""`,;)]*")]
    private static partial Regex ServerPath();

    public async Task SendAsync(FrameMessage message, ReplyKind kind, string? blob, long length, string? sha256, double? loss, string? reason,
        CancellationToken ct, ModelVersion? model = null, string? inline = null)
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
            Answers = message.Mac,
            Model = model,
            Inline = inline,
        };
        // Under the key the message was made with (its MAC verified before any reply): the agent acts on no reply without it.
        var key = await frames.Keys.GetKeyAsync(message.HospitalId, message.KeyId!, ct).ConfigureAwait(false);
        var queue = frames.Replies(message.HospitalId);
        await queue.SendMessageAsync(MessageCodec.Serialize(MessageAuthentication.SignReply(reply, key)), cancellationToken: ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Tells the hospital why (so its agent stops with a clear message instead of waiting) and returns the rejection. When
    /// the reason names another hospital's data, <paramref name="forHospital"/> is what this hospital reads instead; the full
    /// reason stays in the server's log and poison record.
    /// </summary>
    public async Task<MessageOutcome> RejectAsync(FrameMessage message, string reason, CancellationToken ct, string? forHospital = null)
    {
        ArgumentNullException.ThrowIfNull(message);
        try
        {
            await SendAsync(message, ReplyKind.Rejected, null, 0, null, null, ForHospital(forHospital ?? reason), ct).ConfigureAwait(false);
        }
        catch (Azure.RequestFailedException e) when (!SplitFunctions.Core.Storage.StorageOutage.IsTransient(e, ct))
        {
            // Storage answered no (not an outage, which is ridden out by the host): the rejection still stands.
            LogReplyFailed(logger, Printable.Escape(message.HospitalId), Printable.Escape(e.Message));
        }
        return MessageOutcome.Rejected($"{message.HospitalId}#{message.Sequence} ({message.Kind}, run {message.RunId}): {reason}");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "could not tell hospital {Hospital} about a rejection: {Reason}")]
    private static partial void LogReplyFailed(ILogger logger, string hospital, string reason);
}
