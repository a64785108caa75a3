using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SplitFunctions.Functions.Hosting;

namespace SplitFunctions.Tests.Function;

/// <summary>Log values from messages and blobs (a hostile hospital name here) reach the drain's console with their control characters escaped.</summary>
public sealed class EscapingConsoleFormatterTests
{
    private const string Hostile = "evil\u001b]0;pwned\u0007\u001b[2J\r\nwarn: forged line";

    [Fact]
    public void A_hostile_value_stays_on_its_line_and_writes_no_terminal_escape()
    {
        var text = Format(LogLevel.Warning, $"drain: message 42 poisoned: hospital '{Hostile}' is not a valid hospital id", null);
        text.Should().NotContain("\u001b").And.NotContain("\r").And.NotContain("\u0007");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().HaveCount(2);
        lines[0].Should().Be("warn: SplitFunctions.Functions.Hosting.QueueDrainService[7]");
        lines[1].Should().StartWith("      drain: message 42 poisoned: hospital 'evil\\u001b]0;pwned\\u0007\\u001b[2J\\u000d\\u000awarn: forged line'");
    }

    [Fact]
    public void An_exception_s_lines_are_each_escaped_and_indented_so_none_passes_for_a_log_line()
    {
        var text = Format(LogLevel.Error, "drain: message 7: unexpected", new InvalidOperationException(Hostile));
        text.Should().NotContain("\u001b").And.NotContain("\r");
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Should().OnlyContain(l => l.StartsWith("      ", StringComparison.Ordinal));
    }

    [Fact]
    public void Outcome_reasons_are_escaped_once_for_every_log_and_record_they_reach()
    {
        MessageOutcome.Rejected($"run '{Hostile}'").Detail.Should().NotContain("\u001b").And.NotContain("\n").And.Contain("\\u001b");
    }

    private static string Format(LogLevel level, string message, Exception? exception)
    {
        var entry = new Microsoft.Extensions.Logging.Abstractions.LogEntry<string>(level, "SplitFunctions.Functions.Hosting.QueueDrainService",
            new EventId(7), message, exception, (s, _) => s);
        using var writer = new StringWriter();
        new EscapingConsoleFormatter().Write(entry, null, writer);
        return writer.ToString();
    }
}
