using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.Configuration;

namespace SplitFunctions.Tests.Agent;

/// <summary>`init` and the configuration file: what it writes, and one clear message with its exit code for each mistake.</summary>
public sealed class AgentConfigurationTests
{
    private const string DevStorage = "UseDevelopmentStorage=true";

    [Fact]
    public async Task Init_writes_an_owner_only_configuration_and_creates_the_key()
    {
        using var bed = new AgentTestBed("run-init");
        var data = bed.WriteImages(20);
        var run = await bed.InitAsync(DevStorage, data);
        run.Output.Should().Contain("hospital key");

        var config = AgentConfigurationFile.Load(bed.ConfigPath);
        config.HospitalId.Should().Be(AgentTestBed.Hospital);
        config.Data.Kind.Should().Be(DataKinds.ImagesNpz);
        config.Data.Path.Should().Be(data);
        bed.Keys.GetKey(AgentTestBed.Hospital, config.Key.KeyId).Key.Should().HaveCount(32);
        if (!OperatingSystem.IsWindows())
        {
            File.GetUnixFileMode(bed.ConfigPath).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    [Fact]
    public async Task Init_refuses_to_overwrite_without_force()
    {
        using var bed = new AgentTestBed("run-init");
        var data = bed.WriteImages(20);
        await bed.InitAsync(DevStorage, data);
        var again = await AgentTestBed.RunAsync(["init", "--config", bed.ConfigPath, "--hospital", "hospital-a", "--run", "run-init", "--data", data,
            "--connection-string", DevStorage]);
        again.ExitCode.Should().Be((int)ExitCode.Configuration);
        again.Error.Should().Contain("--force");
    }

    [Fact]
    public async Task Init_with_a_missing_data_file_is_a_data_error()
    {
        using var bed = new AgentTestBed("run-init");
        var run = await AgentTestBed.RunAsync(["init", "--config", bed.ConfigPath, "--hospital", "hospital-a", "--run", "run-init", "--data", bed.Folder
            + "/nope.npz", "--connection-string", DevStorage]);
        run.ExitCode.Should().Be((int)ExitCode.Data);
        run.Error.Should().Contain("nope.npz");
    }

    [Fact]
    public async Task Init_without_storage_names_both_ways_to_give_it()
    {
        using var bed = new AgentTestBed("run-init");
        var run = await AgentTestBed.RunAsync(["init", "--config", bed.ConfigPath, "--hospital", "hospital-a", "--run", "run-init", "--data",
            bed.WriteImages(10)]);
        run.ExitCode.Should().Be((int)ExitCode.Configuration);
        run.Error.Should().ContainAll("--connection-string", "--container-uri");
    }

    [Fact]
    public async Task Init_with_a_hospital_identity_writes_identity_storage_and_half_an_identity_is_refused()
    {
        using var bed = new AgentTestBed("run-init");
        var data = bed.WriteImages(10);
        var run = await AgentTestBed.RunAsync(["init", "--config", bed.ConfigPath, "--hospital", "hospital-a", "--run", "run-init", "--data", data,
            "--key-dir", Path.Combine(bed.Folder, "keys"), "--account-name", "hospitalsstore", "--tenant-id", "00000000-0000-0000-0000-000000000001",
            "--client-id", "00000000-0000-0000-0000-000000000002", "--certificate", Path.Combine(bed.Folder, "hospital-a.pem")]);
        run.ExitCode.Should().Be(0, run.ToString());
        var config = AgentConfigurationFile.Load(bed.ConfigPath);
        config.Storage.Identity!.AccountName.Should().Be("hospitalsstore");
        config.Storage.ConnectionString.Should().BeNull();

        var json = JsonNode.Parse(await File.ReadAllTextAsync(bed.ConfigPath))!.AsObject();
        json["storage"]!["identity"]!.AsObject().Remove("certificatePath");
        await File.WriteAllTextAsync(bed.ConfigPath, json.ToJsonString());
        var broken = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath]);
        broken.ExitCode.Should().Be((int)ExitCode.Configuration, broken.ToString());
        broken.Error.Should().Contain("tenantId, clientId and certificatePath together");
    }

    [Theory]
    [InlineData("hospitalId", "Hospital_A", "hospitalId")]
    [InlineData("runId", "", "runId")]
    [InlineData("unknownField", "x", "unknownField")]
    public async Task Bad_fields_are_configuration_errors_naming_the_field(string field, string value, string expected)
    {
        using var bed = new AgentTestBed("run-cfg");
        await bed.InitAsync(DevStorage, bed.WriteImages(10));
        var json = JsonNode.Parse(await File.ReadAllTextAsync(bed.ConfigPath))!.AsObject();
        json[field] = value;
        await File.WriteAllTextAsync(bed.ConfigPath, json.ToJsonString());

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath]);
        run.ExitCode.Should().Be((int)ExitCode.Configuration, run.ToString());
        run.Error.Should().Contain(expected);
    }

    [Fact]
    public async Task A_container_uri_of_another_hospital_is_refused_before_any_call()
    {
        using var bed = new AgentTestBed("run-cfg");
        await bed.InitAsync(DevStorage, bed.WriteImages(10));
        var json = JsonNode.Parse(await File.ReadAllTextAsync(bed.ConfigPath))!.AsObject();
        json["storage"] = new JsonObject
        {
            ["containerUri"] = "https://acct.blob.example.invalid/h-hospital-b?sv=1&sig=x",
            ["featuresQueueUri"] = "https://acct.queue.example.invalid/features?sv=1&sig=x",
            ["repliesQueueUri"] = "https://acct.queue.example.invalid/replies-hospital-a?sv=1&sig=x",
        };
        await File.WriteAllTextAsync(bed.ConfigPath, json.ToJsonString());

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath]);
        run.ExitCode.Should().Be((int)ExitCode.Configuration, run.ToString());
        run.Error.Should().Contain("h-hospital-a");
    }

    [Fact]
    public async Task Wrong_key_id_is_a_key_error()
    {
        using var bed = new AgentTestBed("run-key");
        await bed.InitAsync(DevStorage, bed.WriteImages(10));
        var json = JsonNode.Parse(await File.ReadAllTextAsync(bed.ConfigPath))!.AsObject();
        json["key"]!["keyId"] = "k-not-there";
        await File.WriteAllTextAsync(bed.ConfigPath, json.ToJsonString());

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath]);
        run.ExitCode.Should().Be((int)ExitCode.Key, run.ToString());
        run.Error.Should().Contain("k-not-there");
    }

    [Fact]
    public async Task A_key_file_readable_by_others_is_a_key_error_naming_chmod()
    {
        if (OperatingSystem.IsWindows()) return;
        using var bed = new AgentTestBed("run-key");
        await bed.InitAsync(DevStorage, bed.WriteImages(10));
        var config = AgentConfigurationFile.Load(bed.ConfigPath);
        File.SetUnixFileMode(bed.Keys.GetKeyPath(AgentTestBed.Hospital, config.Key.KeyId),
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath]);
        run.ExitCode.Should().Be((int)ExitCode.Key, run.ToString());
        run.Error.Should().Contain("chmod 600");
    }

    [Fact]
    public async Task Unreachable_storage_is_reported_after_the_outage_budget()
    {
        using var bed = new AgentTestBed("run-net");
        // A port nothing listens on: connection refused on every attempt.
        await bed.InitAsync("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + Core.Storage.StorageConnection.DevelopmentAccountKey +
                            ";BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1", bed.WriteImages(10));
        var json = JsonNode.Parse(await File.ReadAllTextAsync(bed.ConfigPath))!.AsObject();
        json["timeouts"] = new JsonObject { ["replySeconds"] = 5, ["storageOutageSeconds"] = 2 };
        await File.WriteAllTextAsync(bed.ConfigPath, json.ToJsonString());

        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath, "--output", "log"]);
        run.ExitCode.Should().Be((int)ExitCode.StorageUnreachable, run.ToString());
        run.Error.Should().Contain("storage unreachable");
    }
}
