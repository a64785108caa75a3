using System.Text.Json;
using SplitFunctions.Core.Data;

namespace SplitFunctions.Tests.EndToEnd;

/// <summary>
/// `splitfn-local experiments` end to end on tiny data: every arm (vanilla and temporal through the real system,
/// single hospital, centralised, federated averaging) runs and scores the test split; results.json, results.md and
/// report.html are written.
/// </summary>
public sealed class ExperimentsRunTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Every_arm_produces_test_metrics_on_tiny_images()
    {
        using var dir = new TempDirectory();
        var data = dir.File("tiny.npz");
        ImageArchive.Save(data, [new("train", SyntheticImages.Generate(300, 28, 28, seed: 9))]);

        var (code, log) = await LocalRunProcess.RunAsync(["experiments", "--data", data, "--name", "tiny", "--epochs", "1", "--batch-size", "32",
            "--audit-steps", "60"],
            TimeSpan.FromMinutes(15), workingDirectory: dir.Path);
        code.Should().Be(0, log);

        var folder = Path.Combine(dir.Path, "artifacts", "experiments", "tiny");
        File.Exists(Path.Combine(folder, "results.md")).Should().BeTrue();
        File.Exists(Path.Combine(folder, "report.html")).Should().BeTrue();
        using var results = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(folder, "results.json")));
        var arms = results.RootElement.GetProperty("arms").EnumerateArray().ToList();
        var names = arms.Select(a => a.GetProperty("arm").GetString()!).ToList();
        output.WriteLine("arms: " + string.Join(", ", names));
        names.Should().BeEquivalentTo(["split-vanilla", "split-temporal", "split-ushaped", "single-hospital-a", "single-hospital-b", "single-hospital-c",
            "centralised", "federated"],
            "every arm runs, the single-hospital arm once per hospital");
        foreach (var arm in arms)
        {
            var name = arm.GetProperty("arm").GetString();
            var test = arm.GetProperty("test");
            test.ValueKind.Should().Be(JsonValueKind.Object, $"arm {name} scores the test split");
            var auc = test.GetProperty("classification").GetProperty("rocAuc").GetDouble();
            output.WriteLine($"{name}: test AUC {auc:F3}");
            auc.Should().BeInRange(0, 1, $"arm {name}").And.NotBe(double.NaN);
            arm.GetProperty("history").GetArrayLength().Should().BeGreaterThan(0, $"arm {name} trained at least one epoch");
            if (name!.StartsWith("split-", StringComparison.Ordinal))
            {
                arm.GetProperty("audits").EnumerateObject().Select(h => h.Name).Should()
                    .BeEquivalentTo(["hospital-a", "hospital-b", "hospital-c"], $"arm {name} reports each hospital's leakage audit beside its accuracy");
            }
        }
    }
}
