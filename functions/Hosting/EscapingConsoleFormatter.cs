using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using SplitFunctions.Core.CommandLine;

namespace SplitFunctions.Functions.Hosting;

/// <summary>
/// The drain host's console lines, laid out as the default "simple" formatter lays them out (`info: Category[id]`, the
/// message indented below), with every control character of the message and the exception escaped
/// (<see cref="Printable"/>). Log values come from messages and blobs (hospital ids, run ids, blob names, reasons quoting
/// what a sender wrote): a terminal escape or a carriage return in one must not rewrite the operator's terminal or forge a
/// log line; an exception's own lines stay separate lines, each indented, so none can pass for a line of its own.
/// </summary>
public sealed class EscapingConsoleFormatter() : ConsoleFormatter(Name)
{
    public new const string Name = "escaped";

    private const string Indent = "      ";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        ArgumentNullException.ThrowIfNull(textWriter);
        var message = logEntry.Formatter?.Invoke(logEntry.State, logEntry.Exception);
        if (message is null && logEntry.Exception is null) return;
        textWriter.Write(Level(logEntry.LogLevel));
        textWriter.Write(": ");
        textWriter.Write(Printable.Escape(logEntry.Category));
        textWriter.Write('[');
        textWriter.Write(logEntry.EventId.Id);
        textWriter.WriteLine(']');
        if (!string.IsNullOrEmpty(message))
        {
            textWriter.Write(Indent);
            textWriter.WriteLine(Printable.Escape(message));
        }
        if (logEntry.Exception is { } exception)
        {
            foreach (var line in exception.ToString().Split('\n'))
            {
                textWriter.Write(Indent);
                textWriter.WriteLine(Printable.Escape(line.TrimEnd('\r')));
            }
        }
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "none",
    };
}

/// <summary>Registers <see cref="EscapingConsoleFormatter"/> as the console's only formatter.</summary>
public static class EscapingConsoleLogging
{
    public static ILoggingBuilder AddEscapingConsole(this ILoggingBuilder logging)
    {
        ArgumentNullException.ThrowIfNull(logging);
        logging.ClearProviders();
        logging.AddConsole(options => options.FormatterName = EscapingConsoleFormatter.Name);
        logging.AddConsoleFormatter<EscapingConsoleFormatter, ConsoleFormatterOptions>();
        return logging;
    }
}
