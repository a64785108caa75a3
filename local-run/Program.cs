using System.CommandLine;
using SplitFunctions.LocalRun;
using SplitFunctions.LocalRun.Studies;

// splitfn-local: the local multi-hospital demo and the paper's experiments, on one machine. Exit codes: docs/experiments.md.
// First: a copy started to decode DICOM files in isolation (GDCM may end the process on a damaged file).
if (SplitFunctions.Core.Data.DicomWorker.RunIfRequested(args) is { } workerExit) return workerExit;
var root = new RootCommand("SplitFunctions on one machine: a multi-hospital split-learning demo on Azurite, and the paper's experiments.")
{
    DemoCommand.Create(),
    ExperimentsCommand.Create(),
    PrivacyCommand.Create(),
    LeakageCommand.Create(),
    SplitFunctions.LocalRun.Chaos.ChaosCommand.Create(),
};
var parse = root.Parse(args);
if (parse.Errors.Count > 0 && parse.Action is not System.CommandLine.Help.HelpAction)
{
    foreach (var error in parse.Errors) await Console.Error.WriteLineAsync($"splitfn-local: {error.Message} (exit code {(int)StudyExitCode.Usage}; --help "
        + $"lists the options)").ConfigureAwait(false);
    return (int)StudyExitCode.Usage;
}
return await parse.InvokeAsync().ConfigureAwait(false);
