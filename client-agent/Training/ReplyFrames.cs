using SplitFunctions.ClientAgent.Wire;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>Checks a reply's kind and opens its frame; anything unexpected is an <see cref="ExitCode.Protocol"/> error and nothing is applied.</summary>
internal static class ReplyFrames
{
    public static async Task<DecodedTensor[]> ReadAsync(HospitalRun run, ReceivedReply reply, ReplyKind expectedKind, CancellationToken cancellationToken)
    {
        if (reply.Reply.Kind != expectedKind)
        {
            throw new AgentException(ExitCode.Protocol,
                $"the function answered message #{reply.Reply.Sequence} with '{reply.Reply.Kind}', expected '{expectedKind}': the agent and the function "
                    + $"disagree about the run's mode. Check both versions and the manifest.");
        }
        try
        {
            return await run.Frames.ReadReplyFrameAsync(reply.Reply, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ProtocolException or ArgumentException)
        {
            throw new AgentException(ExitCode.Protocol,
                $"reply #{reply.Reply.Sequence} failed verification ({e.Message}); nothing was applied. If the key was rotated, check key.keyId; otherwise "
                    + $"report this to the operator.", e);
        }
    }
}
