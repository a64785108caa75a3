using Azure;
using Azure.Core;
using Azure.Core.Pipeline;

namespace SplitFunctions.Core.Storage;

/// <summary>Appends a shared access signature to every request URI (runs once per call, before the retry policy).</summary>
public sealed class SasPolicy(AzureSasCredential credential) : HttpPipelineSynchronousPolicy
{
    public override void OnSendingRequest(HttpMessage message)
    {
        var existing = message.Request.Uri.Query;
        var sas = credential.Signature.TrimStart('?');
        // The SAS is already URL-encoded; a client built from a SAS URI must not get it twice.
        if (existing.Contains("sig=", StringComparison.Ordinal)) return;
        message.Request.Uri.Query = string.IsNullOrEmpty(existing) || existing == "?" ? "?" + sas : existing + "&" + sas;
    }
}
