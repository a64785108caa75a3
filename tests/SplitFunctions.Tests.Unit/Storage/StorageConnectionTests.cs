using Azure.Identity;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Tests.Storage;

public sealed class StorageConnectionTests
{
    [Fact]
    public void Development_storage_points_at_Azurite_default_ports_with_the_well_known_key()
    {
        var c = StorageConnection.Parse("UseDevelopmentStorage=true");
        c.AccountName.Should().Be("devstoreaccount1");
        c.BlobServiceUri.Should().Be(new Uri("http://127.0.0.1:10000/devstoreaccount1"));
        c.QueueServiceUri.Should().Be(new Uri("http://127.0.0.1:10001/devstoreaccount1"));
        c.SharedKey!.AccountName.Should().Be("devstoreaccount1");
    }

    [Fact]
    public void Account_key_connection_strings_derive_endpoints_from_the_suffix()
    {
        var c = StorageConnection.Parse("DefaultEndpointsProtocol=https;AccountName=splitfn;AccountKey=" + Convert.ToBase64String(new byte[32])
            + ";EndpointSuffix=core.windows.net");
        c.BlobServiceUri.Should().Be(new Uri("https://splitfn.blob.core.windows.net"));
        c.QueueServiceUri.Should().Be(new Uri("https://splitfn.queue.core.windows.net"));
        c.SharedKey.Should().NotBeNull();
    }

    [Fact]
    public void Sas_connection_strings_carry_the_signature()
    {
        var c = StorageConnection.Parse(
            "BlobEndpoint=https://acct.blob.core.windows.net/;QueueEndpoint=https://acct.queue.core.windows.net/;SharedAccessSignature=?sv=2021-12-02&sig=abc");
        c.Sas!.Signature.Should().Be("sv=2021-12-02&sig=abc");
        c.AccountName.Should().Be("acct");
        c.SharedKey.Should().BeNull();
    }

    [Fact]
    public void Identity_based_settings_use_a_token_credential()
    {
        var settings = new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage__accountName"] = "splitfn",
            ["AzureWebJobsStorage__credential"] = "managedidentity",
            ["AzureWebJobsStorage__clientId"] = "00000000-0000-0000-0000-000000000001",
        };
        var c = StorageConnection.FromSettings(settings);
        c.TokenCredential.Should().BeOfType<ManagedIdentityCredential>();
        c.BlobServiceUri.Should().Be(new Uri("https://splitfn.blob.core.windows.net"));
        c.QueueServiceUri.Should().Be(new Uri("https://splitfn.queue.core.windows.net"));

        var developer = StorageConnection.FromSettings(new Dictionary<string, string?> { ["Storage__accountName"] = "dev" }, "Storage");
        developer.TokenCredential.Should().BeOfType<DefaultAzureCredential>();
    }

    [Fact]
    public void Bad_or_missing_settings_say_what_to_set()
    {
        var none = () => StorageConnection.FromSettings(new Dictionary<string, string?>());
        none.Should().Throw<StorageSettingsException>().WithMessage("*AzureWebJobsStorage*AzureWebJobsStorage__accountName*");

        var noKey = () => StorageConnection.Parse("DefaultEndpointsProtocol=https;AccountName=splitfn;EndpointSuffix=core.windows.net");
        var missing = noKey.Should().Throw<StorageSettingsException>().Which;
        missing.Setting.Should().Be("AzureWebJobsStorage");
        missing.Message.Should().Contain("'AzureWebJobsStorage'").And.Contain("no AccountKey").And.NotContain("\n");

        var badKey = () => StorageConnection.Parse("AccountName=x;AccountKey=not base64!", "storage.connectionString");
        badKey.Should().Throw<StorageSettingsException>().WithMessage("*'storage.connectionString'*AccountKey is not a base64 account key*")
            .Which.Message.Should().NotContain("not base64!", "the key itself is never echoed");

        var badEndpoint = () => StorageConnection.Parse("BlobEndpoint=htp:/127.0.0.1:10000;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;AccountKey="
            + StorageConnection.DevelopmentAccountKey);
        badEndpoint.Should().Throw<StorageSettingsException>().WithMessage("*BlobEndpoint in 'AzureWebJobsStorage' is not an endpoint URL*");

        var badServiceUri = () => StorageConnection.FromSettings(new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage__blobServiceUri"] = "https://splitfn.blob.core.windows.net",
            ["AzureWebJobsStorage__queueServiceUri"] = "splitfn.queue",
        });
        badServiceUri.Should().Throw<StorageSettingsException>().Which.Setting.Should().Be("AzureWebJobsStorage__queueServiceUri");

        var oneEndpoint = () => StorageConnection.FromSettings(new Dictionary<string,
            string?>
        { ["AzureWebJobsStorage__blobServiceUri"] = "https://splitfn.blob.core.windows.net" });
        oneEndpoint.Should().Throw<StorageSettingsException>().Which.Setting.Should().Be("AzureWebJobsStorage__queueServiceUri");

        var unknownCredential = ()
            => StorageConnection.FromSettings(new Dictionary<string,
            string?>
            { ["AzureWebJobsStorage__accountName"] = "splitfn", ["AzureWebJobsStorage__credential"] = "password" });
        unknownCredential.Should().Throw<StorageSettingsException>().WithMessage("*'AzureWebJobsStorage__credential' is 'password'*managedidentity*");

        var junk = () => StorageConnection.Parse("AccountKey");
        junk.Should().Throw<StorageSettingsException>().WithMessage("*Name=Value*");
    }

    [Fact]
    public void Clients_are_built_with_the_pinned_service_version_and_base64_queue_messages()
    {
        var blob = StorageClientDefaults.Blob();
        var queue = StorageClientDefaults.Queue();
        queue.MessageEncoding.Should().Be(Azure.Storage.Queues.QueueMessageEncoding.Base64);
        blob.Retry.MaxRetries.Should().Be(5);
        StorageClientDefaults.Blob(StorageRetries.Caller).Retry.MaxRetries.Should().Be(0, "the agent's Polly policy owns its retries");
        StorageClientDefaults.BlobServiceVersion.Should().Be(Azure.Storage.Blobs.BlobClientOptions.ServiceVersion.V2026_06_06);
        StorageClientDefaults.QueueServiceVersion.Should().Be(Azure.Storage.Queues.QueueClientOptions.ServiceVersion.V2026_06_06);
    }
}
