using System.Text.Json;
using System.Text.RegularExpressions;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Tests.Deployment;

/// <summary>
/// The deployment (infra-bicep/, local.settings.sample.json) against the code: the settings it reads, the storage
/// names it uses, the built-in roles it relies on, and the security properties the design assumes.
/// </summary>
public sealed class DeploymentConsistencyTests
{
    /// <summary>
    /// Settings the Functions platform reads rather than our code, each with the reason it is set.
    /// Nothing else may be set that FunctionSettings.All does not name.
    /// </summary>
    private static readonly Dictionary<string, string> PlatformSettings = new(StringComparer.Ordinal)
    {
        // The host must know the worker is the .NET isolated worker (it then reads functions.metadata and worker.config.json).
        ["FUNCTIONS_WORKER_RUNTIME"] = "isolated worker runtime",
        // host.json's maxDequeueCount, set from the same parameter as SplitFunctions__MaxDequeueCount.
        [HostMaxDequeueCount] = "the host's poison count, equal to the server's",
        // The host's telemetry; the connection string is a Container Apps secret, not a literal.
        ["APPLICATIONINSIGHTS_CONNECTION_STRING"] = "Functions host telemetry",
    };

    /// <summary>The app-setting form of host.json's extensions.queues.maxDequeueCount.</summary>
    private const string HostMaxDequeueCount = "AzureFunctionsJobHost__extensions__queues__maxDequeueCount";

    /// <summary>Settings the code reads that Azure does not set, and why.</summary>
    private static readonly Dictionary<string, string> NotSetInAzure = new(StringComparer.Ordinal)
    {
        // Shared key access is off: there is no connection string, only the identity-based settings below it.
        [FunctionSettings.Storage] = "identity-based connection instead",
        // In Azure the keys live in Key Vault (SplitFunctions__KeyVaultUri); a key folder would mean key files in the image.
        [FunctionSettings.KeyDirectory] = "Key Vault instead",
    };

    /// <summary>Settings of the identity-based connection: present but empty in the Azurite sample, which uses the connection string.</summary>
    private static readonly string[] AzureOnlySettings =
    [
        FunctionSettings.StorageAccountName, FunctionSettings.StorageBlobServiceUri, FunctionSettings.StorageQueueServiceUri,
        FunctionSettings.StorageCredential, FunctionSettings.StorageClientId, FunctionSettings.KeyVaultUri,
    ];

    /// <summary>
    /// Built-in role definitions the templates may use (ids from ../shared/docs/REFERENCES.md, "Azure deployment"),
    /// with their names as the Azure built-in roles list gives them.
    /// </summary>
    private static readonly Dictionary<string, string> BuiltInRoles = new(StringComparer.OrdinalIgnoreCase)
    {
        ["ba92f5b4-2d11-453d-a403-e96b0029c9fe"] = "Storage Blob Data Contributor",
        ["b7e6dc6d-f1e8-4753-8033-0f276bb0955b"] = "Storage Blob Data Owner",
        ["974c5e8b-45b9-4653-ba55-5f855dd0fb88"] = "Storage Queue Data Contributor",
        ["8a0f0c08-91a1-4084-bc3d-661d67233fed"] = "Storage Queue Data Message Processor",
        // Not in REFERENCES.md; the Azure built-in roles list: "Storage Queue Data Message Sender" (add messages only),
        // the role HospitalAccess names for the features queue.
        ["c6a89b2d-59bc-44d0-9896-0f6e12d7b80a"] = "Storage Queue Data Message Sender",
        ["4633458b-17de-408a-b874-0445c86b69e6"] = "Key Vault Secrets User",
        ["12338af0-0e69-4776-bea7-57ae8d297424"] = "Key Vault Crypto User",
        ["7f951dda-4ed3-4680-a7ca-43fe172d538d"] = "AcrPull",
    };

    private static IReadOnlyList<string> BicepAppSettingNames() => BicepText.Names(BicepText.Load("main.bicep").Block("var appSettings"));

    [Fact]
    public void BicepAppSettings_SetEveryFunctionSetting_ExceptTheDocumentedOnes()
    {
        var names = BicepAppSettingNames();
        var expected = FunctionSettings.All.Except(NotSetInAzure.Keys);

        names.Should().OnlyHaveUniqueItems();
        names.Should().Contain(expected, "main.bicep's appSettings must set every setting the function reads (FunctionSettings.All)");
        names.Should().NotContain(NotSetInAzure.Keys);
    }

    [Fact]
    public void BicepAppSettings_SetNothingTheCodeDoesNotRead_BeyondThePlatformAllowList()
    {
        var unknown = BicepAppSettingNames().Where(n => !FunctionSettings.All.Contains(n) && !PlatformSettings.ContainsKey(n)).ToList();
        unknown.Should().BeEmpty("every app setting must be in FunctionSettings.All or the platform allow-list of this test");
    }

    [Fact]
    public void BicepAppSettings_UseTheUserAssignedIdentity_ForStorage()
    {
        var block = BicepText.Load("main.bicep").Block("var appSettings");
        Value(block, FunctionSettings.StorageCredential).Should().Be("'managedidentity'");
        Value(block, FunctionSettings.StorageClientId).Should().Be("identity.outputs.clientId");
        Value(block, FunctionSettings.StorageAccountName).Should().Be("storage.outputs.name");
        Value(block, FunctionSettings.StorageBlobServiceUri).Should().Be("storage.outputs.blobEndpoint");
        Value(block, FunctionSettings.StorageQueueServiceUri).Should().Be("storage.outputs.queueEndpoint");
        Value(block, FunctionSettings.KeyVaultUri).Should().Be("keyVault.outputs.uri");
        Value(block, "APPLICATIONINSIGHTS_CONNECTION_STRING").Should().BeNull("the connection string is a secret reference, not a value");
        Value(block, "FUNCTIONS_WORKER_RUNTIME").Should().Be("'dotnet-isolated'");
        Value(block, HostMaxDequeueCount).Should().Be("string(maxDequeueCount)").And.Be(Value(block, FunctionSettings.MaxDequeueCount),
            "the Functions host and the server poison after the same number of deliveries");

    }

    [Fact]
    public void PoisonCount_IsOneNumber_InHostJson_TheServerDefault_AndTheParameters()
    {
        using var host = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot.Path, "functions", "host.json")));
        var count = host.RootElement.GetProperty("extensions").GetProperty("queues").GetProperty("maxDequeueCount").GetInt32();
        count.Should().Be(SplitFunctions.Functions.Hosting.ServerOptions.DefaultMaxDequeueCount);
        Regex.Match(BicepText.Load("main.bicep").Code, @"param\s+maxDequeueCount\s+int\s*=\s*(\d+)").Groups[1].Value.Should().Be(count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Regex.Match(BicepText.Load("main.bicepparam").Code, @"param\s+maxDequeueCount\s*=\s*(\d+)").Groups[1].Value.Should().Be(count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        SampleValues()[FunctionSettings.MaxDequeueCount].Should().Be(count.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    internal static string? Value(string block, string name)
    {
        var m = Regex.Match(block, $@"name:\s*'{Regex.Escape(name)}'\s*\n\s*value:\s*(.+?)\s*\n");
        return m.Success ? m.Groups[1].Value : null;
    }

    [Fact]
    public void Modules_SetNoEnvironmentVariablesOfTheirOwn()
    {
        foreach (var file in BicepText.LoadAll())
        {
            foreach (var env in file.PropertyValues("env"))
                env.Should().Be("appSettings", $"{file.Path} must pass main.bicep's appSettings through, so the one list the test checks is the whole list");
        }
        BicepText.Load("modules/functionapp.bicep").PropertyValues("env").Should().NotBeEmpty();
    }

    [Fact]
    public void SampleSettings_SetEveryFunctionSetting_ForAzurite_AndNothingElse()
    {
        var values = SampleValues();
        var expected = FunctionSettings.All.Append("FUNCTIONS_WORKER_RUNTIME");

        values.Keys.Should().BeEquivalentTo(expected, "local.settings.sample.json must set exactly what the function reads");
        values.Keys.Where(k => !FunctionSettings.All.Contains(k) && !PlatformSettings.ContainsKey(k)).Should().BeEmpty();
        values["FUNCTIONS_WORKER_RUNTIME"].Should().Be("dotnet-isolated");
        values[FunctionSettings.Storage].Should().Be("UseDevelopmentStorage=true");
        foreach (var name in AzureOnlySettings)
            values[name].Should().BeEmpty($"{name} is for Azure; locally the Azurite connection string and key folder are used");
        values[FunctionSettings.KeyDirectory].Should().NotBeNullOrEmpty();
        Path.IsPathRooted(values[FunctionSettings.KeyDirectory]!).Should().BeFalse("the sample must not name a machine path");
    }

    [Fact]
    public void SampleSettings_GiveAnAzuriteConnection()
    {
        var connection = StorageConnection.FromSettings(SampleValues());
        connection.AccountName.Should().Be(StorageConnection.DevelopmentAccountName);
        connection.SharedKey.Should().NotBeNull();
        connection.TokenCredential.Should().BeNull();
    }

    [Fact]
    public void StorageNames_InBicep_MatchTheCode()
    {
        var storage = BicepText.Load("modules/storage.bicep");
        var containerPrefix = Prefix(StorageNames.HospitalContainer);
        var repliesPrefix = Prefix(StorageNames.RepliesQueue);

        storage.StringVariable("runsContainerName").Should().Be(StorageNames.RunsContainer);
        storage.StringVariable("featuresQueueName").Should().Be(StorageNames.FeaturesQueue);
        storage.StringVariable("featuresPoisonQueueName").Should().Be(StorageNames.FeaturesPoisonQueue);
        storage.StringVariable("featuresRejectionsQueueName").Should().Be(StorageNames.FeaturesRejectionsQueue);
        storage.Code.Should().Contain("name: featuresRejectionsQueueName", "the record queue is created with the others");
        storage.StringVariable("hospitalContainerPrefix").Should().Be(containerPrefix);
        storage.StringVariable("repliesQueuePrefix").Should().Be(repliesPrefix);
        storage.Code.Should().Contain("name: '${hospitalContainerPrefix}${hospital}'").And.Contain("name: '${repliesQueuePrefix}${hospital}'");

        // hospital-access.bicep scopes roles to the same names.
        var access = BicepText.Load("modules/hospital-access.bicep");
        access.Code.Should().Contain($"name: '{containerPrefix}${{hospitalId}}'")
            .And.Contain($"name: '{repliesPrefix}${{hospitalId}}'")
            .And.Contain($"name: '{StorageNames.FeaturesQueue}'");

        // The Functions host's poison queue is `<queue>-poison`; the code's constant must be that name.
        StorageNames.FeaturesPoisonQueue.Should().Be(StorageNames.FeaturesQueue + "-poison");

        static string Prefix(Func<string, string> name) => name("x")[..^1];
    }

    [Fact]
    public void LifecycleRule_ExpiresOnlyExchangedFrames_InHospitalContainers()
    {
        var storage = BicepText.Load("modules/storage.bicep");
        var folders = Regex.Matches(storage.Block("var exchangeFolders"), "'([^']*)'").Select(m => m.Groups[1].Value).ToList();
        folders.Should().Equal("features", "gradients", "predictions");
        foreach (var folder in folders)
            StorageNames.FrameBlob(folder, "run-1", 1).Should().StartWith(folder + "/");

        var prefixes = Regex.Matches(storage.Code, @"'(\$\{hospitalContainerPrefix\}\$\{hospital\}/\$\{exchangeFolders\[(\d)\]\}/)'").Select(m => int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        prefixes.Should().BeEquivalentTo([0, 1, 2], "each exchange folder of h-<hospital> gets a prefix filter `<container>/<folder>/`");
        storage.Code.Should().Contain("daysAfterModificationGreaterThan: exchangeRetentionDays");
        storage.Code.Should().NotContain("'runs/", "checkpoints and run state must never expire");
    }

    [Fact]
    public void HospitalIds_InTheParameterFile_FollowTheCodesRules()
    {
        var main = BicepText.Load("main.bicep");
        var maxLength = Regex.Match(main.Code, @"@maxLength\((\d+)\)\s*type\s+hospitalIdType\b");
        maxLength.Success.Should().BeTrue("main.bicep should declare hospitalIdType with @maxLength");
        int.Parse(maxLength.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture).Should().Be(StorageNames.MaxHospitalIdLength);
        main.Code.Should().MatchRegex(@"param\s+hospitals\s+hospitalIdType\[\]");

        var hospitals = Regex.Matches(BicepText.Load("main.bicepparam").Block("param hospitals"), "'([^']*)'").Select(m => m.Groups[1].Value).ToList();
        hospitals.Should().NotBeEmpty().And.OnlyHaveUniqueItems();
        hospitals.Should().OnlyContain(h => StorageNames.IsValidHospitalId(h));
    }

    [Fact]
    public void RoleDefinitionIds_AreDocumentedBuiltInRoles_UnderTheirOwnNames()
    {
        var guid = new Regex(@"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
        var used = 0;
        foreach (var file in BicepText.LoadAll())
        {
            foreach (Match m in guid.Matches(file.Code))
            {
                BuiltInRoles.Should().ContainKey(m.Value, $"{file.Path} uses {m.Value}, which is not a documented built-in role");
                used++;
            }
            if (!file.Code.Contains("var roleDefinitionIds", StringComparison.Ordinal)) continue;
            foreach (Match entry in Regex.Matches(file.Block("var roleDefinitionIds"), @"(\w+)\s*:\s*'([^']*)'"))
            {
                var documented = BuiltInRoles[entry.Groups[2].Value];
                entry.Groups[1].Value.Should().BeEquivalentTo(documented.Replace(" ", "", StringComparison.Ordinal),
                    $"{file.Path}: the key of {entry.Groups[2].Value} should name the role it grants");
            }
        }
        used.Should().BeGreaterThan(0);
    }

    [Fact]
    public void Roles_AreTheLeastOnesEachPrincipalNeeds()
    {
        RoleNames("modules/roles.bicep").Should().BeEquivalentTo(
            "Storage Blob Data Contributor", "Storage Queue Data Contributor", "Key Vault Secrets User", "AcrPull");
        RoleNames("modules/hospital-access.bicep").Should().BeEquivalentTo(
            "Storage Blob Data Contributor", "Storage Queue Data Message Processor", "Storage Queue Data Message Sender");

        // A hospital's roles are scoped to its container and queues, never to the account.
        var access = BicepText.Load("modules/hospital-access.bicep");
        access.PropertyValues("scope").Should().BeEquivalentTo(
            "storageAccount::blobService::container", "storageAccount::queueService::replies", "storageAccount::queueService::features");

        static IEnumerable<string> RoleNames(string module) =>
            Regex.Matches(BicepText.Load(module).Block("var roleDefinitionIds"), @"'([^']*)'").Select(m => BuiltInRoles[m.Groups[1].Value]);
    }

    [Fact]
    public void Storage_AllowsOnlyEntraId_OverTls12()
    {
        var storage = BicepText.Load("modules/storage.bicep");
        storage.PropertyValues("allowSharedKeyAccess").Should().Equal("false");
        storage.PropertyValues("minimumTlsVersion").Should().Equal("'TLS1_2'");
        storage.PropertyValues("supportsHttpsTrafficOnly").Should().Equal("true");
        storage.PropertyValues("allowBlobPublicAccess").Should().Equal("false");
        storage.PropertyValues("publicAccess").Should().OnlyContain(v => v == "'None'");
        storage.Block("resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01'")
            .Should().MatchRegex(@"deleteRetentionPolicy:\s*\{\s*enabled:\s*true", "blob soft delete must be on");
    }

    [Fact]
    public void KeyVault_UsesRbac_WithPurgeProtection()
    {
        var vault = BicepText.Load("modules/keyvault.bicep");
        vault.PropertyValues("enableRbacAuthorization").Should().Equal("true");
        vault.PropertyValues("enablePurgeProtection").Should().Equal("true");
        vault.PropertyValues("enableSoftDelete").Should().Equal("true");
        vault.Code.Should().NotContain("accessPolicies");
        vault.Code.Should().NotContain("Microsoft.KeyVault/vaults/secrets", "hospital keys are created by onboarding, not by the template");
    }

    [Fact]
    public void Server_RunsAtMostOneInstance()
    {
        var app = BicepText.Load("modules/functionapp.bicep");
        app.PropertyValues("maxReplicas").Should().Equal("1");
        app.PropertyValues("activeRevisionsMode").Should().Equal("'Single'");
        app.PropertyValues("kind").Should().Equal("'functionapp'");

        var job = BicepText.Load("modules/queuejob.bicep");
        job.PropertyValues("maxExecutions").Should().Equal("1");
        job.PropertyValues("parallelism").Should().Equal("1");
        job.PropertyValues("type").Should().Contain("'azure-queue'");

        foreach (var file in BicepText.LoadAll())
            file.PropertyValues("maxReplicas").Where(v => v != "1").Should().BeEmpty($"{file.Path}: one writer per run");
    }

    [Fact]
    public void GpuProfile_IsT4ByDefault_A100ByParameter()
    {
        var main = BicepText.Load("main.bicep");
        main.AllowedValues("gpuProfile").Should().Contain(["T4", "A100"]);
        main.StringParamDefault("gpuProfile").Should().Be("T4");
        var env = BicepText.Load("modules/containerapps-env.bicep");
        env.AllowedValues("gpuProfile").Should().BeEquivalentTo(main.AllowedValues("gpuProfile"));
        env.PropertyValues("workloadProfileType").Should().Contain(["'Consumption'", "'Consumption-GPU-NC8as-T4'", "'Consumption-GPU-NC24-A100'"]);
    }

    [Fact]
    public void DeploymentFiles_HoldNoSecretsOrRegistryHosts()
    {
        var files = Directory.EnumerateFiles(BicepText.InfraFolder, "*", SearchOption.AllDirectories)
            .Append(Path.Combine(RepoRoot.Path, "local.settings.sample.json"))
            .Append(Path.Combine(RepoRoot.Path, "docs", "deploy.md"));
        foreach (var file in files)
        {
            var text = File.ReadAllText(file);
            text.Should().NotContainAny(["AccountKey=", "SharedAccessSignature=", StorageConnection.DevelopmentAccountKey],
                $"{file} must not carry storage keys");
            Regex.IsMatch(text, @"\b[a-z0-9]+\.azurecr\.io\b").Should().BeFalse($"{file} must not name a concrete registry host");
        }
    }

    internal static Dictionary<string, string?> SampleValues()
    {
        var path = Path.Combine(RepoRoot.Path, "local.settings.sample.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        doc.RootElement.GetProperty("IsEncrypted").GetBoolean().Should().BeFalse();
        return doc.RootElement.GetProperty("Values").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString(), StringComparer.Ordinal);
    }
}
