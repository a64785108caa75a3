using System.Globalization;
using System.Text;
using System.Xml.Linq;
using Azure.Core;

namespace SplitFunctions.Core.Storage;

/// <summary>The account's blob service: containers and user delegation keys.</summary>
public sealed class BlobServiceClient
{
    private readonly StorageRestClient _rest;

    internal BlobServiceClient(Uri serviceUri, StorageRestClient rest, string accountName)
    {
        Uri = serviceUri;
        _rest = rest;
        AccountName = accountName;
    }

    public Uri Uri { get; }

    public string AccountName { get; }

    public BlobContainerClient GetBlobContainerClient(string containerName) =>
        new(StorageRestClient.Append(Uri, containerName), _rest, containerName, AccountName);

    /// <summary>Gets a key for signing user delegation SAS tokens; needs a Microsoft Entra (token) connection.</summary>
    public async Task<UserDelegationKey> GetUserDelegationKeyAsync(DateTimeOffset? startsOn, DateTimeOffset expiresOn, CancellationToken cancellationToken = default)
    {
        using var message = _rest.CreateMessage(RequestMethod.Post, Uri, ("restype", "service"), ("comp", "userdelegationkey"));
        var body = new XElement("KeyInfo",
            new XElement("Start", (startsOn ?? DateTimeOffset.UtcNow.AddMinutes(-5)).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)),
            new XElement("Expiry", expiresOn.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)));
        message.Request.Headers.SetValue("Content-Type", "application/xml");
        message.Request.Content = RequestContent.Create(Encoding.UTF8.GetBytes(body.ToString(SaveOptions.DisableFormatting)));
        var response = await _rest.SendAsync(message, cancellationToken, 200).ConfigureAwait(false);
        var xml = XDocument.Load(response.ContentStream!).Root!;
        string Value(string name) => xml.Element(name)?.Value ?? string.Empty;
        return new UserDelegationKey(
            Value("SignedOid"), Value("SignedTid"),
            DateTimeOffset.Parse(Value("SignedStart"), CultureInfo.InvariantCulture),
            DateTimeOffset.Parse(Value("SignedExpiry"), CultureInfo.InvariantCulture),
            Value("SignedService"), Value("SignedVersion"), Value("Value"));
    }
}
