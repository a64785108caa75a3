using SplitFunctions.Operator;

// splitfn-operator: the consortium operator's tool (docs/operator.md). Exit codes: OperatorExitCode.
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
return await OperatorCli.InvokeAsync(args, Console.Out, Console.Error, cancel.Token).ConfigureAwait(false);
