using System.Text;
using SplitFunctions.Core.Contract;

namespace SplitFunctions.Core.Storage;

/// <summary>
/// Turns a `features` message as stored (the wire text: Base64 of UTF-8, what agents and the queue trigger use) into
/// its text, strictly: a message that is not Base64, or whose bytes are not UTF-8, is named as such instead of throwing.
/// </summary>
public static class QueueText
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The decoded text, or null with the reason it cannot be one.</summary>
    public static string? TryDecode(string wire, out string reason)
    {
        ArgumentNullException.ThrowIfNull(wire);
        var buffer = new byte[wire.Length * 3 / 4 + 3];
        if (!Convert.TryFromBase64String(wire, buffer, out var written))
        {
            reason = $"the message is not Base64 (the `features` queue carries Base64 of UTF-8 JSON, host.json messageEncoding 'base64'); it starts "
                + $"'{Preview(wire)}'";
            return null;
        }
        try
        {
            reason = "";
            return StrictUtf8.GetString(buffer, 0, written);
        }
        catch (DecoderFallbackException e)
        {
            reason = $"the message is Base64 but its {written} bytes are not UTF-8 text (invalid byte at {e.Index}): SplitFunctions messages are UTF-8 JSON";
            return null;
        }
    }

    /// <summary>What the Functions host stores for a message text: Base64 of its UTF-8 bytes.</summary>
    public static string Encode(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    // The first characters, printable ASCII only, so a reason never carries control characters into a log.
    private static string Preview(string wire)
    {
        var head = wire.Length <= 40 ? wire : wire[..40] + "...";
        return new string(head.Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray());
    }
}
