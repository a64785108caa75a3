using SplitFunctions.Functions.Hosting;

// The server of SplitFunctions: the Azure Functions isolated worker (what the Functions host starts) or, with the
// `drain` verb, a host that pulls the `features` queue itself. Both run the same server (ServerComposition.AddSplitServer).
return await ServerCommandLine.InvokeAsync(args).ConfigureAwait(false);
