using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Contract;

/// <summary>What a sealed payload is for: bound into the envelope, so the same bytes fail anywhere else.</summary>
public sealed record CipherContext(string RunId, string HospitalId, long Sequence, PayloadKind Kind, string KeyId)
{
    /// <summary>Throws <see cref="ArgumentException"/> naming the field that breaks its rule.</summary>
    public CipherContext Validate()
    {
        StorageNames.ValidateRunId(RunId);
        StorageNames.ValidateHospitalId(HospitalId);
        ArgumentOutOfRangeException.ThrowIfNegative(Sequence);
        if (!Enum.IsDefined(Kind)) throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "unknown payload kind");
        HospitalKey.ValidateKeyId(KeyId);
        return this;
    }

    /// <summary>The context a frame message's blob must have been sealed for.</summary>
    public static CipherContext For(FrameMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return new(message.RunId, message.HospitalId, message.Sequence, message.Kind == FrameKind.Backward ? PayloadKind.OutputGradients : PayloadKind.Features,
            message.KeyId ?? throw new ArgumentException($"A '{message.Kind}' message has no payload to open.", nameof(message)));
    }

    /// <summary>The context a reply message's blob must have been sealed for.</summary>
    public static CipherContext For(ReplyMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var kind = PayloadKinds.For(message.Kind) ?? throw new ArgumentException($"A '{message.Kind}' reply has no payload to open.", nameof(message));
        return new(message.RunId, message.HospitalId, message.Sequence, kind, message.KeyId!);
    }

    public override string ToString() => $"run '{RunId}', hospital '{HospitalId}', sequence {Sequence}, {Kind.ToString().ToLowerInvariant()}, key id '{KeyId}'";
}
