using Azure.Identity;
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
        var c = StorageConnection.Parse("DefaultEndpointsProtocol=https;AccountName=splitfn;AccountKey=" + Convert.ToBase64String(new byte[32]) + ";EndpointSuffix=core.windows.net");
        c.BlobServiceUri.Should().Be(new Uri("https://splitfn.blob.core.windows.net"));
        c.QueueServiceUri.Should().Be(new Uri("https://splitfn.queue.core.windows.net"));
        c.SharedKey.Should().NotBeNull();
    }

    [Fact]
    public void Sas_connection_strings_carry_the_signature()
    {
        var c = StorageConnection.Parse("BlobEndpoint=https://acct.blob.core.windows.net/;QueueEndpoint=https://acct.queue.core.windows.net/;SharedAccessSignature=?sv=2021-12-02&sig=abc");
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
        none.Should().Throw<InvalidOperationException>().WithMessage("*AzureWebJobsStorage*AzureWebJobsStorage__accountName*");
        var noKey = () => StorageConnection.Parse("AccountName=x");
        noKey.Should().Throw<FormatException>().WithMessage("*neither AccountKey nor SharedAccessSignature*");
        var badKey = () => StorageConnection.Parse("AccountName=x;AccountKey=not base64!");
        badKey.Should().Throw<ArgumentException>().WithMessage("*not valid base64*");
        var junk = () => StorageConnection.Parse("AccountKey");
        junk.Should().Throw<FormatException>().WithMessage("*Name=Value*");
    }
}
