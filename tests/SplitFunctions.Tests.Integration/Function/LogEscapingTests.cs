using SplitFunctions.Core.Storage;

namespace SplitFunctions.Tests.Function;

/// <summary>
/// A message whose run and hospital are terminal escapes, a bell, a carriage return and a forged log line (issue 31): the
/// drain process logs it and poisons it with its reason, and neither the log nor the poison record carries a control
/// character or a line of the sender's making.
/// </summary>
public sealed class LogEscapingTests
{
    [Fact]
    public async Task A_hostile_name_reaches_the_drain_log_and_the_poison_record_escaped()
    {
        await using var run = await RunHarness.StartAsync();
        // JSON escapes: the values themselves hold ESC, BEL, CR and LF.
        const string Hostile = @"evil\u001b]0;pwned\u0007\u001b[2J\r\nwarn: forged line";
        var text = $$"""{"v":2,"run":"{{Hostile}}","hospital":"{{Hostile}}","seq":1,"kind":"train","blob":"x","length":1,"sha256":"{{new string('a', 64)}}","replyQueue":"replies-alpha","keyId":"k1","mac":"{{new string('0', 64)}}"}""";
        await run.Features.SendMessageAsync(text);

        await using var drain = FunctionProcess.Start(run, "drain", "drain-escape", new Dictionary<string, string>
        {
            ["SplitFunctions__VisibilityTimeoutSeconds"] = "5",
        });
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        List<PoisonRecord> records;
        while ((records = await run.PoisonRecordsAsync()).Count < 1 && DateTime.UtcNow < deadline) await Task.Delay(200);
        await Task.Delay(500);
        await drain.StopAsync();

        records.Should().ContainSingle(drain.Output);
        records[0].Reason.Should().Contain("evil\\u001b]0;pwned").And.NotContain("\u001b").And.NotContain("\r").And.NotContain("\n");
        var output = drain.Output;
        output.Should().Contain("evil\\u001b]0;pwned", "the reason is logged, escaped");
        output.Should().NotContain("\u001b").And.NotContain("\u0007");
        output.Split('\n').Should().NotContain(l => l.TrimStart('\r').StartsWith("warn: forged", StringComparison.Ordinal), "no line is the sender's");
    }
}
