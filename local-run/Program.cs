using System.CommandLine;
using SplitFunctions.LocalRun;

// splitfn-local: the local multi-hospital demo and the paper's experiments, on one machine.
var root = new RootCommand("SplitFunctions on one machine: a multi-hospital split-learning demo on Azurite, and the paper's experiments.")
{
    DemoCommand.Create(),
    ExperimentsCommand.Create(),
};
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
