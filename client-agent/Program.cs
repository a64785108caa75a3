using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.Commands;

// The hospital agent: see docs/agent.md for commands, configuration and exit codes.
using var stop = new StopSignals();
return await AgentCli.InvokeAsync(args, Console.Out, Console.Error, stop.Token).ConfigureAwait(false);
