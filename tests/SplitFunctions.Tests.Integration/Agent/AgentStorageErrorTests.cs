using Azure.Storage.Sas;
using SplitFunctions.ClientAgent;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// Storage settings a hospital can get wrong, through the real agent command line against Azurite: each ends with one
/// line naming the setting or permission to fix and a documented exit code, no stack trace, and the state folder intact.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class AgentStorageErrorTests(AzuriteFixture azurite)
{
    private async Task<(AgentTestBed Bed, string Data, HospitalCredentials Credentials)> ProvisionAsync(TimeSpan? lifetime = null)
    {
        var manifest = AgentTestBed.SmallManifest("run-" + Guid.NewGuid().ToString("N")[..12]);
        var bed = new AgentTestBed(manifest.RunId);
        await new RunProvisioner(azurite.Connection).ProvisionAsync(manifest);
        var credentials = await new HospitalAccess(azurite.Connection).MintAsync(AgentTestBed.Hospital, lifetime ?? TimeSpan.FromHours(1));
        return (bed, bed.WriteImages(40), credentials);
    }

    private static async Task<AgentRun> InitAsync(AgentTestBed bed, string data, params string[] storage)
    {
        var run = await AgentTestBed.RunAsync(["init", "--config", bed.ConfigPath, "--hospital", AgentTestBed.Hospital, "--run", bed.RunId, "--data", data,
            "--key-dir", bed.KeyDirectory, "--state", bed.StateFolder, "--reply-timeout", "30", "--storage-outage", "3", .. AgentTestBed.OpenFloor,
            .. storage]);
        run.ExitCode.Should().Be(0, run.ToString());
        return run;
    }

    private static string Sas(HospitalCredentials c, Uri uri, string sas) => uri + "?" + sas;

    private static void OneLineNaming(AgentRun run, ExitCode code, params string[] names)
    {
        run.ExitCode.Should().Be((int)code, run.ToString());
        var lines = run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().HaveCount(2, "one line says what to fix, one gives the exit code\n" + run);
        foreach (var name in names) lines[0].Should().Contain(name);
        run.Error.Should().NotContain("   at ", "no stack trace reaches the console");
    }

    [Fact]
    public async Task A_connection_string_without_its_key_names_the_setting_and_the_missing_part()
    {
        var (bed, data, _) = await ProvisionAsync();
        using var _bed = bed;
        var noKey = azurite.Azurite.ConnectionString.Replace($"AccountKey={StorageConnection.DevelopmentAccountKey};", "", StringComparison.Ordinal);
        await InitAsync(bed, data, "--connection-string", noKey);
        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--no-validation"]);
        OneLineNaming(run, ExitCode.Configuration, "storage.connectionString", "AccountKey");
    }

    [Fact]
    public async Task A_malformed_endpoint_names_the_endpoint()
    {
        var (bed, data, _) = await ProvisionAsync();
        using var _bed = bed;
        var broken = azurite.Azurite.ConnectionString.Replace("BlobEndpoint=http://", "BlobEndpoint=http//", StringComparison.Ordinal);
        await InitAsync(bed, data, "--connection-string", broken);
        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--no-validation"]);
        OneLineNaming(run, ExitCode.Configuration, "BlobEndpoint", "storage.connectionString");
    }

    [Fact]
    public async Task An_expired_SAS_names_the_field_and_keeps_the_state_for_the_next_start()
    {
        var (bed, data, expired) = await ProvisionAsync(TimeSpan.FromMinutes(-1));
        using var _bed = bed;
        await InitAsync(bed, data, "--container-uri", Sas(expired, expired.ContainerUri, expired.ContainerSas),
            "--features-queue-uri", Sas(expired, expired.FeaturesQueueUri, expired.FeaturesQueueSas), "--replies-queue-uri",
                Sas(expired, expired.RepliesQueueUri, expired.RepliesQueueSas));
        var keysBefore = Directory.GetFiles(bed.KeyDirectory).Length;
        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--no-validation"]);
        OneLineNaming(run, ExitCode.StorageAccess, "storage.containerUri", "expired");
        Directory.GetFiles(bed.KeyDirectory).Length.Should().Be(keysBefore, "nothing of the hospital's is removed");
        File.Exists(bed.ConfigPath).Should().BeTrue();
    }

    [Fact]
    public async Task A_SAS_without_a_permission_names_the_permission()
    {
        var (bed, data, good) = await ProvisionAsync();
        using var _bed = bed;
        var readOnly = new BlobSasBuilder(BlobContainerSasPermissions.Read | BlobContainerSasPermissions.List, DateTimeOffset.UtcNow.AddHours(1))
        {
            BlobContainerName = StorageNames.HospitalContainer(AgentTestBed.Hospital),
            Resource = "c",
        }.ToSasQueryParameters(azurite.Connection.SharedKey!).ToString();
        await InitAsync(bed, data, "--container-uri", Sas(good, good.ContainerUri, readOnly),
            "--features-queue-uri", Sas(good, good.FeaturesQueueUri, good.FeaturesQueueSas), "--replies-queue-uri",
                Sas(good, good.RepliesQueueUri, good.RepliesQueueSas));
        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--no-validation"]);
        OneLineNaming(run, ExitCode.StorageAccess, "storage.containerUri", "'w' (write)");
    }

    [Fact]
    public async Task An_account_that_does_not_answer_is_storage_unreachable_after_the_outage_budget()
    {
        var (bed, data, _) = await ProvisionAsync();
        using var _bed = bed;
        // A loopback port nothing listens on.
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var dead = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={StorageConnection.DevelopmentAccountKey};" +
                   $"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;";
        await InitAsync(bed, data, "--connection-string", dead);
        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log", "--no-validation"]);
        run.ExitCode.Should().Be((int)ExitCode.StorageUnreachable, run.ToString());
        run.Error.Should().Contain("storage unreachable").And.Contain("the next start resumes").And.NotContain("   at ");
    }
}
