using SplitFunctions.Core.Keys;

namespace SplitFunctions.Core.Contract;

/// <summary>Why a frame, envelope, key or queue message was refused; callers route on this, people read the message.</summary>
public enum ProtocolRejection
{
    /// <summary>Authentication failed: the bytes were altered after sealing, or the key is not the one used to seal.</summary>
    Tampered,

    /// <summary>The envelope names a key id other than the one expected.</summary>
    WrongKeyId,

    /// <summary>The envelope was sealed for another run, hospital, sequence or kind: replayed or moved.</summary>
    Replayed,

    /// <summary>Fewer bytes than the header promises: an upload or download was cut short.</summary>
    Truncated,

    /// <summary>More elements or bytes than the configured limit.</summary>
    Oversized,

    /// <summary>A tensor holds NaN or infinity (or a value the wire type cannot represent).</summary>
    NonFinite,

    /// <summary>A tensor's shape does not match its element count or the bytes present.</summary>
    ShapeMismatch,

    /// <summary>A version this build does not read.</summary>
    UnknownVersion,

    /// <summary>Not a SplitFunctions frame, envelope or message, or a field breaks its rule.</summary>
    Malformed,

    /// <summary>A queue message larger than the protocol allows, refused before parsing.</summary>
    MessageTooLarge,

    /// <summary>The payload's length or SHA-256 differs from what its queue message announced.</summary>
    DigestMismatch,

    /// <summary>No key with the requested hospital and key id exists.</summary>
    UnknownKey,

    /// <summary>
    /// Finite values beyond what the run allows: past the absolute magnitude bound, a sample's L2 norm past the clip norm's
    /// bound, or far above the run's typical frame. Not what an honest hospital sends.
    /// </summary>
    OutOfBounds,
}

/// <summary>A refused frame, envelope, key or queue message; <see cref="Rejection"/> says why, the message says what to do.</summary>
public sealed class ProtocolException : Exception
{
    public ProtocolException(ProtocolRejection rejection, string message)
        : base(message) => Rejection = rejection;

    public ProtocolException(ProtocolRejection rejection, string message, Exception innerException)
        : base(message, innerException) => Rejection = rejection;

    public ProtocolRejection Rejection { get; }
}
