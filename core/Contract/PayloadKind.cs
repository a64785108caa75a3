using SplitFunctions.Core.Keys;

namespace SplitFunctions.Core.Contract;

/// <summary>What a sealed payload carries; bound into the envelope so a blob of one kind cannot pass for another.</summary>
public enum PayloadKind : byte
{
    /// <summary>Client-layer activations (and labels when training), agent to function.</summary>
    Features = 1,

    /// <summary>dL/dA for the client backward pass, function to agent.</summary>
    Gradients = 2,

    /// <summary>Model outputs on held-out features, function to agent.</summary>
    Predictions = 3,

    /// <summary>U-shaped mode: the server part's outputs, function to agent.</summary>
    ServerOutputs = 4,

    /// <summary>U-shaped mode: dL/d(server output) computed by the hospital's tail, agent to function.</summary>
    OutputGradients = 5,
}

/// <summary>Which payload kind a message carries, written once (the cipher context and the payload folders use it).</summary>
public static class PayloadKinds
{
    /// <summary>The kind of payload a reply of this kind carries, or null when it carries none (rejected, accepted).</summary>
    public static PayloadKind? For(ReplyKind kind) => kind switch
    {
        ReplyKind.Gradients => PayloadKind.Gradients,
        ReplyKind.Predictions => PayloadKind.Predictions,
        ReplyKind.Outputs => PayloadKind.ServerOutputs,
        _ => null,
    };
}
