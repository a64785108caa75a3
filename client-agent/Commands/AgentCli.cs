using System.CommandLine;
using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.Core.CommandLine;
using SplitFunctions.Core.Model;

namespace SplitFunctions.ClientAgent.Commands;

/// <summary>The command line of `splitfn-agent`: commands, shared options, and the one place failures become exit codes.</summary>
public static class AgentCli
{
    internal static readonly Option<string> ConfigOption = new("--config", "-c")
    {
        Description = "Agent configuration file (JSON, see docs/agent.md).",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("SPLITFN_AGENT_CONFIG") is { Length: > 0 } env ? env
            : AgentConfigurationFile.DefaultFileName,
        HelpName = "file",
        Recursive = true,
    };

    internal static readonly Option<string> OutputOption = CreateOutputOption();

    internal static readonly Option<int> LogEveryOption = new("--log-every")
    {
        Description = "With log output: one progress line per this many batches.",
        DefaultValueFactory = _ => 10,
        HelpName = "batches",
        Recursive = true,
    };

    internal static readonly Option<int> ThreadsOption = new("--threads")
    {
        Description = "CPU threads for the client layer (0 = all cores, or SPLITFN_THREADS).",
        DefaultValueFactory = _ => 0,
        Recursive = true,
    };

    public static RootCommand Build(TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "SplitFunctions hospital agent: trains the hospital's client layer of a split-learning run. Raw data, labels of held-out data, " +
            "the client layer and its optimizer stay here; only encrypted layer outputs travel to storage. Exit codes: docs/agent.md.");
        root.Options.Add(ConfigOption);
        root.Options.Add(OutputOption);
        root.Options.Add(LogEveryOption);
        root.Options.Add(ThreadsOption);
        root.Subcommands.Add(InitCommand.Build(output, error));
        root.Subcommands.Add(TrainCommand.Build(output, error));
        root.Subcommands.Add(EvaluateCommand.Build(output, error));
        root.Subcommands.Add(StatusCommand.Build(output, error));
        root.Subcommands.Add(AuditCommand.Build(output, error));
        return root;
    }

    /// <summary>Parses and runs; returns the process exit code (<see cref="ExitCode"/>).</summary>
    public static async Task<int> InvokeAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var root = Build(output, error);
        var parse = root.Parse(args);
        // Signals are the caller's (Program.cs: StopSignals): System.CommandLine's own handler would exit 143 after 2 s,
        // before a step in flight has finished and said so.
        var configuration = new InvocationConfiguration
        {
            Output = output,
            Error = error,
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null
        };
        if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
        {
            foreach (var e in parse.Errors) await error.WriteLineAsync($"splitfn-agent: {e.Message}").ConfigureAwait(false);
            await error.WriteLineAsync("Run `splitfn-agent --help` (or `splitfn-agent <command> --help`) for the options.").ConfigureAwait(false);
            return (int)ExitCode.Usage;
        }
        if (parse.CommandResult.Command == root && !args.Any(a => a is "--help" or "-h" or "-?" or "--version"))
        {
            await error.WriteLineAsync("splitfn-agent: name a command (init, train, evaluate, status, audit); `splitfn-agent --help` lists "
                + "them.").ConfigureAwait(false);
            return (int)ExitCode.Usage;
        }
        return await parse.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    private static readonly CommandFailures Failures = new("splitfn-agent", Describe);

    /// <summary>Runs a command body and turns every failure into its exit code and one message.</summary>
    internal static Task<int> RunAsync(TextWriter error, Func<Task<ExitCode>> body) =>
        Failures.RunAsync(error, async () => (int)await body().ConfigureAwait(false));

    private static CommandFailure Describe(Exception failure) => failure switch
    {
        AgentException e => new((int)e.Code, e.Message, $"exit code {(int)e.Code} ({e.Code})"),
        OperationCanceledException => new((int)ExitCode.Cancelled,
            "stopped on request (Ctrl-C or SIGTERM); local state is consistent and the next start resumes from here (exit code 130)."),
        CorruptStateException e => new((int)ExitCode.StateCorrupt,
            $"the saved client weights do not load ({e.Message}); move the run's state folder aside to restart this hospital's part."),
        EngineException e => new((int)ExitCode.InternalError, $"engine error: {e.Message}"),
        // One line, no stack trace (it reached hospitals' logs and told them nothing they could act on); the type names the bug.
        var e => new((int)ExitCode.InternalError, $"unexpected error (please report it): {e.GetType().Name}: {Printable.Line(e.Message)}",
            $"exit code {(int)ExitCode.InternalError} ({ExitCode.InternalError})"),
    };

    /// <summary>Loads the configuration named by --config and applies --threads.</summary>
    internal static AgentConfiguration LoadConfiguration(ParseResult parse)
    {
        var threads = parse.GetValue(ThreadsOption);
        if (threads > 0) TorchRuntime.Threads = threads;
        return AgentConfigurationFile.Load(parse.GetValue(ConfigOption)!);
    }

    internal static IAgentOutput CreateOutput(ParseResult parse, TextWriter output, TextWriter error) =>
        AgentOutputs.Create(parse.GetValue(OutputOption)!, output, error, parse.GetValue(LogEveryOption));

    private static Option<string> CreateOutputOption()
    {
        var option = new Option<string>("--output")
        {
            Description = "progress: a progress bar; log: one structured line per event; auto: progress on a terminal, log otherwise.",
            DefaultValueFactory = _ => AgentOutputs.Auto,
            Recursive = true,
        };
        option.AcceptOnlyFromAmong(AgentOutputs.Auto, AgentOutputs.Progress, AgentOutputs.Log);
        return option;
    }
}
