using SplitFunctions.Functions.Hosting;

namespace SplitFunctions.Tests.Function;

internal static class ProcessorExtensions
{
    /// <summary>Delivers a message again while its outcome is Continue (a temporal run trains one epoch per delivery), as both hosts do.</summary>
    public static async Task<MessageOutcome> ProcessToEndAsync(this IMessageProcessor processor, string text, long dequeueCount, CancellationToken ct)
    {
        while (true)
        {
            var outcome = await processor.ProcessAsync(text, dequeueCount, ct).ConfigureAwait(false);
            if (outcome.Kind != OutcomeKind.Continue) return outcome;
            dequeueCount = 1; // a fresh copy
        }
    }
}
