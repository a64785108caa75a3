using Azure;
using Azure.Storage.Blobs;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Operator;

/// <summary>Each `splitfn-operator` command as a real process against Azurite: what it writes, what it refuses, and its exit codes.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class OperatorCommandTests(AzuriteFixture azurite)
{
    private string Connection => azurite.Azurite.ConnectionString;

    private static string NewHospital() => "op-" + Guid.NewGuid().ToString("N")[..10];

    [Fact]
    public async Task Hospital_add_rotate_key_and_revoke_manage_storage_keys_and_sas()
    {
        using var dir = new TempDirectory();
        var functionKeys = dir.File("function-keys");
        var hospital = NewHospital();

        var add = await OperatorProcess.OperatorAsync(Connection, functionKeys, dir.Path, "hospital", "add", hospital);
        add.ExitCode.Should().Be(0, add.ToString());
        add.Output.Should().Contain("SAS expire at").And.Contain($"init @{OnboardingPackage.ResponseFile}");
        add.Output.Should().NotContain("sig=", "SAS tokens are written to the owner-only response file, never printed");
        add.Output.Should().Contain($"the SAS are in {OnboardingPackage.ResponseFile} only");
        var package = Path.Combine(dir.Path, "onboarding", hospital);
        var firstKey = new LocalKeyStore(Path.Combine(package, "keys")).GetKey(hospital);
        new LocalKeyStore(functionKeys).GetKey(hospital, firstKey.KeyId).Key.Should().Equal(firstKey.Key, "the function and the hospital hold the same key");
        (await azurite.Connection.GetBlobContainerClient(StorageNames.HospitalContainer(hospital)).ExistsAsync()).Value.Should().BeTrue();
        (await azurite.Connection.GetQueueClient(StorageNames.RepliesQueue(hospital)).ExistsAsync()).Value.Should().BeTrue();

        // The SAS in init.rsp reaches the hospital's container.
        var container = ContainerFromPackage(package);
        await container.GetBlobClient("probe.txt").UploadAsync(BinaryData.FromString("x"), overwrite: true);

        var again = await OperatorProcess.OperatorAsync(Connection, functionKeys, dir.Path, "hospital", "add", hospital);
        again.ExitCode.Should().Be(6, again.ToString());
        again.Error.Trim().Split('\n').Should().ContainSingle("one clear line").Which.Should().Contain("already onboarded");

        var rotate = await OperatorProcess.OperatorAsync(Connection, functionKeys, dir.Path, "hospital", "rotate-key", hospital);
        rotate.ExitCode.Should().Be(0, rotate.ToString());
        var secondKey = new LocalKeyStore(Path.Combine(package, "keys")).GetKey(hospital);
        secondKey.KeyId.Should().NotBe(firstKey.KeyId);
        new LocalKeyStore(functionKeys).GetKey(hospital, firstKey.KeyId).Should().NotBeNull("old keys stay valid without --retire-old");

        var list = await OperatorProcess.OperatorAsync(Connection, functionKeys, dir.Path, "hospital", "list");
        list.ExitCode.Should().Be(0, list.ToString());
        list.Output.Should().Contain($"{hospital}: active, sas access, key {secondKey.KeyId}");

        var revoke = await OperatorProcess.OperatorAsync(Connection, functionKeys, dir.Path, "hospital", "revoke", hospital);
        revoke.ExitCode.Should().Be(0, revoke.ToString());
        // Revocation ends only an account-key SAS at once; a user-delegation SAS runs to its expiry, and the output says so (issue 31).
        revoke.Output.Should().Contain("stopped working now if they were minted with the account key").And.Contain("user-delegation SAS")
            .And.Contain("az storage account revoke-delegation-keys");
        var store = new LocalKeyStore(functionKeys);
        foreach (var id in new[] { firstKey.KeyId, secondKey.KeyId })
        {
            store.Invoking(s => s.GetKey(hospital, id)).Should().Throw<ProtocolException>("a revoked hospital's keys are gone from the function's store");
        }
        var refused = await container.Invoking(c => c.GetBlobClient("probe.txt").DownloadContentAsync()).Should().ThrowAsync<RequestFailedException>();
        refused.Which.Status.Should().Be(403, "removing the stored access policy ends the container SAS at once");

        (await OperatorProcess.OperatorAsync(Connection, functionKeys, dir.Path, "hospital", "revoke", hospital)).ExitCode.Should().Be(7);
        (await OperatorProcess.OperatorAsync(Connection, functionKeys, dir.Path, "hospital", "rotate-key", NewHospital())).ExitCode.Should().Be(5);
        (await OperatorProcess.OperatorAsync(Connection, functionKeys, dir.Path, "hospital", "add", "Not_Valid")).ExitCode.Should().Be(4);
        var noKeys = await OperatorProcess.OperatorAsync(Connection, null, dir.Path, "hospital", "add", NewHospital());
        noKeys.ExitCode.Should().Be(3, noKeys.ToString());
        noKeys.Error.Should().Contain("--key-dir").And.NotContain("   at ", "no stack trace");
        var noStorage = await OperatorProcess.OperatorAsync(null, functionKeys, dir.Path, "hospital", "list");
        noStorage.ExitCode.Should().Be(3, noStorage.ToString());
        noStorage.Error.Should().Contain("AzureWebJobsStorage");
    }

    [Fact]
    public async Task Hospital_add_for_an_identity_prints_the_role_assignments_and_writes_identity_init_arguments()
    {
        using var dir = new TempDirectory();
        var keys = dir.File("function-keys");
        var hospital = NewHospital();
        var missing = await OperatorProcess.OperatorAsync(Connection, keys, dir.Path, "hospital", "add", hospital, "--access", "identity");
        missing.ExitCode.Should().Be(4, missing.ToString());
        missing.Error.Should().Contain("--principal-id");

        var add = await OperatorProcess.OperatorAsync(Connection, keys, dir.Path, "hospital", "add", hospital, "--access", "identity",
            "--principal-id", "11111111-2222-3333-4444-555555555555", "--tenant-id", "tenant-x", "--client-id", "app-y");
        add.ExitCode.Should().Be(0, add.ToString());
        var assignments = add.Output.Split('\n').Where(l => l.StartsWith("az role assignment create", StringComparison.Ordinal)).ToList();
        assignments.Should().HaveCount(3);
        assignments[0].Should().Contain("Storage Blob Data Contributor").And.Contain($"containers/h-{hospital}");
        assignments[1].Should().Contain("Storage Queue Data Message Processor").And.Contain($"queues/replies-{hospital}");
        assignments[2].Should().Contain("Storage Queue Data Message Sender").And.Contain("queues/features");
        add.Output.Should().Contain($"hospitalPrincipals").And.Contain($"hospitalId: '{hospital}'").And.NotContain("SAS expire");
        var rsp = File.ReadAllLines(Path.Combine(dir.Path, "onboarding", hospital, OnboardingPackage.ResponseFile));
        rsp.Should().ContainInOrder("--account-name", "devstoreaccount1").And.ContainInOrder("--tenant-id", "tenant-x")
            .And.ContainInOrder("--client-id", "app-y")
            .And.ContainInOrder("--certificate", $"splitfn-{hospital}.pem").And.NotContain(l => l.Contains("sig=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Run_create_validates_everything_before_writing_and_prints_each_hospitals_command()
    {
        using var dir = new TempDirectory();
        var keys = dir.File("function-keys");
        var (a, b) = (NewHospital(), NewHospital());
        foreach (var h in new[] { a, b }) (await OperatorProcess.OperatorAsync(Connection, keys, dir.Path, "hospital", "add", h)).ExitCode.Should().Be(0);
        var runId = "run-" + Guid.NewGuid().ToString("N")[..10];
        var runs = azurite.Connection.GetBlobContainerClient(StorageNames.RunsContainer);

        async Task Refused(int code, string because, params string[] args)
        {
            var run = await OperatorProcess.OperatorAsync(Connection, keys, dir.Path, ["run", "create", "--run-id", runId, .. args]);
            run.ExitCode.Should().Be(code, because + "\n" + run);
            run.Error.Trim().Split('\n').Should().ContainSingle();
            (await runs.GetBlobClient($"{runId}/manifest.json").ExistsAsync()).Value.Should().BeFalse("nothing is written when validation fails: " + because);
        }
        await Refused(5, "a hospital that was never onboarded", "--model", "pneumonia-cnn", "--hospitals", $"{a},never-added");
        await Refused(4, "an unknown model", "--model", "no-such-model", "--hospitals", a);
        await Refused(4, "a learning rate out of range", "--model", "pneumonia-cnn", "--hospitals", a, "--lr", "50");
        await Refused(4, "a hospital listed twice", "--model", "pneumonia-cnn", "--hospitals", $"{a},{a}");
        await Refused(4, "negative noise", "--model", "pneumonia-cnn", "--hospitals", a, "--noise-sigma", "-1");
        await Refused(2, "a feature type that does not exist", "--model", "pneumonia-cnn", "--hospitals", a, "--feature-type", "Int9");

        var created = await OperatorProcess.OperatorAsync(Connection, keys, dir.Path, "run", "create", "--run-id", runId, "--model", "pneumonia-cnn",
            "--hospitals", $"{a},{b}", "--epochs", "3", "--batch-size", "8", "--lr", "0.01", "--seed", "9", "--feature-type", "QInt8", "--noise-sigma", "0.1",
                "--mode", "temporal");
        created.ExitCode.Should().Be(0, created.ToString());
        created.Output.Should().Contain($"run {runId} created");
        foreach (var h in new[] { a, b }) created.Output.Should().Contain($"{h}: splitfn-agent --config agent-{runId}.json init @init.rsp --run {runId}");
        var manifest = Core.Runs.RunManifest.Parse((await runs.GetBlobClient($"{runId}/manifest.json").DownloadContentAsync()).Value.Content.ToArray());
        manifest.Hospitals.Should().Equal(a, b);
        (manifest.Epochs, manifest.BatchSize, manifest.Optimizer.LearningRate, manifest.Seed, manifest.FeatureType, manifest.Privacy.NoiseSigma, manifest.Mode)
            .Should().Be((3, 8, 0.01, 9UL, Core.Contract.ElementType.QInt8, 0.1, Core.Runs.TrainingMode.Temporal));
        (await azurite.Connection.GetBlobContainerClient(StorageNames.HospitalContainer(b)).GetBlobClient($"manifests/{runId}.json").ExistsAsync())
            .Value.Should().BeTrue();

        (await OperatorProcess.OperatorAsync(Connection, keys, dir.Path, "run", "create", "--run-id", runId, "--model", "pneumonia-cnn", "--hospitals", a))
            .ExitCode.Should().Be(6, "a run's manifest is never replaced");
        (await OperatorProcess.OperatorAsync(Connection, keys, dir.Path, "hospital", "revoke", b)).ExitCode.Should().Be(0);
        (await OperatorProcess.OperatorAsync(Connection, keys, dir.Path, "run", "create", "--model", "pneumonia-cnn", "--hospitals", b))
            .ExitCode.Should().Be(7, "a revoked hospital cannot join a new run");
        var status = await OperatorProcess.OperatorAsync(Connection, keys, dir.Path, "run", "status", runId);
        status.ExitCode.Should().Be(0, status.ToString());
        status.Output.Should().Contain(a).And.Contain($"{b} (revoked)").And.Contain("never taken");
        (await OperatorProcess.OperatorAsync(Connection, keys, dir.Path, "run", "status", "run-that-is-not-there")).ExitCode.Should().Be(5);
    }

    [Fact]
    public async Task Poison_list_shows_the_recorded_reason_and_retry_and_drop_move_or_delete_the_named_messages()
    {
        using var dir = new TempDirectory();
        var runId = "run-" + Guid.NewGuid().ToString("N")[..10];
        string Message(int seq) => $$"""{"v":1,"run":"{{runId}}","hospital":"hospital-p","seq":{{seq}},"kind":"Train"}""";
        // The function's own poison writer, as drain mode uses it.
        var poison = new PoisonQueue(azurite.Connection);
        await poison.PoisonAsync("m1", QueueText.Encode(Message(1)), Message(1), 5, "unknown key 'k-old' for "
            + "hospital-p", PoisonHosts.Drain, CancellationToken.None);
        await poison.PoisonAsync("m2", QueueText.Encode(Message(2)), Message(2), 5, "manifest missing for the run", PoisonHosts.Drain, CancellationToken.None);
        // Raw text, not Base64 (as common queue tools write it): kept as stored, listed as it is.
        var raw = $"raw text for {runId}";
        await poison.PoisonAsync("m3", raw, raw, 1, $"the message is not Base64 (test {runId})", PoisonHosts.Drain, CancellationToken.None);

        var list = await OperatorProcess.OperatorAsync(Connection, null, dir.Path, "poison", "list");
        list.ExitCode.Should().Be(0, list.ToString());
        var lines = list.Output.Split('\n').Where(l => l.Contains(runId, StringComparison.Ordinal)).ToList();
        lines.Should().HaveCount(3);
        lines[0].Should().Contain("hospital hospital-p").And.Contain("unknown key 'k-old'");
        lines[1].Should().Contain("manifest missing");
        lines[2].Should().Contain("not Base64");
        var (first, second, third) = (lines[0].Split(' ')[0], lines[1].Split(' ')[0], lines[2].Split(' ')[0]);

        var retry = await OperatorProcess.OperatorAsync(Connection, null, dir.Path, "poison", "retry", first);
        retry.ExitCode.Should().Be(0, retry.ToString());
        var features = azurite.Connection.GetQueueClient(StorageNames.FeaturesQueue);
        var moved = (await features.ReceiveMessagesAsync(32)).Value.Where(m => m.Body.ToString() == Message(1)).ToList();
        moved.Should().ContainSingle("retry puts the message back on 'features' unchanged");
        foreach (var m in moved) await features.DeleteMessageAsync(m.MessageId, m.PopReceipt);

        var drop = await OperatorProcess.OperatorAsync(Connection, null, dir.Path, "poison", "drop", second, third);
        drop.ExitCode.Should().Be(0, drop.ToString());
        var after = await OperatorProcess.OperatorAsync(Connection, null, dir.Path, "poison", "list");
        after.Output.Should().NotContain(runId, "both messages and their reason records are gone");
        (await new PoisonInbox(azurite.Connection).ReasonsAsync()).Should().NotContain(r => r.Message.Contains(runId, StringComparison.Ordinal));

        (await OperatorProcess.OperatorAsync(Connection, null, dir.Path, "poison", "drop", second)).ExitCode.Should().Be(5, "the message is gone");
        (await OperatorProcess.OperatorAsync(Connection, null, dir.Path, "poison", "retry")).ExitCode.Should().Be(4, "ids or --all");
    }

    [Fact]
    public async Task Help_lists_every_command_and_an_unknown_option_is_a_usage_error()
    {
        using var dir = new TempDirectory();
        var help = await OperatorProcess.OperatorAsync(null, null, dir.Path, "--help");
        help.ExitCode.Should().Be(0);
        help.Output.Should().Contain("hospital").And.Contain("run").And.Contain("poison").And.Contain("--connection-string").And.Contain("--key-vault-uri");
        foreach (var (group, commands) in new[] { ("hospital", new[] { "add", "rotate-key", "revoke", "list" }), ("run", ["create", "status", "watch"]),
            ("poison", ["list", "retry", "drop"]) })
        {
            var sub = await OperatorProcess.OperatorAsync(null, null, dir.Path, group, "--help");
            foreach (var c in commands) sub.Output.Should().Contain(c);
        }
        var wrong = await OperatorProcess.OperatorAsync(null, null, dir.Path, "hospital", "add", "h1", "--no-such-option");
        wrong.ExitCode.Should().Be(2);
        (await OperatorProcess.OperatorAsync(null, null, dir.Path, "hospital")).ExitCode.Should().Be(2, "a group without a command");
    }

    private static BlobContainerClient ContainerFromPackage(string package)
    {
        var lines = File.ReadAllLines(Path.Combine(package, OnboardingPackage.ResponseFile));
        var uri = new Uri(lines[Array.IndexOf(lines, "--container-uri") + 1]);
        return new BlobContainerClient(uri, StorageClientDefaults.Blob());
    }
}
