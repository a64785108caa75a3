using System.CommandLine;
using System.Net.Sockets;
using Azure;
using Azure.Identity;
using Azure.Security.KeyVault.Secrets;
using SplitFunctions.Core.CommandLine;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;
using SplitFunctions.Operator.Commands;

namespace SplitFunctions.Operator;

/// <summary>The command line of `splitfn-operator`: commands, the settings every command shares, and the one place failures become exit codes.</summary>
public static class OperatorCli
{
    internal static readonly Option<string?> ConnectionStringOption = new("--connection-string")
    {
        Description = $"Storage connection string (default: {FunctionSettings.Storage}; 'UseDevelopmentStorage=true' for Azurite on its default ports).",
        Recursive = true,
    };

    internal static readonly Option<string?> AccountNameOption = new("--account-name")
    {
        Description = $"Identity-based storage: the account, signed in with Microsoft Entra ID (Azure CLI, environment, managed identity) (default: "
            + $"{FunctionSettings.StorageAccountName}).",
        Recursive = true,
    };

    internal static readonly Option<string?> KeyDirectoryOption = new("--key-dir")
    {
        Description = $"The function's local hospital-key folder (development; default: {FunctionSettings.KeyDirectory}).",
        HelpName = "folder",
        Recursive = true,
    };

    internal static readonly Option<string?> KeyVaultOption = new("--key-vault-uri")
    {
        Description = $"Key Vault holding the hospital keys (Azure; default: {FunctionSettings.KeyVaultUri}).",
        HelpName = "uri",
        Recursive = true,
    };

    public static RootCommand Build(TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "SplitFunctions consortium operator: onboard hospitals (storage, keys, credentials), create runs, watch them, handle poisoned messages. " +
            "Settings are the function's (AzureWebJobsStorage..., SplitFunctions__KeyDirectory / SplitFunctions__KeyVaultUri) or the options below. Exit "
                + "codes: docs/operator.md.");
        root.Options.Add(ConnectionStringOption);
        root.Options.Add(AccountNameOption);
        root.Options.Add(KeyDirectoryOption);
        root.Options.Add(KeyVaultOption);
        root.Subcommands.Add(HospitalCommands.Build(output, error));
        root.Subcommands.Add(RunCommands.Build(output, error));
        root.Subcommands.Add(PoisonCommands.Build(output, error));
        return root;
    }

    /// <summary>Parses and runs; returns the process exit code (<see cref="OperatorExitCode"/>).</summary>
    public static async Task<int> InvokeAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(error);
        var root = Build(output, error);
        var parse = root.Parse(args);
        var configuration = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
        {
            foreach (var e in parse.Errors) await error.WriteLineAsync($"splitfn-operator: {OneLine(e.Message)} (exit code {(int)OperatorExitCode.Usage}; "
                + $"--help lists the options)").ConfigureAwait(false);
            return (int)OperatorExitCode.Usage;
        }
        if (parse.CommandResult.Command is { } command && command.Subcommands.Count > 0 && command.Action is null
            && !args.Any(a => a is "--help" or "-h" or "-?" or "--version"))
        {
            await error.WriteLineAsync($"splitfn-operator: name a command ({string.Join(", ", command.Subcommands.Select(c => c.Name))}); add --help to see "
                + $"them (exit code {(int)OperatorExitCode.Usage})").ConfigureAwait(false);
            return (int)OperatorExitCode.Usage;
        }
        return await parse.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    private static readonly CommandFailures Failures = new("splitfn-operator", Describe);

    /// <summary>Runs a command body; every failure becomes one line and its exit code.</summary>
    internal static Task<int> RunAsync(TextWriter error, Func<Task> body) => Failures.RunAsync(error, async () =>
    {
        await body().ConfigureAwait(false);
        return (int)OperatorExitCode.Ok;
    });

    private static CommandFailure Describe(Exception failure)
    {
        var (code, message) = failure switch
        {
            OperatorException e => (e.Code, e.Message),
            ConsortiumException e => (e.Error switch
            {
                ConsortiumError.NotFound => OperatorExitCode.NotFound,
                ConsortiumError.AlreadyExists => OperatorExitCode.AlreadyExists,
                ConsortiumError.Revoked => OperatorExitCode.Revoked,
                _ => OperatorExitCode.Invalid,
            }, e.Message),
            StorageSettingsException e => (OperatorExitCode.Settings, e.Message),
            KeyStoreException e => (OperatorExitCode.Settings, "key store: " + e.Message),
            AuthenticationFailedException e => (OperatorExitCode.AccessDenied, $"Microsoft Entra sign-in failed ({FirstLine(e.Message)}): run `az login`, or "
                + $"set the environment credentials"),
            RequestFailedException { Status: 401 or 403 } e => (OperatorExitCode.AccessDenied,
                $"storage or Key Vault refused the operator's credentials ({e.Status} {e.ErrorCode}): check the account key, or the roles docs/operator.md "
                    + $"lists for the operator"),
            var e when IsUnreachable(e) => (OperatorExitCode.Unreachable,
                $"storage or Key Vault unreachable ({FirstLine((e is AggregateException a ? a.InnerExceptions[^1] : e).Message)}): check the endpoint in the "
                    + $"settings and that the account (or Azurite) is running"),
            RequestFailedException e => (OperatorExitCode.InternalError, $"storage request failed ({e.Status} {e.ErrorCode}): {FirstLine(e.Message)}"),
            OperationCanceledException => (OperatorExitCode.Cancelled, "stopped (Ctrl-C)"),
            IOException or UnauthorizedAccessException => (OperatorExitCode.Settings, $"file error: {failure.Message}"),
            var e => (OperatorExitCode.InternalError, $"unexpected error (please report it): {e.GetType().Name}: {FirstLine(e.Message)}"),
        };
        return new((int)code, $"{message} (exit code {(int)code})");
    }

    /// <summary>The storage connection: --connection-string, --account-name, else the function's settings from the environment.</summary>
    internal static StorageConnection Storage(ParseResult parse)
    {
        if (parse.GetValue(ConnectionStringOption) is { Length: > 0 } connectionString) return StorageConnection.Parse(connectionString, "--connection-string");
        if (parse.GetValue(AccountNameOption) is { Length: > 0 } account) return StorageConnection.FromTokenCredential(account, new DefaultAzureCredential());
        var settings = FunctionSettings.All.ToDictionary(name => name, Environment.GetEnvironmentVariable);
        return StorageConnection.FromSettings(settings);
    }

    /// <summary>Where the function reads hospital keys: --key-vault-uri / --key-dir, else the function's settings from the environment.</summary>
    internal static IFunctionKeys FunctionKeys(ParseResult parse)
    {
        var vault = parse.GetValue(KeyVaultOption) ?? Environment.GetEnvironmentVariable(FunctionSettings.KeyVaultUri);
        var folder = parse.GetValue(KeyDirectoryOption) ?? Environment.GetEnvironmentVariable(FunctionSettings.KeyDirectory);
        if (!string.IsNullOrWhiteSpace(vault))
        {
            if (!Uri.TryCreate(vault, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps)
                throw new OperatorException(OperatorExitCode.Settings, $"Key Vault URI '{vault}' is not an https URL such as https://<vault>.vault.azure.net/");
            return new KeyVaultFunctionKeys(new KeyVaultKeyProvider(new SecretClient(uri, new DefaultAzureCredential())), uri);
        }
        if (!string.IsNullOrWhiteSpace(folder)) return new LocalFunctionKeys(new LocalKeyStore(Path.GetFullPath(folder)));
        throw new OperatorException(OperatorExitCode.Settings,
            $"no key store given: pass --key-dir <the function's {FunctionSettings.KeyDirectory} folder> (Azurite) or --key-vault-uri (Azure), or set "
                + $"{FunctionSettings.KeyDirectory} / {FunctionSettings.KeyVaultUri}");
    }

    // The SDK's retries end in an AggregateException of the attempts' connection failures.
    private static bool IsUnreachable(Exception e) => e switch
    {
        AggregateException a => a.InnerExceptions.Count > 0 && a.InnerExceptions.All(IsUnreachable),
        RequestFailedException r => r.Status == 0 || r.InnerException is HttpRequestException or SocketException,
        HttpRequestException or SocketException => true,
        _ => false,
    };

    private static string OneLine(string text) => string.Join(' ', text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();
}
