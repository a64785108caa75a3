using SplitFunctions.ClientAgent.Commands;

// The hospital agent: see docs/agent.md for commands, configuration and exit codes.
return await AgentCli.InvokeAsync(args, Console.Out, Console.Error).ConfigureAwait(false);
