using System.Diagnostics;
using System.Text.Json;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.EndToEnd;

/// <summary>
/// `splitfn-local chaos --smoke` through the real command: Azurite, the function and three agents as processes, with kills,
/// an outage, duplicates, reorders and hostile messages of every kind. The report's figures are the invariants: a lost or
/// doubled step, an unplanned crash, a hostile message not poisoned with a reason, a valid message poisoned or temporal
/// weights that differ from the uninterrupted run's fail this test.
/// </summary>
public sealed class ChaosRunTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Chaos_smoke_loses_and_doubles_no_step_crashes_nothing_unplanned_and_poisons_every_hostile_message_with_a_reason()
    {
        using var dir = new TempDirectory();
        var folder = Path.Combine(dir.Path, "chaos");
        var (code, log) = await RunChaosAsync(["chaos", "--smoke", "--seed", "20261203", "--out", folder]);
        output.WriteLine(log);

        using var results = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(folder, "results.json")));
        var root = results.RootElement;
        root.GetProperty("seed").GetInt64().Should().Be(20261203, "the seed is recorded");
        root.GetProperty("runsCompleted").GetInt32().Should().Be(root.GetProperty("runs").GetInt32(), log);
        root.GetProperty("runs").GetInt32().Should().Be(3, "vanilla, temporal and the temporal reference run");
        var modes = root.GetProperty("modes").EnumerateArray().ToList();
        modes.Select(m => m.GetProperty("mode").GetString()).Should().Equal("vanilla", "temporal");
        foreach (var m in modes)
        {
            var mode = m.GetProperty("mode").GetString();
            var faults = m.GetProperty("faults");
            int Fault(string kind) => faults.TryGetProperty(kind, out var n) ? n.GetInt32() : 0;
            (Fault("kill function") + Fault("kill agent")).Should().BeGreaterThan(0, $"{mode}: the smoke kills processes");
            Fault("hostile message").Should().BeGreaterThan(0, $"{mode}: the smoke sends hostile messages");
            m.GetProperty("completed").GetBoolean().Should().BeTrue($"{mode} must finish under faults\n{log}");
            m.GetProperty("stepsLost").GetInt64().Should().Be(0, $"{mode}: no step lost\n{log}");
            m.GetProperty("stepsDoubled").GetInt64().Should().Be(0, $"{mode}: no step applied twice\n{log}");
            m.GetProperty("serverBatchesApplied").GetInt64().Should().Be(m.GetProperty("serverBatchesExpected").GetInt64()).And.BeGreaterThan(0);
            m.GetProperty("unplannedExits").GetArrayLength().Should().Be(0, $"{mode}: no crash but the planned kills\n{log}");
            var sent = m.GetProperty("hostileSent").GetInt32();
            m.GetProperty("hostilePoisonedWithReason").GetInt32().Should().Be(sent, $"{mode}: every hostile message poisoned with a reason\n{log}");
            m.GetProperty("hostileNotPoisoned").GetInt32().Should().Be(0);
            m.GetProperty("otherPoisoned").GetArrayLength().Should().Be(0, $"{mode}: no valid message poisoned\n{log}");
            foreach (var hospital in m.GetProperty("hospitals").EnumerateArray())
            {
                hospital.GetProperty("committed").GetInt64().Should()
                    .Be(hospital.GetProperty("expected").GetInt64(), $"{mode} {hospital.GetProperty("hospital").GetString()} finished its part");
            }
        }
        modes[0].GetProperty("hostileByKind").EnumerateObject().Select(k => k.Name).Should().HaveCount(8, "every hostile kind is sent in vanilla mode (40 "
            + "messages, 8 kinds)");
        modes[1].GetProperty("temporalWeightsIdentical").GetBoolean().Should().BeTrue($"temporal weights equal the uninterrupted run's bit for bit\n{log}");
        code.Should().Be(0, log);
        File.ReadAllText(Path.Combine(folder, "results.md")).Should().Contain("Every invariant held.");
    }

    [Fact]
    public async Task A_malformed_outage_range_is_one_line_and_exit_code_2()
    {
        var (code, log) = await RunChaosAsync(["chaos", "--outage-seconds", "60,5"]);
        code.Should().Be(2, log);
        log.Trim().Split('\n').Should().ContainSingle().Which.Should().Contain("--outage-seconds '60,5'");
    }

    private static Task<(int Code, string Log)> RunChaosAsync(string[] arguments) => LocalRunProcess.RunAsync(arguments, TimeSpan.FromMinutes(10));
}
