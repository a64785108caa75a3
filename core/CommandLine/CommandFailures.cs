namespace SplitFunctions.Core.CommandLine;

/// <summary>What a failed command prints and exits with: the first line prefixed with the tool's name, an optional second line as is.</summary>
public readonly record struct CommandFailure(int ExitCode, string Message, string? NextLine = null);

/// <summary>
/// The one place a command-line tool's failures become exit codes (`splitfn-agent`, `splitfn-operator`): the command
/// body runs, and whatever it throws is described by the tool's own mapping and written to stderr.
/// </summary>
public sealed class CommandFailures(string tool, Func<Exception, CommandFailure> describe)
{
    /// <summary>Runs a command body; returns its exit code, or the failure's after printing it.</summary>
    public async Task<int> RunAsync(TextWriter error, Func<Task<int>> body)
    {
        ArgumentNullException.ThrowIfNull(error);
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var failure = describe(e);
            // Messages may quote what came from outside (a file's cell, a reply's reason): no control character reaches the terminal.
            await error.WriteLineAsync($"{tool}: {Printable.Escape(failure.Message)}").ConfigureAwait(false);
            if (failure.NextLine is not null) await error.WriteLineAsync(Printable.Escape(failure.NextLine)).ConfigureAwait(false);
            return failure.ExitCode;
        }
    }
}
