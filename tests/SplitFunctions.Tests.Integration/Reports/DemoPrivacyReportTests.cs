using System.Text.Json;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.LocalRun;

namespace SplitFunctions.Tests.Reports;

/// <summary>Issue 29, item 3: the demo's results.json and report show each hospital's epsilon beside its accuracy (no processes, no Azurite).</summary>
public sealed class DemoPrivacyReportTests
{
    [Fact]
    public void Results_and_report_carry_each_hospital_s_epsilon_or_say_it_has_no_guarantee()
    {
        using var dir = new TempDirectory();
        var settings = new SplitRunSettings
        {
            Model = ModelCatalog.PneumoniaCnnCut3,
            Mode = TrainingMode.Vanilla,
            DataPath = "images.npz",
            Epochs = 4,
            BatchSize = 32,
            LearningRate = 0.001,
            Seed = 42,
            Hospitals = ["hospital-a", "hospital-b"],
            NoiseSigma = 1,
            ClipNorm = 5,
        };
        // What each agent's evaluation.json holds: its metrics, and the privacy ledger when it finished.
        var guaranteed = Evaluation("""{ "epsilon": 12.21, "delta": 0.001, "noiseMultiplier": 1, "trainingPasses": 4, "validationPasses": 4, "evaluationPasses": 1 }""");
        var unbounded = Evaluation("""{ "delta": 0.002, "trainingPasses": 4, "validationPasses": 4, "evaluationPasses": 1 }""");
        DemoReport.Write(dir.Path, settings, "synthetic", [new HospitalOutcome("hospital-a", guaranteed, null, 0, 0),
            new HospitalOutcome("hospital-b", unbounded, null, 0, 0)], [], TimeSpan.FromMinutes(1));

        using var results = JsonDocument.Parse(File.ReadAllBytes(dir.File("results.json")));
        var hospitals = results.RootElement.GetProperty("hospitals").EnumerateArray().ToList();
        var a = hospitals[0].GetProperty("privacy");
        a.GetProperty("epsilon").GetDouble().Should().Be(12.21);
        a.GetProperty("delta").GetDouble().Should().Be(0.001);
        a.GetProperty("releases").GetInt32().Should().Be(9);
        hospitals[1].GetProperty("privacy").TryGetProperty("epsilon", out _).Should().BeFalse("no clipping, no epsilon: never a number that flatters");

        var html = File.ReadAllText(dir.File("report.html"));
        html.Should().Contain("epsilon (delta)").And.Contain("12.21 (0.001)").And.Contain("no guarantee");
    }

    private static JsonElement Evaluation(string privacy) => JsonDocument.Parse($$"""
        {
          "samples": 10,
          "classification": { "accuracy": 0.9, "rocAuc": 0.95, "truePositives": 4, "falsePositives": 1, "trueNegatives": 5, "falseNegatives": 0,
                              "threshold": 0.5 },
          "privacy": {{privacy}}
        }
        """).RootElement.Clone();
}
