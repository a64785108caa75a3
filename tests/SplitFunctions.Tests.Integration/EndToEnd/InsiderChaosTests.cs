using System.Text.Json;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.EndToEnd;

/// <summary>
/// `splitfn-local chaos --insider --smoke` through the real command (issue 31, item 7): per mode a three-hospital run
/// without and with an insider (a fourth hospital of the run with a valid key, no agent) sending huge values, infinities,
/// an oversized batch, a huge and a deleted blob, a leg out of order and forged replies to honest agents. The figures are
/// the targets: no crash, a finite server model, every honest step applied once, every attack refused with a reason,
/// the function's peak RSS within 1.5 times the run without the insider.
/// </summary>
public sealed class InsiderChaosTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task An_insider_in_every_mode_crashes_nothing_leaves_the_model_finite_and_costs_the_function_no_memory()
    {
        using var dir = new TempDirectory();
        var folder = Path.Combine(dir.Path, "chaos");
        var (code, log) = await LocalRunProcess.RunAsync(["chaos", "--insider", "--smoke", "--out", folder], TimeSpan.FromMinutes(20));
        output.WriteLine(log);

        using var results = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(folder, "insider-results.json")));
        var modes = results.RootElement.GetProperty("modes").EnumerateArray().ToList();
        modes.Select(m => m.GetProperty("mode").GetString()).Should().Equal("vanilla", "temporal", "ushaped");
        foreach (var m in modes)
        {
            var mode = m.GetProperty("mode").GetString();
            m.GetProperty("completed").GetBoolean().Should().BeTrue($"{mode}: both runs finish\n{log}");
            m.GetProperty("unplannedExits").GetArrayLength().Should().Be(0, $"{mode}: no crash\n{log}");
            m.GetProperty("nonFiniteServerValues").GetInt64().Should().Be(0, $"{mode}: the server's model stays finite");
            m.GetProperty("stepsLost").GetInt64().Should().Be(0, $"{mode}: every honest step applied\n{log}");
            m.GetProperty("stepsDoubled").GetInt64().Should().Be(0, $"{mode}: none applied twice\n{log}");
            m.GetProperty("serverBatchesApplied").GetInt64().Should().Be(m.GetProperty("serverBatchesExpected").GetInt64()).And.BeGreaterThan(0);
            var sent = m.GetProperty("attacksSent").GetInt32();
            sent.Should().Be(6, "one attack of each kind");
            m.GetProperty("attacksPoisonedWithReason").GetInt32().Should().Be(sent, $"{mode}: every attack refused with a reason\n{log}");
            m.GetProperty("attacksByKind").EnumerateObject().Should().HaveCount(6);
            m.GetProperty("forgedReplies").GetInt32().Should().BeGreaterThan(0);
            m.GetProperty("otherPoisoned").GetArrayLength().Should().Be(0, $"{mode}: no honest message poisoned\n{log}");
            m.GetProperty("insiderPeakRssBytes").GetInt64().Should().BeGreaterThan(0);
            m.GetProperty("rssRatio").GetDouble().Should()
                .BeLessThanOrEqualTo(1.5, $"{mode}: the function's peak RSS within 1.5x of the run without the insider");
        }
        code.Should().Be(0, log);
        File.ReadAllText(Path.Combine(folder, "insider-results.md")).Should().Contain("Every target held.");
    }
}
