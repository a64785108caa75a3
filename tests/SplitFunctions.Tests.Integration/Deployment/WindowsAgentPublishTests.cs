using System.Diagnostics;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text.Json;

namespace SplitFunctions.Tests.Deployment;

/// <summary>
/// INTEGRATION TEST (slow: a self-contained publish, about a minute warm and longer when the win-x64 runtime packs
/// are first restored). The Windows hospital install of docs/agent.md,
/// `dotnet publish client-agent -c Release -r win-x64 --self-contained -o ...`, gives a folder that holds the agent
/// executable, every managed assembly its deps.json names, the .NET runtime and the Windows build of libtorch (the
/// TorchSharp-cpu package's win-x64 natives). Nothing Windows can run here, so the files are checked as files: PE
/// images for x64, managed assemblies with metadata, native DLLs without, and no Linux library among them.
/// </summary>
[Trait("Category", "Integration")]
public sealed class WindowsAgentPublishTests
{
    private const string Rid = "win-x64";

    private static readonly string PublishFolder = Path.Combine(RepoRoot.Path, "artifacts", "publish", "splitfn-agent-" + Rid);

    /// <summary>
    /// The publish's own obj/ and bin/ (`--artifacts-path`), so a win-x64 restore never rewrites the obj/ folders the
    /// solution build and the linux-x64 publish test use.
    /// </summary>
    private static readonly string BuildFolder = Path.Combine(RepoRoot.Path, "artifacts", "publish", "build-" + Rid);

    /// <summary>The Windows natives of libtorch 2.10 (libtorch-cpu-win-x64) and TorchSharp's bridge to them.</summary>
    private static readonly string[] LibTorchNatives = ["torch_cpu.dll", "torch.dll", "c10.dll", "LibTorchSharp.dll"];

    [Fact]
    public async Task The_documented_win_x64_publish_holds_the_agent_its_assemblies_and_the_Windows_libtorch()
    {
        File.ReadAllText(Path.Combine(RepoRoot.Path, "docs", "agent.md"))
            .Should().Contain("dotnet publish client-agent -c Release -r linux-x64 --self-contained -o dist/splitfn-agent-linux-x64   # or -r win-x64",
                "this test runs the documented command with -r win-x64");
        await PublishAsync();

        // The executable: the .NET app host for x64 Windows, beside its managed entry assembly.
        var exe = Path.Combine(PublishFolder, "splitfn-agent.exe");
        File.Exists(exe).Should().BeTrue("the folder holds the agent executable");
        Pe(exe).Machine.Should().Be(Machine.Amd64);
        Pe(exe).Managed.Should().BeFalse("splitfn-agent.exe is the native app host");
        var entry = Path.Combine(PublishFolder, "splitfn-agent.dll");
        Pe(entry).Managed.Should().BeTrue("splitfn-agent.dll is the agent's managed assembly");

        // Self-contained: the runtime is in the folder, and the runtime config says so.
        foreach (var runtime in new[] { "hostfxr.dll", "hostpolicy.dll", "coreclr.dll", "System.Private.CoreLib.dll" })
            File.Exists(Path.Combine(PublishFolder, runtime)).Should().BeTrue($"a self-contained publish carries the .NET runtime ({runtime})");
        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(PublishFolder, "splitfn-agent.runtimeconfig.json"))))
            config.RootElement.GetProperty("runtimeOptions").TryGetProperty("includedFrameworks", out _).Should().BeTrue("the runtime config of a "
                + "self-contained app lists its included frameworks");

        // Every runtime and native file deps.json names for win-x64 is in the folder, managed ones with metadata.
        var (managed, native) = DepsAssets();
        managed.Should().Contain(["splitfn-agent.dll", "SplitFunctions.Core.dll", "TorchSharp.dll", "Azure.Storage.Queues.dll", "System.CommandLine.dll"]);
        foreach (var file in managed)
        {
            var path = Path.Combine(PublishFolder, file);
            File.Exists(path).Should().BeTrue($"deps.json names {file}");
            Pe(path).Managed.Should().BeTrue($"{file} is a managed assembly");
        }
        foreach (var file in native)
            File.Exists(Path.Combine(PublishFolder, file)).Should().BeTrue($"deps.json names the native {file}");

        // libtorch for Windows: x64 DLLs, not the Linux .so files of the development machine.
        native.Should().Contain(LibTorchNatives);
        foreach (var file in LibTorchNatives)
        {
            var pe = Pe(Path.Combine(PublishFolder, file));
            pe.Machine.Should().Be(Machine.Amd64, $"{file} is an x64 Windows library");
            pe.Managed.Should().BeFalse($"{file} is native");
        }
        Directory.EnumerateFiles(PublishFolder, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".so", StringComparison.Ordinal) || f.Contains(".so.", StringComparison.Ordinal)
                || f.EndsWith(".dylib", StringComparison.Ordinal))
            .Should().BeEmpty("a Windows folder carries no Linux or macOS libraries");
    }

    private static async Task PublishAsync()
    {
        if (Directory.Exists(PublishFolder)) Directory.Delete(PublishFolder, recursive: true);
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepoRoot.Path,
        };
        foreach (var a in new[] { "publish", "client-agent", "-c", "Release", "-r", Rid, "--self-contained", "-o", PublishFolder,
                     "--artifacts-path", BuildFolder, "-nologo", "-v:q" })
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(15));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("dotnet publish -r win-x64 ran longer than 15 minutes");
        }
        process.ExitCode.Should().Be(0, "dotnet publish -r win-x64 of the agent: " + await stdout + await stderr);
        // The build output is a second copy of the published folder (about 350 MB); obj/ stays for the next restore.
        var bin = Path.Combine(BuildFolder, "bin");
        if (Directory.Exists(bin)) Directory.Delete(bin, recursive: true);
    }

    /// <summary>The file names deps.json lists for the win-x64 target: runtime (managed) and native assets.</summary>
    private static (List<string> Managed, List<string> Native) DepsAssets()
    {
        using var deps = JsonDocument.Parse(File.ReadAllText(Path.Combine(PublishFolder, "splitfn-agent.deps.json")));
        var targets = deps.RootElement.GetProperty("targets").EnumerateObject().ToList();
        var target = targets.Single(t => t.Name.EndsWith("/" + Rid, StringComparison.Ordinal)).Value;
        List<string> managed = [], native = [];
        foreach (var library in target.EnumerateObject())
        {
            if (library.Value.TryGetProperty("runtime", out var runtime))
                managed.AddRange(runtime.EnumerateObject().Select(a => Path.GetFileName(a.Name)));
            if (library.Value.TryGetProperty("native", out var natives))
                native.AddRange(natives.EnumerateObject().Select(a => Path.GetFileName(a.Name)));
        }
        return (managed.Distinct(StringComparer.Ordinal).ToList(), native.Distinct(StringComparer.Ordinal).ToList());
    }

    private static (Machine Machine, bool Managed) Pe(string path)
    {
        using var stream = File.OpenRead(path);
        using var reader = new PEReader(stream);
        reader.PEHeaders.CoffHeader.Should().NotBeNull($"{path} should be a PE image");
        return (reader.PEHeaders.CoffHeader.Machine, reader.HasMetadata);
    }
}
