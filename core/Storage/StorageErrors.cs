using System.Xml;
using Azure;
using Azure.Core;

namespace SplitFunctions.Core.Storage;

/// <summary>Reads the storage error code (x-ms-error-code or the XML &lt;Error&gt; body) for <see cref="RequestFailedException"/>.</summary>
internal sealed class StorageErrorParser : RequestFailedDetailsParser
{
    public static readonly StorageErrorParser Instance = new();

    public override bool TryParse(Response response, out ResponseError? error, out IDictionary<string, string>? data)
    {
        data = null;
        response.Headers.TryGetValue("x-ms-error-code", out var code);
        string? message = null;
        try
        {
            if (response.ContentStream is MemoryStream { Length: > 0 } body)
            {
                body.Position = 0;
                using var reader = XmlReader.Create(body, new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, CloseInput = false });
                while (reader.Read())
                {
                    if (reader.NodeType != XmlNodeType.Element) continue;
                    if (reader.Name == "Code") code ??= reader.ReadElementContentAsString();
                    if (reader.NodeType == XmlNodeType.Element && reader.Name == "Message") message = reader.ReadElementContentAsString();
                }
                body.Position = 0;
            }
        }
        catch (XmlException)
        {
            // Not an XML error body: the status and the x-ms-error-code header still describe the failure.
        }
        message = message?.Split('\n')[0].Trim();
        error = new ResponseError(code, message ?? response.ReasonPhrase);
        return true;
    }

    /// <summary>Builds the exception for a failed response, buffering a streamed error body first.</summary>
    public static async ValueTask<RequestFailedException> CreateExceptionAsync(Response response, CancellationToken cancellationToken)
    {
        if (response.ContentStream is { } stream and not MemoryStream)
        {
            var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            buffer.Position = 0;
            response.ContentStream = buffer;
        }
        return new RequestFailedException(response, null, Instance);
    }
}
