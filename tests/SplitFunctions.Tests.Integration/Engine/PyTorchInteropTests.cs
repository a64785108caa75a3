using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using SplitFunctions.Core.Model;

namespace SplitFunctions.Tests.Engine;

/// <summary>State dicts cross between TorchSharp and PyTorch in both directions with identical predictions.</summary>
public sealed class PyTorchInteropTests
{
    // Debian's own interpreter: the python3 first on PATH may be another one without torch.
    private const string DebianPython = "/usr/bin/python3";

    [Fact]
    public void StateSavedByPyTorch_LoadsStrictly_AndPredictsIdentically()
    {
        var state = File.ReadAllBytes(GoldenRun.FixturePath("ldl-mlp.pytorch-state.pt"));
        using var expectedJson = JsonDocument.Parse(File.ReadAllText(GoldenRun.FixturePath("ldl-mlp.pytorch-predictions.json")));
        var expected = expectedJson.RootElement.GetProperty("predictions").EnumerateArray().Select(e => e.GetDouble()).ToArray();

        // PyTorch saved client and server as one nn.Sequential: the same layers, numbered through.
        var model = ModelCatalog.LdlMlp;
        using var whole = model.BuildWhole();
        whole.LoadState(state);
        using var x = GoldenValues.Input([8, 7]);
        using var y = whole.Forward(x, train: false);
        var predictions = y.ToFloats();
        predictions.Should().HaveCount(expected.Length);
        for (var i = 0; i < expected.Length; i++)
            predictions[i].Should().BeApproximately((float)expected[i], 1e-5f * Math.Max(1f, Math.Abs((float)expected[i])));
    }

    [Theory]
    [InlineData("ldl-mlp")]
    [InlineData("pneumonia-cnn")]
    public void StateSavedByTorchSharp_LoadsInPyTorch_WithIdenticalPredictions(string name)
    {
        var model = ModelCatalog.Get(name);
        TorchRuntime.Seed(11);
        var (client, server) = model.BuildSplit();
        using var _c = client;
        using var _s = server;
        const int batch = 3;
        using var x = GoldenValues.Input([batch, .. model.InputShape]);
        using var a = client.Forward(x, train: false);
        using var p = server.Forward(a, train: false);
        var clientState = client.SaveState();
        var serverState = server.SaveState();

        // The reference must really run: without Debian's PyTorch this test fails (scripts/test.sh installs it).
        RequirePyTorch();

        using var dir = new TempDirectory();
        var aValues = a.ToFloats();
        File.WriteAllBytes(dir.File("client.pt"), clientState);
        File.WriteAllBytes(dir.File("server.pt"), serverState);
        File.WriteAllBytes(dir.File("x.f32"), MemoryMarshal.AsBytes(x.ToFloats().AsSpan()).ToArray());
        File.WriteAllBytes(dir.File("a.f32"), MemoryMarshal.AsBytes(aValues.AsSpan()).ToArray());
        RunPython(name + ":client", dir.File("client.pt"), dir.File("x.f32"), batch, dir.File("a-py.f32"));
        RunPython(name + ":server", dir.File("server.pt"), dir.File("a.f32"), batch, dir.File("p-py.f32"), string.Join(",", client.OutputShape));

        // libtorch 2.10 here, 1.13.1 in Debian's PyTorch: the kernels differ in the last float32 bits (GoldenTests measures
        // it), so the same weights give the same outputs within 1e-5 of the largest output, not bit for bit.
        ShouldAgree(MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(dir.File("a-py.f32"))).ToArray(), aValues, "client outputs");
        ShouldAgree(MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(dir.File("p-py.f32"))).ToArray(), p.ToFloats(), "server predictions");
    }

    private static void ShouldAgree(float[] theirs, float[] ours, string what)
    {
        theirs.Should().HaveCount(ours.Length, what);
        var scale = Math.Max(ours.Max(Math.Abs), 1e-6f);
        for (var i = 0; i < ours.Length; i++)
            (Math.Abs(theirs[i] - ours[i]) / scale).Should().BeLessThanOrEqualTo(1e-5f, $"{what}[{i}]: PyTorch {theirs[i]:R}, ours {ours[i]:R}");
    }

    private static void RequirePyTorch()
    {
        File.Exists(DebianPython).Should().BeTrue($"the interop test needs Debian's {DebianPython} with python3-torch (scripts/test.sh installs it: apt-get "
            + $"install python3-torch)");
        using var probe = Process.Start(new ProcessStartInfo(DebianPython, "-c \"import torch\"")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true
        })!;
        var stderr = probe.StandardError.ReadToEnd();
        probe.WaitForExit();
        probe.ExitCode.Should().Be(0, $"{DebianPython} cannot import torch; install python3-torch (scripts/test.sh does): {stderr}");
    }

    private static void RunPython(params object[] arguments)
    {
        var script = Path.Combine(RepoRoot.Path, "tests", "golden", "predict.py");
        var info = new ProcessStartInfo(DebianPython) { RedirectStandardError = true, RedirectStandardOutput = true };
        info.ArgumentList.Add(script);
        foreach (var a in arguments) info.ArgumentList.Add(a.ToString()!);
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        process.ExitCode.Should().Be(0, stderr);
    }
}
