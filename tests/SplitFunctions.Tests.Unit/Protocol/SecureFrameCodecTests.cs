using System.Security.Cryptography;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Tests.Protocol;

/// <summary>The sealed frame and its seal digest: every way a frame can go wrong is still refused, each with its reason.</summary>
public sealed class SecureFrameCodecTests
{
    private static readonly HospitalKey Key = new("alpha", "k1", RandomNumberGenerator.GetBytes(FrameCipher.KeySize));
    private static readonly CipherContext Context = new("run-1", "alpha", 7, PayloadKind.Features, "k1");
    private static readonly float[] Values = [.. Enumerable.Range(0, 4096).Select(i => i * 0.25f)];
    private static readonly FrameTensor Tensor = new(ElementType.Float32, [64, 64], Values);

    private static ProtocolRejection Rejection(Action open) => open.Should().Throw<ProtocolException>().Which.Rejection;

    [Fact]
    public void A_pooled_seal_opens_to_the_same_tensors_with_the_same_digest_rule()
    {
        using var pooled = SecureFrameCodec.SealPooled(Key, Context, Tensor);
        var bytes = pooled.Blob.ToArray();
        pooled.Sha256.Should().Be(SecureFrameCodec.Digest(bytes)).And.MatchRegex("^[0-9a-f]{64}$");
        SecureFrameCodec.OpenInPlace(Key, Context, bytes, pooled.Length, pooled.Sha256)[0].Values.Should().Equal(Values);
        pooled.Dispose();
        var afterDispose = () => pooled.Blob;
        afterDispose.Should().Throw<ObjectDisposedException>();
    }

    [Fact]
    public void Every_altered_frame_is_refused_with_its_reason()
    {
        var frame = SecureFrameCodec.Seal(Key, Context, Tensor);
        byte[] Copy() => (byte[])frame.Blob.Clone();

        // Overwritten by another sealing of the same frame (a resend): new nonce and tag, so another digest.
        var resealed = SecureFrameCodec.Seal(Key, Context, Tensor);
        Rejection(() => SecureFrameCodec.OpenInPlace(Key, Context, (byte[])resealed.Blob.Clone(), frame.Length, frame.Sha256)).Should()
            .Be(ProtocolRejection.DigestMismatch);

        // One ciphertext bit flipped, header, nonce and tag intact: the digest matches, GCM refuses it.
        var flipped = Copy();
        flipped[flipped.Length / 2] ^= 0x01;
        SecureFrameCodec.Digest(flipped).Should().Be(frame.Sha256, "the digest covers header, nonce and tag; the tag covers the ciphertext");
        Rejection(() => SecureFrameCodec.OpenInPlace(Key, Context, flipped, frame.Length, frame.Sha256)).Should().Be(ProtocolRejection.Tampered);

        // Tag flipped: another digest.
        var tag = Copy();
        tag[^1] ^= 0x80;
        Rejection(() => SecureFrameCodec.OpenInPlace(Key, Context, tag, frame.Length, frame.Sha256)).Should().Be(ProtocolRejection.DigestMismatch);

        // Truncated.
        Rejection(() => SecureFrameCodec.Open(Key, Context, frame.Blob.AsSpan(0, frame.Blob.Length - 1), frame.Length, frame.Sha256)).Should()
            .Be(ProtocolRejection.Truncated);

        // Moved to another sequence (replayed under another name), digest recomputed by the mover.
        Rejection(() => SecureFrameCodec.OpenInPlace(Key, Context with { Sequence = 8 }, Copy(), frame.Length, frame.Sha256)).Should()
            .Be(ProtocolRejection.Replayed);

        // Wrong key under the right id: authentication fails.
        var wrongKey = Key with { Key = RandomNumberGenerator.GetBytes(FrameCipher.KeySize) };
        Rejection(() => SecureFrameCodec.OpenInPlace(wrongKey, Context, Copy(), frame.Length, frame.Sha256)).Should().Be(ProtocolRejection.Tampered);

        // Another key id.
        var otherId = new HospitalKey("alpha", "k2", Key.Key);
        Rejection(() => SecureFrameCodec.OpenInPlace(otherId, Context with { KeyId = "k2" }, Copy(), frame.Length, frame.Sha256)).Should()
            .Be(ProtocolRejection.WrongKeyId);

        SecureFrameCodec.OpenInPlace(Key, Context, Copy(), frame.Length, frame.Sha256)[0].Values.Should().Equal(Values);
    }

    [Fact]
    public void Decoding_into_the_caller_s_arrays_asks_for_them_only_after_the_frame_is_authenticated()
    {
        var frame = SecureFrameCodec.Seal(Key, Context, Tensor);
        var asked = 0;
        var target = new float[Values.Length + 8];
        float[][] Destinations(TensorLayout[] layouts)
        {
            asked++;
            return [target];
        }

        var flipped = (byte[])frame.Blob.Clone();
        flipped[flipped.Length / 2] ^= 0x01;
        Rejection(() => SecureFrameCodec.OpenInPlaceInto(Key, Context, flipped, frame.Length, frame.Sha256, TensorFrame.DefaultMaxElements, Destinations))
            .Should().Be(ProtocolRejection.Tampered);
        var resealed = SecureFrameCodec.Seal(Key, Context, Tensor);
        Rejection(() => SecureFrameCodec.OpenInPlaceInto(Key, Context, (byte[])resealed.Blob.Clone(), frame.Length, frame.Sha256,
            TensorFrame.DefaultMaxElements, Destinations)).Should().Be(ProtocolRejection.DigestMismatch);
        asked.Should().Be(0, "no array is asked for, and nothing decoded, before the digest and the tag pass");

        var opened = (byte[])frame.Blob.Clone();
        var layouts = SecureFrameCodec.OpenInPlaceInto(Key, Context, opened, frame.Length, frame.Sha256, TensorFrame.DefaultMaxElements, Destinations);
        asked.Should().Be(1);
        layouts.Should().ContainSingle().Which.ElementCount.Should().Be(Values.Length);
        target.AsSpan(0, Values.Length).ToArray().Should().Equal(Values);
        opened.AsSpan(FrameCipher.GetPlaintextOffset(Context), Values.Length * 4).IndexOfAnyExcept((byte)0).Should()
            .Be(-1, "the plaintext frame is wiped once decoded");
    }
}
