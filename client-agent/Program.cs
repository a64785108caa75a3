using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.Commands;

// The hospital agent: see docs/agent.md for commands, configuration and exit codes.
// First: a copy of the agent started to decode DICOM files in isolation (GDCM may end the process on a damaged file).
if (SplitFunctions.Core.Data.DicomWorker.RunIfRequested(args) is { } workerExit) return workerExit;
using var stop = new StopSignals();
return await AgentCli.InvokeAsync(args, Console.Out, Console.Error, stop.Token).ConfigureAwait(false);
