using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Runs;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Agent;

/// <summary>
/// The hospital install (docs/agent.md): `dotnet publish -r linux-x64 --self-contained` gives one folder, and that
/// folder's `splitfn-agent` trains a real run against Azurite and the real function from a clean environment: no
/// dotnet on PATH, no LD_LIBRARY_PATH, and every libtorch it maps comes from its own folder (this machine also has
/// Debian's libtorch 1.13 in the system library path).
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class PublishedAgentTests(AzuriteFixture azurite)
{
    private static readonly string PublishFolder = Path.Combine(RepoRoot.Path, "artifacts", "publish", "splitfn-agent-linux-x64");

    [Fact]
    public async Task The_published_linux_agent_trains_from_a_clean_environment_on_its_own_libtorch()
    {
        var agent = await PublishOnceAsync();
        var manifest = AgentTestBed.SmallManifest("run-" + Guid.NewGuid().ToString("N")[..12], epochs: 1);
        using var bed = new AgentTestBed(manifest.RunId);
        await new RunProvisioner(azurite.Connection).ProvisionAsync(manifest);
        var data = bed.WriteImages(100); // 80 training rows, batch 16: 5 batches

        var init = await RunCleanAsync(agent, bed.Folder, ["init", "--config", bed.ConfigPath, "--hospital", AgentTestBed.Hospital, "--run", manifest.RunId,
            "--data", data, "--connection-string", azurite.Azurite.ConnectionString, "--key-dir", bed.KeyDirectory, "--state", bed.StateFolder,
            "--reply-timeout", "60", .. AgentTestBed.OpenFloor]);
        init.ExitCode.Should().Be(0, init.Log);

        var function = DrainFunction.Start(azurite.Azurite.ConnectionString, bed.KeyDirectory);
        await using (function)
        {
            var train = await RunCleanAsync(agent, bed.Folder, ["train", "--config", bed.ConfigPath, "--output", "log", "--log-every", "1", "--no-validation"]);
            train.ExitCode.Should().Be(0, train.Log + "\n--- function\n" + function.Output);
            train.Log.Should().Contain("batch=5/5");
            train.LibTorch.Should().NotBeEmpty("the agent maps libtorch while it trains");
            train.LibTorch.Should().OnlyContain(path => path.StartsWith(PublishFolder + "/", StringComparison.Ordinal),
                "every libtorch library comes from the published folder, none from the system");
            train.LibTorch.Should().Contain(path => path.EndsWith("/libLibTorchSharp.so", StringComparison.Ordinal))
                .And.Contain(path => path.EndsWith("/libtorch_cpu.so", StringComparison.Ordinal));
            await function.StopAsync();
        }
        StateFolder.Peek(bed.StateFolder, manifest.RunId)!.ClientSteps.Should().Be(5);
        var (_, applied) = await DrainFunction.ReadRunStateAsync(azurite.Connection, bed.KeyDirectory, manifest.RunId, AgentTestBed.Hospital);
        applied.Should().Be(5, "the function applied every batch the published agent sent");
    }

    private sealed record CleanRun(int ExitCode, string Log, IReadOnlyCollection<string> LibTorch);

    // A clean environment: only PATH=/usr/bin:/bin, HOME and TMPDIR; the process's mapped libtorch files are sampled while it runs.
    private static async Task<CleanRun> RunCleanAsync(string agent, string home, string[] arguments)
    {
        var info = new ProcessStartInfo(agent)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = home
        };
        info.Environment.Clear();
        info.Environment["PATH"] = "/usr/bin:/bin";
        info.Environment["HOME"] = home;
        info.Environment["TMPDIR"] = Path.GetTempPath();
        foreach (var a in arguments) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var mapped = new HashSet<string>(StringComparer.Ordinal);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        while (!process.HasExited)
        {
            try
            {
                foreach (var line in await File.ReadAllLinesAsync($"/proc/{process.Id}/maps", timeout.Token))
                {
                    var path = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(5).FirstOrDefault();
                    if (path is not null && (path.Contains("libtorch", StringComparison.Ordinal) || path.Contains("libc10", StringComparison.Ordinal)
                                             || path.Contains("LibTorchSharp", StringComparison.Ordinal)))
                        mapped.Add(path);
                }
            }
            catch (IOException)
            {
                // The process ended between the check and the read.
            }
            await Task.Delay(200, timeout.Token);
        }
        await process.WaitForExitAsync(timeout.Token);
        return new CleanRun(process.ExitCode, await stdout + await stderr, mapped);
    }

    private static readonly SemaphoreSlim PublishGate = new(1, 1);

    // One publish per change of its inputs: the folder is reused while the sources that go into it stay the same
    // (a linux-x64 publish copies about 1 GB, minutes on 2 cores).
    private static async Task<string> PublishOnceAsync()
    {
        await PublishGate.WaitAsync();
        try
        {
            var stamp = Path.Combine(PublishFolder, ".splitfn-inputs.sha256");
            var inputs = InputsHash();
            var agent = Path.Combine(PublishFolder, "splitfn-agent");
            if (File.Exists(agent) && File.Exists(stamp) && await File.ReadAllTextAsync(stamp) == inputs) return agent;
            if (Directory.Exists(PublishFolder)) Directory.Delete(PublishFolder, recursive: true);
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepoRoot.Path };
            foreach (var a in new[] { "publish", "client-agent", "-c", "Release", "-r", "linux-x64", "--self-contained", "-o", PublishFolder, "-nologo",
                "-v:q" })
                info.ArgumentList.Add(a);
            using var process = Process.Start(info)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            process.ExitCode.Should().Be(0, "dotnet publish of the agent: " + await stdout + await stderr);
            File.Exists(agent).Should().BeTrue("the publish folder holds the agent executable");
            await File.WriteAllTextAsync(stamp, inputs);
            return agent;
        }
        finally
        {
            PublishGate.Release();
        }
    }

    private static string InputsHash()
    {
        var root = RepoRoot.Path;
        var files = new[] { "client-agent", "core", "build" }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(root, d), "*", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .Concat(new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" }.Select(f => Path.Combine(root, f)))
            .Order(StringComparer.Ordinal);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in files)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(Path.GetRelativePath(root, file)));
            sha.AppendData(File.ReadAllBytes(file));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
