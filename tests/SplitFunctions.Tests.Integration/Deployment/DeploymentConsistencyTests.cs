using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Tests.Deployment;

/// <summary>
/// The deployment (infra-bicep/, local.settings.sample.json) against the code: the settings it reads, the storage
/// names it uses, the built-in roles it relies on, and the security properties the design assumes. The templates are
/// read as the Bicep compiler compiles them (<see cref="BicepCli"/>) and as Azure would deploy that ARM JSON with
/// main.bicepparam's values (<see cref="ArmDeployment"/>), not as .bicep text: what the tests check is what Azure gets.
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

    /// <summary>The hospital principal the deployments below onboard (main.bicepparam onboards none).</summary>
    private const string HospitalPrincipalId = "22222222-2222-2222-2222-222222222222";

    private const string StorageAccountType = "Microsoft.Storage/storageAccounts";
    private const string ContainerType = "Microsoft.Storage/storageAccounts/blobServices/containers";
    private const string QueueType = "Microsoft.Storage/storageAccounts/queueServices/queues";
    private const string RoleAssignmentType = "Microsoft.Authorization/roleAssignments";
    private const string ContainerAppType = "Microsoft.App/containerApps";
    private const string JobType = "Microsoft.App/jobs";

    private static readonly Lazy<ArmDeployment> FunctionAppDeployment = new(() => Deploy());
    private static readonly Lazy<ArmDeployment> JobDeployment = new(() => Deploy(("hostingMode", "job")));

    /// <summary>main.bicepparam's first hospital, onboarded with <see cref="HospitalPrincipalId"/>.</summary>
    private static string FirstHospital => ParameterFileHospitals()[0];

    /// <summary>
    /// main.json deployed with main.bicepparam's values, the first hospital's principal onboarded, and the given
    /// parameters changed.
    /// </summary>
    internal static ArmDeployment Deploy(params (string Name, JsonNode? Value)[] changes)
    {
        var parameters = BicepCli.ParameterFile.ToDictionary(p => p.Key, p => p.Value?.DeepClone(), StringComparer.Ordinal);
        parameters["hospitalPrincipals"] = new JsonArray(new JsonObject { ["hospitalId"] = FirstHospital, ["principalId"] = HospitalPrincipalId });
        foreach (var (name, value) in changes) parameters[name] = value;
        return ArmDeployment.Of(BicepCli.Main, parameters);
    }

    /// <summary>The function app main.bicepparam deploys (hostingMode functionapp).</summary>
    internal static ArmResource FunctionApp => FunctionAppDeployment.Value.Single(ContainerAppType);

    /// <summary>The drain job deployed with hostingMode job.</summary>
    internal static ArmResource DrainJob => JobDeployment.Value.Single(JobType);

    /// <summary>The container of a container app or job (each has one).</summary>
    internal static JsonObject Container(ArmResource app)
    {
        var containers = app["properties.template.containers"]!.AsArray();
        containers.Should().ContainSingle($"{app} runs one container");
        return containers[0]!.AsObject();
    }

    /// <summary>The environment variables the function app's container gets, by name (value, or secretRef).</summary>
    internal static IReadOnlyList<JsonObject> AppSettings(ArmResource app) =>
        Container(app)["env"]!.AsArray().Select(e => e!.AsObject()).ToList();

    internal static string? Value(ArmResource app, string name) =>
        AppSettings(app).SingleOrDefault(e => e["name"]!.GetValue<string>() == name)?["value"]?.GetValue<string>();

    private static List<string> AppSettingNames(ArmResource app) => AppSettings(app).Select(e => e["name"]!.GetValue<string>()).ToList();

    /// <summary>A value only Azure knows: the resource `reference()` reads and the property path read from it.</summary>
    private static (string ResourceId, string Property) RuntimeProperty(string? value)
    {
        var m = Regex.Match(value ?? "", @"^\[reference\('([^']*)'(?:, [^)]*)?\)\.([\w.]+)\]$");
        m.Success.Should().BeTrue($"`{value}` should read a property of a deployed resource (reference(...).property)");
        return (m.Groups[1].Value, m.Groups[2].Value);
    }

    private static string IdOf(ArmResource resource) => ArmDeployment.ResourceId(resource.Type, resource.Name);

    private static string RoleName(ArmResource assignment)
    {
        var id = assignment["properties.roleDefinitionId"]!.GetValue<string>();
        var prefix = $"/subscriptions/{ArmDeployment.SubscriptionId}/providers/Microsoft.Authorization/roleDefinitions/";
        id.Should().StartWith(prefix, $"{assignment} should name a built-in role definition of the subscription");
        var guid = id[prefix.Length..];
        BuiltInRoles.Should().ContainKey(guid, $"{assignment} uses {guid}, which is not a documented built-in role");
        return BuiltInRoles[guid];
    }

    private static List<string> ParameterFileHospitals() =>
        BicepCli.ParameterFile["hospitals"]!.AsArray().Select(h => h!.GetValue<string>()).ToList();

    private static int Int(JsonNode? node) => node!.GetValue<int>();

    [Fact]
    public void Bicep_cli_version_is_the_one_the_build_project_restores_and_the_script_runs()
    {
        var project = File.ReadAllText(Path.Combine(RepoRoot.Path, "build", "bicep", "BicepCli.csproj"));
        project.Should().Contain($"<PackageDownload Include=\"Azure.Bicep.CommandLine.linux-x64\" Version=\"[{BicepCli.Version}]\" />");
        File.ReadAllText(Path.Combine(RepoRoot.Path, "scripts", "bicep.sh")).Should().Contain($"version={BicepCli.Version}");
        BicepCli.CliPath.Should().EndWith(Path.Combine("azure.bicep.commandline.linux-x64", BicepCli.Version, "tools", "bicep"));
        BicepCli.Main["languageVersion"]?.GetValue<string>().Should().Be("2.0", "the tests read resources by symbolic name where the compiler emits them");
    }

    [Fact]
    public void BicepAppSettings_SetEveryFunctionSetting_ExceptTheDocumentedOnes()
    {
        var names = AppSettingNames(FunctionApp);
        var expected = FunctionSettings.All.Except(NotSetInAzure.Keys);

        names.Should().OnlyHaveUniqueItems();
        names.Should().Contain(expected, "the deployed function app must get every setting the function reads (FunctionSettings.All)");
        names.Should().NotContain(NotSetInAzure.Keys);
    }

    [Fact]
    public void BicepAppSettings_SetNothingTheCodeDoesNotRead_BeyondThePlatformAllowList()
    {
        foreach (var app in new[] { FunctionApp, DrainJob })
        {
            var unknown = AppSettingNames(app).Where(n => !FunctionSettings.All.Contains(n) && !PlatformSettings.ContainsKey(n)).ToList();
            unknown.Should().BeEmpty($"every app setting of {app} must be in FunctionSettings.All or the platform allow-list of this test");
        }
    }

    [Fact]
    public void BicepAppSettings_UseTheUserAssignedIdentity_ForStorage()
    {
        var deployment = FunctionAppDeployment.Value;
        var app = FunctionApp;
        var identity = deployment.Single("Microsoft.ManagedIdentity/userAssignedIdentities");
        var account = deployment.Single(StorageAccountType);
        var vault = deployment.Single("Microsoft.KeyVault/vaults");
        var appInsights = deployment.Resources.Single(r => r.Type == "Microsoft.Insights/components" && !r.Existing);

        app["identity.type"]!.GetValue<string>().Should().Be("UserAssigned");
        app["identity.userAssignedIdentities"]!.AsObject().Select(p => p.Key).Should().Equal([IdOf(identity)], "the app runs as the server identity");

        Value(app, FunctionSettings.StorageCredential).Should().Be("managedidentity");
        RuntimeProperty(Value(app, FunctionSettings.StorageClientId)).Should().Be((IdOf(identity), "clientId"));
        Value(app, FunctionSettings.StorageAccountName).Should().Be(account.Name);
        RuntimeProperty(Value(app, FunctionSettings.StorageBlobServiceUri)).Should().Be((IdOf(account), "primaryEndpoints.blob"));
        RuntimeProperty(Value(app, FunctionSettings.StorageQueueServiceUri)).Should().Be((IdOf(account), "primaryEndpoints.queue"));
        RuntimeProperty(Value(app, FunctionSettings.KeyVaultUri)).Should().Be((IdOf(vault), "vaultUri"));

        var insights = AppSettings(app).Single(e => e["name"]!.GetValue<string>() == "APPLICATIONINSIGHTS_CONNECTION_STRING");
        insights.ContainsKey("value").Should().BeFalse("the connection string is a secret reference, not a value");
        var secret = app["properties.configuration.secrets"]!.AsArray()
            .Single(s => s!["name"]!.GetValue<string>() == insights["secretRef"]!.GetValue<string>());
        RuntimeProperty(secret!["value"]!.GetValue<string>()).Should().Be((IdOf(appInsights), "ConnectionString"));

        Value(app, "FUNCTIONS_WORKER_RUNTIME").Should().Be("dotnet-isolated");
        Value(app, HostMaxDequeueCount).Should().Be(BicepCli.ParameterFile["maxDequeueCount"]!.ToJsonString())
            .And.Be(Value(app, FunctionSettings.MaxDequeueCount), "the Functions host and the server poison after the same number of deliveries");

        // One parameter drives both: changed, both change.
        var changed = Deploy(("maxDequeueCount", 7)).Single(ContainerAppType);
        Value(changed, HostMaxDequeueCount).Should().Be("7");
        Value(changed, FunctionSettings.MaxDequeueCount).Should().Be("7");
    }

    [Fact]
    public void BicepAppSettings_GiveTheValuesTheServerParses()
    {
        var app = FunctionApp;
        // ARM's string() writes booleans as True/False, which .NET configuration binds.
        bool.Parse(Value(app, FunctionSettings.OverlapCommits)!).Should().Be(BicepCli.ParameterFile["overlapCommits"]!.GetValue<bool>());
        foreach (var name in new[] { FunctionSettings.Threads, FunctionSettings.CheckpointRetention, FunctionSettings.MaxDequeueCount,
                     FunctionSettings.VisibilityTimeoutSeconds, FunctionSettings.TemporalWindowMiB, FunctionSettings.TemporalCacheMiB })
            int.TryParse(Value(app, name), NumberStyles.None, CultureInfo.InvariantCulture, out _).Should().BeTrue($"{name} = `{Value(app, name)}` should be "
                + $"an integer");
        Value(app, FunctionSettings.Device).Should().Be("cuda", "on a GPU profile a missing GPU must fail loudly");
        Value(Deploy(("gpuProfile", "None")).Single(ContainerAppType), FunctionSettings.Device).Should().Be("cpu");
    }

    [Fact]
    public void PoisonCount_IsOneNumber_InHostJson_TheServerDefault_AndTheParameters()
    {
        using var host = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot.Path, "functions", "host.json")));
        var count = host.RootElement.GetProperty("extensions").GetProperty("queues").GetProperty("maxDequeueCount").GetInt32();
        count.Should().Be(SplitFunctions.Functions.Hosting.ServerOptions.DefaultMaxDequeueCount);
        Int(BicepCli.Main["parameters"]!["maxDequeueCount"]!["defaultValue"]).Should().Be(count, "main.bicep's default");
        Int(BicepCli.ParameterFile["maxDequeueCount"]).Should().Be(count, "main.bicepparam's value");
        SampleValues()[FunctionSettings.MaxDequeueCount].Should().Be(count.ToString(CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Modules_SetNoEnvironmentVariablesOfTheirOwn()
    {
        // Both hosts get the same list, whole: no module adds, drops or changes a variable.
        AppSettings(FunctionApp).Should().NotBeEmpty();
        JsonNode.DeepEquals(Container(FunctionApp)["env"], Container(DrainJob)["env"]).Should().BeTrue(
            "the function app and the drain job must get the same app settings, so the one list the tests check is the whole list");
        foreach (var deployment in new[] { FunctionAppDeployment.Value, JobDeployment.Value })
        {
            foreach (var app in deployment.Created(ContainerAppType).Concat(deployment.Created(JobType)))
                app["properties.template.containers"]!.AsArray().Should().OnlyContain(c => JsonNode.DeepEquals(c!["env"], Container(FunctionApp)["env"]),
                    $"{app}: every container gets main.bicep's app settings");
        }
    }

    [Fact]
    public void Hosting_mode_deploys_exactly_one_server()
    {
        FunctionAppDeployment.Value.Created(JobType).Should().BeEmpty("hostingMode functionapp deploys no drain job");
        JobDeployment.Value.Created(ContainerAppType).Should().BeEmpty("hostingMode job deploys no function app");
        var phaseOne = Deploy(("deployServer", false));
        phaseOne.Created(ContainerAppType).Concat(phaseOne.Created(JobType)).Should().BeEmpty("phase 1 deploys no server");
        phaseOne.Outputs["functionAppName"]!.GetValue<string>().Should().BeEmpty();
        FunctionAppDeployment.Value.Outputs["functionAppName"]!.GetValue<string>().Should().Be(FunctionApp.Name);
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
        var deployment = FunctionAppDeployment.Value;
        var account = deployment.Single(StorageAccountType).Name;
        var hospitals = ParameterFileHospitals();

        deployment.Created(ContainerType).Select(c => c.Name).Should().BeEquivalentTo(
            hospitals.Select(StorageNames.HospitalContainer).Prepend(StorageNames.RunsContainer).Select(n => $"{account}/default/{n}"),
            "the deployment creates `runs` and one container per hospital, named as the code names them");
        deployment.Created(QueueType).Select(q => q.Name).Should().BeEquivalentTo(
            hospitals.Select(StorageNames.RepliesQueue)
                .Concat([StorageNames.FeaturesQueue, StorageNames.FeaturesPoisonQueue, StorageNames.FeaturesRejectionsQueue])
                .Select(n => $"{account}/default/{n}"),
            "the features queue, its poison and record queues, and one reply queue per hospital");

        // Both servers scale on the queue the code reads, in that account.
        var rule = FunctionApp["properties.template.scale.rules"]!.AsArray().Single()!;
        rule["azureQueue"]!["queueName"]!.GetValue<string>().Should().Be(StorageNames.FeaturesQueue);
        rule["azureQueue"]!["accountName"]!.GetValue<string>().Should().Be(account);
        var jobRule = DrainJob["properties.configuration.eventTriggerConfig.scale.rules"]!.AsArray().Single()!;
        jobRule["metadata"]!["queueName"]!.GetValue<string>().Should().Be(StorageNames.FeaturesQueue);
        jobRule["metadata"]!["accountName"]!.GetValue<string>().Should().Be(account);

        // The Functions host's poison queue is `<queue>-poison`; the code's constant must be that name.
        StorageNames.FeaturesPoisonQueue.Should().Be(StorageNames.FeaturesQueue + "-poison");
    }

    [Fact]
    public void LifecycleRule_ExpiresOnlyExchangedFrames_InHospitalContainers()
    {
        var deployment = FunctionAppDeployment.Value;
        var policy = deployment.Single("Microsoft.Storage/storageAccounts/managementPolicies");
        var rules = policy["properties.policy.rules"]!.AsArray();
        var hospitals = ParameterFileHospitals();
        string[] folders = ["features", "gradients", "predictions"];
        foreach (var folder in folders)
            StorageNames.FrameBlob(folder, "run-1", 1).Should().StartWith(folder + "/");

        rules.Should().HaveCount(hospitals.Count, "one rule per hospital");
        rules.Select(r => r!["name"]!.GetValue<string>()).Should().OnlyHaveUniqueItems().And.OnlyContain(n => n.All(char.IsLetterOrDigit));
        for (var i = 0; i < hospitals.Count; i++)
        {
            var rule = rules[i]!;
            rule["enabled"]!.GetValue<bool>().Should().BeTrue();
            rule["definition"]!["filters"]!["prefixMatch"]!.AsArray().Select(p => p!.GetValue<string>()).Should().Equal(
                folders.Select(f => $"{StorageNames.HospitalContainer(hospitals[i])}/{f}/"),
                "each exchange folder of h-<hospital> gets a prefix filter `<container>/<folder>/`");
            Int(rule["definition"]!["actions"]!["baseBlob"]!["delete"]!["daysAfterModificationGreaterThan"])
                .Should().Be(Int(BicepCli.ParameterFile["exchangeRetentionDays"]));
        }
        policy.Body.ToJsonString().Should().NotContain($"\"{StorageNames.RunsContainer}/", "checkpoints and run state must never expire");

        // No hospitals, no policy (a policy without rules is rejected).
        Deploy(("hospitals", new JsonArray()), ("hospitalPrincipals", new JsonArray()))
            .Created("Microsoft.Storage/storageAccounts/managementPolicies").Should().BeEmpty();
    }

    [Fact]
    public void HospitalIds_InTheParameterFile_FollowTheCodesRules()
    {
        // One type, in main.bicep and in the modules it passes hospital ids to.
        var templates = new List<(string Where, JsonObject Template)> { ("main.bicep", BicepCli.Main) };
        foreach (var module in new[] { "storage", "hospitalAccess" })
            templates.Add(($"module {module}", BicepCli.Main["resources"]![module]!["properties"]!["template"]!.AsObject()));
        foreach (var (where, template) in templates)
        {
            var type = template["definitions"]?["hospitalIdType"];
            type.Should().NotBeNull($"{where} should declare hospitalIdType");
            type!["type"]!.GetValue<string>().Should().Be("string");
            Int(type["minLength"]).Should().Be(1, $"{where}: an empty id would give a 2-character container name `h-`");
            Int(type["maxLength"]).Should().Be(StorageNames.MaxHospitalIdLength, where);
        }
        BicepCli.Main["parameters"]!["hospitals"]!["items"]!["$ref"]!.GetValue<string>().Should().Be("#/definitions/hospitalIdType");
        templates[1].Template["parameters"]!["hospitals"]!["items"]!["$ref"]!.GetValue<string>().Should().Be("#/definitions/hospitalIdType");
        templates[2].Template["parameters"]!["hospitalId"]!["$ref"]!.GetValue<string>().Should().Be("#/definitions/hospitalIdType");

        var hospitals = ParameterFileHospitals();
        hospitals.Should().NotBeEmpty().And.OnlyHaveUniqueItems();
        hospitals.Should().OnlyContain(h => StorageNames.IsValidHospitalId(h));
    }

    [Fact]
    public void RoleDefinitionIds_AreDocumentedBuiltInRoles_UnderTheirOwnNames()
    {
        var assignments = FunctionAppDeployment.Value.Created(RoleAssignmentType);
        assignments.Should().NotBeEmpty();
        foreach (var assignment in assignments)
            RoleName(assignment).Should().NotBeEmpty();

        // Where a module keeps its role ids in a variable, each key names the role it grants.
        var tables = 0;
        foreach (var module in BicepCli.Main["resources"]!.AsObject().Select(p => p.Value!))
        {
            if (module["properties"]?["template"]?["variables"]?["roleDefinitionIds"] is not JsonObject table) continue;
            tables++;
            foreach (var (key, id) in table)
            {
                BuiltInRoles.Should().ContainKey(id!.GetValue<string>(), $"module {module["name"]} uses {id}, which is not a documented built-in role");
                key.Should().BeEquivalentTo(BuiltInRoles[id.GetValue<string>()].Replace(" ", "", StringComparison.Ordinal),
                    $"module {module["name"]}: the key of {id} should name the role it grants");
            }
        }
        tables.Should().BeGreaterThan(0);
    }

    [Fact]
    public void Roles_AreTheLeastOnesEachPrincipalNeeds()
    {
        var deployment = FunctionAppDeployment.Value;
        var identity = deployment.Single("Microsoft.ManagedIdentity/userAssignedIdentities");
        var server = deployment.Created(RoleAssignmentType).Where(a => a.Deployment == "roles").ToList();
        server.Select(RoleName).Should().BeEquivalentTo(
            ["Storage Blob Data Contributor", "Storage Queue Data Contributor", "Key Vault Secrets User", "AcrPull"]);
        server.Select(a => RuntimeProperty(a["properties.principalId"]!.GetValue<string>())).Distinct().Should().Equal(
            [(IdOf(identity), "principalId")], "the server's roles go to the identity it runs as");

        // A hospital's roles are scoped to its container and queues, never to the account.
        var account = deployment.Single(StorageAccountType).Name;
        var hospital = deployment.Created(RoleAssignmentType).Where(a => a.Deployment == $"hospital-access-{FirstHospital}").ToList();
        hospital.Select(a => (RoleName(a), a["scope"]!.GetValue<string>())).Should().BeEquivalentTo(
        [
            ("Storage Blob Data Contributor", ArmDeployment.ResourceId(ContainerType, $"{account}/default/{StorageNames.HospitalContainer(FirstHospital)}")),
            ("Storage Queue Data Message Processor", ArmDeployment.ResourceId(QueueType, $"{account}/default/{StorageNames.RepliesQueue(FirstHospital)}")),
            ("Storage Queue Data Message Sender", ArmDeployment.ResourceId(QueueType, $"{account}/default/{StorageNames.FeaturesQueue}")),
        ]);
        hospital.Should().OnlyContain(a => a["properties.principalId"]!.GetValue<string>() == HospitalPrincipalId
                                           && a["properties.principalType"]!.GetValue<string>() == "ServicePrincipal");
        deployment.Created(RoleAssignmentType).Should().HaveCount(server.Count + hospital.Count, "no other role assignment is made");
    }

    [Fact]
    public void Storage_AllowsOnlyEntraId_OverTls12()
    {
        var deployment = FunctionAppDeployment.Value;
        var account = deployment.Single(StorageAccountType);
        account["properties.allowSharedKeyAccess"]!.GetValue<bool>().Should().BeFalse();
        account["properties.defaultToOAuthAuthentication"]!.GetValue<bool>().Should().BeTrue();
        account["properties.minimumTlsVersion"]!.GetValue<string>().Should().Be("TLS1_2");
        account["properties.supportsHttpsTrafficOnly"]!.GetValue<bool>().Should().BeTrue();
        account["properties.allowBlobPublicAccess"]!.GetValue<bool>().Should().BeFalse();
        deployment.Created(ContainerType).Should().OnlyContain(c => c["properties.publicAccess"]!.GetValue<string>() == "None");
        deployment.Single("Microsoft.Storage/storageAccounts/blobServices")["properties.deleteRetentionPolicy.enabled"]!
            .GetValue<bool>().Should().BeTrue("blob soft delete must be on");
    }

    [Fact]
    public void KeyVault_UsesRbac_WithPurgeProtection()
    {
        var deployment = FunctionAppDeployment.Value;
        var vault = deployment.Single("Microsoft.KeyVault/vaults");
        vault["properties.enableRbacAuthorization"]!.GetValue<bool>().Should().BeTrue();
        vault["properties.enablePurgeProtection"]!.GetValue<bool>().Should().BeTrue();
        vault["properties.enableSoftDelete"]!.GetValue<bool>().Should().BeTrue();
        vault["properties.accessPolicies"].Should().BeNull();
        deployment.Resources.Should().NotContain(r => r.Type.StartsWith("Microsoft.KeyVault/vaults/", StringComparison.OrdinalIgnoreCase),
            "hospital keys are created by onboarding, not by the template");
    }

    [Fact]
    public void Server_RunsAtMostOneInstance()
    {
        var app = FunctionApp;
        Int(app["properties.template.scale.maxReplicas"]).Should().Be(1);
        app["properties.configuration.activeRevisionsMode"]!.GetValue<string>().Should().Be("Single");
        app["kind"]!.GetValue<string>().Should().Be("functionapp");
        app["properties.configuration.ingress"].Should().BeNull("nothing needs to reach the server");

        var job = DrainJob;
        Int(job["properties.configuration.eventTriggerConfig.scale.maxExecutions"]).Should().Be(1);
        Int(job["properties.configuration.eventTriggerConfig.parallelism"]).Should().Be(1);
        job["properties.configuration.eventTriggerConfig.scale.rules"]!.AsArray().Select(r => r!["type"]!.GetValue<string>()).Should().Contain("azure-queue");

        foreach (var resource in FunctionAppDeployment.Value.Resources.Concat(JobDeployment.Value.Resources))
        {
            foreach (var max in Regex.Matches(resource.Body.ToJsonString(), "\"maxReplicas\":([^,}]+)").Select(m => m.Groups[1].Value))
                max.Should().Be("1", $"{resource}: one writer per run");
        }
    }

    [Fact]
    public void GpuProfile_IsT4ByDefault_A100ByParameter()
    {
        var main = BicepCli.Main["parameters"]!["gpuProfile"]!;
        main["allowedValues"]!.AsArray().Select(v => v!.GetValue<string>()).Should().Contain(["T4", "A100"]);
        main["defaultValue"]!.GetValue<string>().Should().Be("T4");
        var environment = BicepCli.Main["resources"]!["environment"]!["properties"]!["template"]!["parameters"]!["gpuProfile"]!;
        environment["allowedValues"]!.AsArray().Select(v => v!.GetValue<string>()).Should()
            .BeEquivalentTo(main["allowedValues"]!.AsArray().Select(v => v!.GetValue<string>()));

        foreach (var (profile, expected) in new[] { ("T4", "Consumption-GPU-NC8as-T4"), ("A100", "Consumption-GPU-NC24-A100"), ("None", "Consumption") })
        {
            var deployment = Deploy(("gpuProfile", profile));
            var profiles = deployment.Single("Microsoft.App/managedEnvironments")["properties.workloadProfiles"]!.AsArray()
                .ToDictionary(p => p!["name"]!.GetValue<string>(), p => p!["workloadProfileType"]!.GetValue<string>());
            profiles.Values.Should().Contain("Consumption");
            var server = deployment.Single(ContainerAppType)["properties.workloadProfileName"]!.GetValue<string>();
            profiles.Should().ContainKey(server, $"gpuProfile {profile}: the server runs on a profile of its environment");
            profiles[server].Should().Be(expected, $"gpuProfile {profile}");
        }
    }

    [Fact]
    public void DeploymentFiles_HoldNoSecretsOrRegistryHosts()
    {
        var files = Directory.EnumerateFiles(BicepCli.InfraFolder, "*", SearchOption.AllDirectories)
            .Append(Path.Combine(RepoRoot.Path, "local.settings.sample.json"))
            .Append(Path.Combine(RepoRoot.Path, "docs", "deploy.md"))
            .Append(Path.Combine(RepoRoot.Path, "scripts", "bicep.sh"))
            .Append(Path.Combine(RepoRoot.Path, "build", "bicep", "BicepCli.csproj"));
        foreach (var file in files)
        {
            var text = File.ReadAllText(file);
            text.Should().NotContainAny(["AccountKey=", "SharedAccessSignature=", StorageConnection.DevelopmentAccountKey],
                $"{file} must not carry storage keys");
            Regex.IsMatch(text, @"\b[a-z0-9]+\.azurecr\.io\b").Should().BeFalse($"{file} must not name a concrete registry host");
        }
        // Nor the compiled template: no key or registry host comes in through a default or a module.
        var compiled = BicepCli.Main.ToJsonString();
        compiled.Should().NotContainAny(["AccountKey=", "SharedAccessSignature=", ".azurecr.io"]);
    }

    internal static Dictionary<string, string?> SampleValues()
    {
        var path = Path.Combine(RepoRoot.Path, "local.settings.sample.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        doc.RootElement.GetProperty("IsEncrypted").GetBoolean().Should().BeFalse();
        return doc.RootElement.GetProperty("Values").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString(), StringComparer.Ordinal);
    }
}
