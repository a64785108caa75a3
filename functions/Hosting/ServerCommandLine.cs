using System.CommandLine;
using Microsoft.Extensions.Options;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Functions.Hosting;

/// <summary>The server's exit codes (docs/deploy.md).</summary>
public enum ServerExitCode
{
    /// <summary>Stopped as asked (or, with --exit-when-empty, the queue was drained).</summary>
    Ok = 0,

    /// <summary>An unexpected failure; the message says what failed.</summary>
    Failure = 1,

    /// <summary>Bad arguments or settings: one line per problem names what to fix.</summary>
    Usage = 2,
}

/// <summary>
/// The command line: without a verb the process is the Functions isolated worker (the Functions host starts it with its
/// own arguments, passed on untouched); `drain` is the second host for local runs and Container Apps jobs.
/// </summary>
public static class ServerCommandLine
{
    public const string Program = "SplitFunctions.Functions";

    public static RootCommand Build()
    {
        var root = new RootCommand(
            "SplitFunctions server: trains the server layers of split-learning runs from the 'features' queue. Without a command it is the " +
            "Azure Functions isolated worker, started by the Functions host. Settings: AzureWebJobsStorage (or its identity-based __accountName, " +
            "__credential, __clientId, __blobServiceUri, __queueServiceUri), SplitFunctions__KeyVaultUri or SplitFunctions__KeyDirectory, " +
            "SplitFunctions__Device, __Threads, __CheckpointRetention, __MaxDequeueCount, __VisibilityTimeoutSeconds, __TemporalWindowMiB, "
                + "__TemporalCacheMiB, __OverlapCommits. Exit codes: 0 stopped, " +
            "1 failure, 2 bad arguments or settings.")
        {
            // The Functions host passes its own options (gRPC endpoint, worker id): they belong to the worker.
            TreatUnmatchedTokensAsErrors = false,
        };
        root.SetAction((parse, ct) => parse.UnmatchedTokens.Count == 0 && parse.Tokens.Count == 0
            ? Task.FromResult(root.Parse(["--help"]).Invoke())
            : RunAsync(() => WorkerHost.RunAsync([.. parse.UnmatchedTokens], ct)));

        var exitWhenEmpty = new Option<bool>("--exit-when-empty") { Description = "Stop once the queue is empty (Container Apps jobs)." };
        var instanceId = new Option<string?>("--instance-id")
        {
            Description = "Stable id for run leases, so a restart takes its leases back at once (default: the replica or machine name).",
        };
        var drain = new Command("drain", "Pull the 'features' queue directly (local runs on Azurite, Azure Container Apps "
            + "jobs).") { exitWhenEmpty, instanceId };
        drain.SetAction((parse, ct) => RunAsync(() => DrainHost.RunAsync(parse.GetValue(exitWhenEmpty), parse.GetValue(instanceId), ct)));
        root.Subcommands.Add(drain);
        return root;
    }

    /// <summary>Parses and runs; returns the process exit code (<see cref="ServerExitCode"/>).</summary>
    public static async Task<int> InvokeAsync(string[] args)
    {
        var parse = Build().Parse(args);
        var errors = UsageErrors(parse);
        if (errors.Count > 0)
        {
            foreach (var e in errors) await Console.Error.WriteLineAsync($"{Program}: {e}").ConfigureAwait(false);
            return (int)ServerExitCode.Usage;
        }
        // The hosts handle SIGTERM/Ctrl-C themselves (checkpoint and release every run); no forced exit after two seconds.
        return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false })
            .ConfigureAwait(false);
    }

    /// <summary>
    /// Parse errors, plus unknown arguments anywhere but at the root: only the worker takes arguments it does not know
    /// (the Functions host's), so a mistyped drain option cannot start a drain that never exits.
    /// </summary>
    public static IReadOnlyList<string> UsageErrors(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var errors = parse.Errors.Select(e => e.Message).ToList();
        if (parse.CommandResult.Command != parse.RootCommandResult.Command && parse.UnmatchedTokens.Count > 0)
        {
            errors.Add($"unknown argument(s) for '{parse.CommandResult.Command.Name}': {string.Join(' ', parse.UnmatchedTokens)} (see --help)");
        }
        return errors;
    }

    private static async Task<int> RunAsync(Func<Task> host)
    {
        try
        {
            await host().ConfigureAwait(false);
            return (int)ServerExitCode.Ok;
        }
        catch (OptionsValidationException e)
        {
            foreach (var failure in e.Failures) await Console.Error.WriteLineAsync($"{Program}: {failure}").ConfigureAwait(false);
            return (int)ServerExitCode.Usage;
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal))
        {
            // A setting that is not a number where one is expected: the binder names the key.
            await Console.Error.WriteLineAsync($"{Program}: {e.Message} (app settings use '__' for ':')").ConfigureAwait(false);
            return (int)ServerExitCode.Usage;
        }
        catch (StorageSettingsException e)
        {
            // No storage configured, or a connection string that names no account: one line naming the setting.
            await Console.Error.WriteLineAsync($"{Program}: {e.Message}").ConfigureAwait(false);
            return (int)ServerExitCode.Usage;
        }
#pragma warning disable CA1031 // The last resort: one line and exit 1, never an unhandled exception's stack trace (exit 134).
        catch (Exception e) when (e is not OperationCanceledException)
#pragma warning restore CA1031
        {
            await Console.Error.WriteLineAsync($"{Program}: failed: {e.GetType().Name}: {e.Message.Split('\n')[0]}").ConfigureAwait(false);
            return (int)ServerExitCode.Failure;
        }
    }
}
