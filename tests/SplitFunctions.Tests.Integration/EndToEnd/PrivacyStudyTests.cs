using System.Text.Json;

namespace SplitFunctions.Tests.EndToEnd;

/// <summary>
/// `splitfn-local privacy` as a user runs it, on synthetic images: three hospitals at 7:2:1 train each arm, every hospital's
/// layer is audited by an attacker as strong as the demo's (the other hospitals' images as public data, the largest other
/// hospital colluding), and the table, the choice and the test figures are written.
/// </summary>
public sealed class PrivacyStudyTests
{
    [Fact]
    public async Task Each_hospital_is_audited_with_the_other_hospitals_images_and_a_colluding_layer_and_the_choice_is_written()
    {
        using var dir = new TempDirectory();
        var output = dir.File("study");
        var (code, log) = await LocalRunProcess.RunAsync(["privacy", "--grid", "tiny", "--epochs", "1", "--audit-steps", "10", "--leaked-pairs", ",",
            "--legacy-steps", "10", "--max-audit-images", "30", "--max-train", "600", "--max-public", "100", "--threads", "1", "--out", output],
            TimeSpan.FromMinutes(10));
        code.Should().Be(0, log);

        var table = await File.ReadAllTextAsync(Path.Combine(output, "privacy.md"));
        table.Should().Contain("**(chosen)**").And.Contain("## Test, scored once");
        // 600 training images at 7:2:1, and 100 held apart: each hospital's attacker also has the other two hospitals' rows.
        var sizes = new Dictionary<string, int> { ["hospital-a"] = 420, ["hospital-b"] = 120, ["hospital-c"] = 60 };
        foreach (var (hospital, own) in sizes)
        {
            using var audit = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(output, "none", hospital, "audit.json")));
            var attacks = audit.RootElement.GetProperty("attacks").EnumerateArray().Select(a => a.GetProperty("name").GetString()!).ToList();
            var colluder = hospital == "hospital-a" ? "hospital-b" : "hospital-a";
            attacks.Should().Contain(a => a.StartsWith($"collusion: ridge with {colluder}'s layer", StringComparison.Ordinal),
                $"{hospital}'s audit has the largest other hospital's layer");
            attacks.Should().Contain(a => a.Contains($"{own} own + {700 - own} held-apart and other hospitals' training images", StringComparison.Ordinal),
                $"{hospital}'s attacker has the 100 held-apart images and the other hospitals' {600 - own}");
        }
    }
}
