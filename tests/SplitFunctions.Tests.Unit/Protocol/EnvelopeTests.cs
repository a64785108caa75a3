using System.Security.Cryptography;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Tests.Protocol;

public sealed class EnvelopeTests
{
    private static readonly byte[] Key = RandomNumberGenerator.GetBytes(FrameCipher.KeySize);
    private static readonly CipherContext Context = new("run-7", "st-marys", 42, PayloadKind.Features, "k20261101-a1b2c3");
    private static readonly byte[] Plaintext = RandomNumberGenerator.GetBytes(1000);

    // Header: 24 fixed bytes, then key id, run and hospital, each with a length byte.
    private static readonly int HeaderLength = 24 + 3 + Context.KeyId.Length + Context.RunId.Length + Context.HospitalId.Length;

    private static ProtocolException Rejected(ReadOnlySpan<byte> blob, CipherContext? expected = null, byte[]? key = null)
    {
        var copy = blob.ToArray();
        var open = () => FrameCipher.Open(key ?? Key, expected ?? Context, copy);
        return open.Should().Throw<ProtocolException>().Which;
    }

    private static byte[] FlipBit(byte[] blob, int index, int bit = 0)
    {
        var copy = (byte[])blob.Clone();
        copy[index] ^= (byte)(1 << bit);
        return copy;
    }

    [Fact]
    public void Sealed_blobs_open_for_their_context_and_use_a_fresh_nonce_each_time()
    {
        var first = FrameCipher.Seal(Key, Context, Plaintext);
        var second = FrameCipher.Seal(Key, Context, Plaintext);
        first.Length.Should().Be(HeaderLength + FrameCipher.NonceSize + Plaintext.Length + FrameCipher.TagSize);
        first.Length.Should().Be(FrameCipher.GetSealedLength(Context, Plaintext.Length));
        first.AsSpan(HeaderLength, FrameCipher.NonceSize).SequenceEqual(second.AsSpan(HeaderLength, FrameCipher.NonceSize)).Should().BeFalse();
        FrameCipher.Open(Key, Context, first).Should().Equal(Plaintext);
        FrameCipher.Open(Key, Context, second).Should().Equal(Plaintext);
        FrameCipher.ReadContext(first).Should().Be(Context);
        FrameCipher.GetPlaintextLength(first).Should().Be(Plaintext.Length);
        FrameCipher.Open(Key, Context, FrameCipher.Seal(Key, Context, ReadOnlySpan<byte>.Empty)).Should().BeEmpty();
    }

    [Fact]
    public void Sealing_and_opening_in_place_match_the_copying_forms()
    {
        var blob = new byte[FrameCipher.GetSealedLength(Context, Plaintext.Length)];
        Plaintext.CopyTo(blob, FrameCipher.GetPlaintextOffset(Context));
        FrameCipher.SealInPlace(Key, Context, blob);
        blob.AsSpan(FrameCipher.GetPlaintextOffset(Context), Plaintext.Length).SequenceEqual(Plaintext).Should().BeFalse("it is encrypted");
        FrameCipher.Open(Key, Context, blob).Should().Equal(Plaintext);
        FrameCipher.OpenInPlace(Key, Context, blob).ToArray().Should().Equal(Plaintext);

        var tampered = FrameCipher.Seal(Key, Context, Plaintext);
        tampered[^1] ^= 1;
        Action open = () => FrameCipher.OpenInPlace(Key, Context, tampered);
        open.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.Tampered);
        tampered.AsSpan(FrameCipher.GetPlaintextOffset(Context), Plaintext.Length).IndexOfAnyExcept((byte)0).Should().Be(-1, "a failed open leaves no "
            + "unauthenticated plaintext");
    }

    [Fact]
    public void A_bit_flipped_in_the_nonce_ciphertext_or_tag_fails_authentication()
    {
        var blob = FrameCipher.Seal(Key, Context, Plaintext);
        var regions = new (string Name, int Start, int Length)[]
        {
            ("nonce", HeaderLength, FrameCipher.NonceSize),
            ("ciphertext", HeaderLength + FrameCipher.NonceSize, Plaintext.Length),
            ("tag", blob.Length - FrameCipher.TagSize, FrameCipher.TagSize),
        };
        foreach (var (name, start, length) in regions)
        {
            foreach (var index in new[] { start, start + length / 2, start + length - 1 })
            {
                var e = Rejected(FlipBit(blob, index, index % 8));
                e.Rejection.Should().Be(ProtocolRejection.Tampered, $"a bit of the {name} at byte {index} was flipped");
                e.Message.Should().Contain("failed authentication").And.Contain("altered");
            }
        }
    }

    [Fact]
    public void A_bit_flipped_in_each_header_field_is_named_precisely()
    {
        var blob = FrameCipher.Seal(Key, Context, Plaintext);
        Rejected(FlipBit(blob, 0)).Rejection.Should().Be(ProtocolRejection.Malformed, "magic");
        Rejected(FlipBit(blob, 4, 1)).Rejection.Should().Be(ProtocolRejection.UnknownVersion, "version");
        Rejected(FlipBit(blob, 5, 1)).Rejection.Should().Be(ProtocolRejection.Replayed, "kind features -> predictions");
        Rejected(FlipBit(blob, 6)).Rejection.Should().Be(ProtocolRejection.Malformed, "reserved");
        Rejected(FlipBit(blob, 8)).Rejection.Should().Be(ProtocolRejection.Replayed, "sequence");
        Rejected(FlipBit(blob, 16)).Rejection.Should().Be(ProtocolRejection.Truncated, "plaintext length grew");
        Rejected(FlipBit(blob, 25)).Rejection.Should().Be(ProtocolRejection.WrongKeyId, "key id");
        Rejected(FlipBit(blob, HeaderLength - 1)).Rejection.Should().Be(ProtocolRejection.Replayed, "hospital");
    }

    [Fact]
    public void Every_single_bit_flip_anywhere_is_refused()
    {
        var blob = FrameCipher.Seal(Key, Context, Plaintext.AsSpan(0, 64));
        for (var bit = 0; bit < blob.Length * 8; bit++)
        {
            var open = () => FrameCipher.Open(Key, Context, FlipBit(blob, bit / 8, bit % 8));
            open.Should().Throw<ProtocolException>($"bit {bit} was flipped");
        }
    }

    [Fact]
    public void A_different_expected_key_id_is_a_wrong_key_id()
    {
        var blob = FrameCipher.Seal(Key, Context, Plaintext);
        var e = Rejected(blob, Context with { KeyId = "k20261201-000000" });
        e.Rejection.Should().Be(ProtocolRejection.WrongKeyId);
        e.Message.Should().Contain("'k20261101-a1b2c3'").And.Contain("'k20261201-000000'");
    }

    [Fact]
    public void The_right_key_id_with_other_key_bytes_fails_authentication()
    {
        var blob = FrameCipher.Seal(Key, Context, Plaintext);
        Rejected(blob, key: RandomNumberGenerator.GetBytes(32)).Rejection.Should().Be(ProtocolRejection.Tampered);
    }

    [Fact]
    public void The_right_blob_under_another_sequence_run_hospital_or_kind_is_a_replay()
    {
        var blob = FrameCipher.Seal(Key, Context, Plaintext);
        foreach (var other in new[]
                 {
                     Context with { Sequence = 43 },
                     Context with { RunId = "run-8" },
                     Context with { HospitalId = "st-johns" },
                     Context with { Kind = PayloadKind.Gradients },
                 })
        {
            var e = Rejected(blob, other);
            e.Rejection.Should().Be(ProtocolRejection.Replayed, other.ToString());
            e.Message.Should().Contain("replayed or moved");
        }
    }

    [Fact]
    public void Rewriting_the_header_to_the_new_name_still_fails_authentication()
    {
        // An attacker who edits the clear header to match the replay target breaks the tag instead.
        var blob = FrameCipher.Seal(Key, Context, Plaintext);
        blob[8] = 43;
        Rejected(blob, Context with { Sequence = 43 }).Rejection.Should().Be(ProtocolRejection.Tampered);
    }

    [Fact]
    public void Truncated_blobs_are_truncated_and_appended_bytes_are_malformed()
    {
        var blob = FrameCipher.Seal(Key, Context, Plaintext);
        foreach (var length in new[] { 0, 3, 10, 24, 30, HeaderLength, HeaderLength + 12, blob.Length - 1 })
        {
            var e = Rejected(blob.AsSpan(0, length));
            e.Rejection.Should().Be(ProtocolRejection.Truncated, $"{length} of {blob.Length} bytes");
            e.Message.Should().Contain("cut short");
        }
        Rejected(blob.Concat(new byte[] { 0 }).ToArray()).Rejection.Should().Be(ProtocolRejection.Malformed);
    }

    [Fact]
    public void Keys_and_contexts_are_checked_when_sealing()
    {
        var shortKey = () => FrameCipher.Seal(new byte[16], Context, Plaintext);
        shortKey.Should().Throw<ArgumentException>().WithMessage("*32 bytes*");
        var badHospital = () => FrameCipher.Seal(Key, Context with { HospitalId = "St Marys" }, Plaintext);
        badHospital.Should().Throw<ArgumentException>().WithMessage("*Hospital id*");
        var badKeyId = () => FrameCipher.Seal(Key, Context with { KeyId = "K.1" }, Plaintext);
        badKeyId.Should().Throw<ArgumentException>().WithMessage("*Key id*");
        var negative = () => FrameCipher.Seal(Key, Context with { Sequence = -1 }, Plaintext);
        negative.Should().Throw<ArgumentOutOfRangeException>();
    }
}
