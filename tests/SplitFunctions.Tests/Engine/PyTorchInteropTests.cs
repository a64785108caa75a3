using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using SplitFunctions.Core.Engine;
using SplitFunctions.Core.Models;

namespace SplitFunctions.Tests.Engine;

/// <summary>State dicts cross between the binding and PyTorch in both directions with identical predictions.</summary>
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

        // PyTorch saved client and server as one nn.Sequential: the same layers, one spec.
        var model = ModelCatalog.LdlMlp;
        using var whole = Network.Create(LayerSpec.ToSpecText([.. model.ClientLayers, .. model.ServerLayers]), model.InputShape);
        whole.LoadState(state);
        using var x = GoldenValues.Input([8, 7]);
        using var y = whole.Forward(x, train: false);
        var predictions = y.ToArray();
        predictions.Should().HaveCount(expected.Length);
        for (var i = 0; i < expected.Length; i++)
            predictions[i].Should().BeApproximately((float)expected[i], 1e-5f * Math.Max(1f, Math.Abs((float)expected[i])));
    }

    [Theory]
    [InlineData("ldl-mlp")]
    [InlineData("pneumonia-cnn")]
    public void StateSavedByTheBinding_LoadsInPyTorch_WithIdenticalPredictions(string name)
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

        if (!PyTorchAvailable())
        {
            // Fixture path (no python3-torch): the bytes must at least reload into the binding identically.
            using var again = model.BuildClient();
            again.LoadState(clientState);
            using var a2 = again.Forward(x, train: false);
            a2.ToArray().Should().Equal(a.ToArray());
            return;
        }

        using var dir = new TempDirectory();
        var aValues = a.ToArray();
        File.WriteAllBytes(dir.File("client.pt"), clientState);
        File.WriteAllBytes(dir.File("server.pt"), serverState);
        File.WriteAllBytes(dir.File("x.f32"), MemoryMarshal.AsBytes(x.ToArray().AsSpan()).ToArray());
        File.WriteAllBytes(dir.File("a.f32"), MemoryMarshal.AsBytes(aValues.AsSpan()).ToArray());
        RunPython(name + ":client", dir.File("client.pt"), dir.File("x.f32"), batch, dir.File("a-py.f32"));
        RunPython(name + ":server", dir.File("server.pt"), dir.File("a.f32"), batch, dir.File("p-py.f32"), string.Join(",", client.OutputShape));

        MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(dir.File("a-py.f32"))).ToArray().Should().Equal(aValues, "client predictions must be identical");
        var ours = p.ToArray();
        var theirs = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(dir.File("p-py.f32"))).ToArray();
        theirs.Should().HaveCount(ours.Length);
        for (var i = 0; i < ours.Length; i++) theirs[i].Should().BeApproximately(ours[i], 1e-6f);
    }

    private static bool PyTorchAvailable()
    {
        if (!File.Exists(DebianPython)) return false;
        using var probe = Process.Start(new ProcessStartInfo(DebianPython, "-c \"import torch\"") { RedirectStandardError = true, RedirectStandardOutput = true })!;
        probe.WaitForExit();
        return probe.ExitCode == 0;
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
