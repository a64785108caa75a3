using System.Buffers;
using System.Buffers.Binary;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Tests.Protocol;

public sealed class TensorFrameTests
{
    private static readonly float[] Features = [0.5f, -1.25f, 3f, 0f, 1e-3f, -7.5f];
    private static readonly float[] Labels = [1f, 0f];

    private static byte[] FeaturesAndLabels(ElementType type = ElementType.Float32) => TensorFrame.Encode(
        new FrameTensor(type, [2, 3], Features),
        new FrameTensor(ElementType.Float32, [2, 1], Labels));

    private static ProtocolException Rejected(byte[] frame, int maxElements = TensorFrame.DefaultMaxElements)
    {
        var decode = () => TensorFrame.Decode(frame, maxElements);
        return decode.Should().Throw<ProtocolException>().Which;
    }

    [Fact]
    public void Features_and_labels_round_trip_by_position()
    {
        var frame = FeaturesAndLabels();
        frame.Length.Should().Be(TensorFrame.GetEncodedLength([new(ElementType.Float32, [2, 3], Features), new(ElementType.Float32, [2, 1], Labels)]));
        var tensors = TensorFrame.Decode(frame);
        tensors.Should().HaveCount(2);
        tensors[0].Shape.Should().Equal(2, 3);
        tensors[0].Values.Should().Equal(Features);
        tensors[1].Shape.Should().Equal(2, 1);
        tensors[1].Values.Should().Equal(Labels);
    }

    [Fact]
    public void The_header_is_the_documented_little_endian_layout()
    {
        var frame = TensorFrame.Encode(new FrameTensor(ElementType.BFloat16, [3], new float[] { 1f, 2f, -2f }));
        frame[..4].Should().Equal("SFTF"u8.ToArray());
        frame[4].Should().Be(1, "version");
        frame[5].Should().Be(1, "tensor count");
        frame[8].Should().Be((byte)ElementType.BFloat16);
        frame[9].Should().Be(1, "rank");
        BinaryPrimitives.ReadInt64LittleEndian(frame.AsSpan(12)).Should().Be(3, "element count");
        BinaryPrimitives.ReadInt64LittleEndian(frame.AsSpan(20)).Should().Be(3, "shape");
        frame[28..].Should().Equal(0x80, 0x3F, 0x00, 0x40, 0x00, 0xC0);
    }

    [Fact]
    public void Buffer_writer_and_span_encodings_are_identical_across_chunk_boundaries()
    {
        var values = Enumerable.Range(0, 40_000).Select(i => i * 0.25f - 100f).ToArray();
        var tensors = new[] { new FrameTensor(ElementType.Float16, [200, 200], values), new FrameTensor(ElementType.Float32, [4], new float[] { 1, 2, 3, 4 }) };
        var writer = new ArrayBufferWriter<byte>(16);
        TensorFrame.Encode(tensors, writer).Should().Be(writer.WrittenCount);
        writer.WrittenSpan.ToArray().Should().Equal(TensorFrame.Encode(tensors));
    }

    [Fact]
    public void Decoding_into_a_caller_span_uses_the_validated_layout()
    {
        var frame = FeaturesAndLabels(ElementType.Float16);
        var layout = TensorFrame.ReadLayout(frame);
        layout.Select(t => t.WireType).Should().Equal(ElementType.Float16, ElementType.Float32);
        Span<float> features = stackalloc float[6];
        TensorFrame.DecodeTensor(frame, layout[0], 0, features);
        features.ToArray().Should().Equal(Features.Select(v => (float)(Half)v));
    }

    [Fact]
    public void Bf16_rounds_to_nearest_with_ties_to_even()
    {
        TensorFrame.ToBFloat16Bits(1f).Should().Be(0x3F80);
        TensorFrame.ToBFloat16Bits(1f + MathF.Pow(2, -8)).Should().Be(0x3F80, "halfway, and 0x3F80 is even");
        TensorFrame.ToBFloat16Bits(1f + 3 * MathF.Pow(2, -8)).Should().Be(0x3F82, "halfway, and 0x3F82 is even");
        TensorFrame.ToBFloat16Bits(1f + 1.5f * MathF.Pow(2, -8)).Should().Be(0x3F81, "above halfway rounds up");
        TensorFrame.ToBFloat16Bits(-0f).Should().Be(0x8000);
        float.IsNaN(TensorFrame.FromBFloat16Bits(TensorFrame.ToBFloat16Bits(float.NaN))).Should().BeTrue();
    }

    [Theory]
    [InlineData(ElementType.Float32)]
    [InlineData(ElementType.Float16)]
    [InlineData(ElementType.BFloat16)]
    public void NaN_or_infinity_in_the_data_is_rejected_naming_tensor_and_position(ElementType type)
    {
        var frame = TensorFrame.Encode(new FrameTensor(ElementType.Float32, [1], new float[] { 1 }), new FrameTensor(type, [2, 3], Features));
        var layout = TensorFrame.ReadLayout(frame)[1];
        // Overwrite element 4 ([1, 1]) with +Inf in the tensor's own wire encoding.
        var at = layout.DataOffset + 4 * type.SizeOf();
        switch (type)
        {
            case ElementType.Float32: BinaryPrimitives.WriteSingleLittleEndian(frame.AsSpan(at), float.PositiveInfinity); break;
            case ElementType.Float16: BinaryPrimitives.WriteUInt16LittleEndian(frame.AsSpan(at), 0x7C00); break;
            default: BinaryPrimitives.WriteUInt16LittleEndian(frame.AsSpan(at), 0x7F80); break;
        }
        var e = Rejected(frame);
        e.Rejection.Should().Be(ProtocolRejection.NonFinite);
        e.Message.Should().Contain("Tensor 1").And.Contain("+Infinity").And.Contain("element 4").And.Contain("[1, 1]");
    }

    [Fact]
    public void NaN_is_found_by_the_vector_scan_at_any_position()
    {
        var values = new float[1000];
        values[777] = float.NaN;
        values[900] = float.NegativeInfinity;
        TensorFrame.IndexOfNonFinite(values).Should().Be(777);
        var frame = TensorFrame.Encode(new FrameTensor(ElementType.Float32, [1000], new float[1000]));
        BinaryPrimitives.WriteSingleLittleEndian(frame.AsSpan(TensorFrame.ReadLayout(frame)[0].DataOffset + 4 * 777), float.NaN);
        Rejected(frame).Message.Should().Contain("NaN at element 777 (index [777])");
    }

    [Fact]
    public void Non_finite_values_and_fp16_overflow_never_reach_the_wire()
    {
        var nan = () => TensorFrame.Encode(new FrameTensor(ElementType.Float32, [2], new[] { 1f, float.NaN }));
        nan.Should().Throw<ProtocolException>().Where(e => e.Rejection == ProtocolRejection.NonFinite).WithMessage("*element 1*");
        var overflow = () => TensorFrame.Encode(new FrameTensor(ElementType.Float16, [2], new[] { 1f, 70_000f }));
        overflow.Should().Throw<ProtocolException>().Where(e => e.Rejection == ProtocolRejection.NonFinite).WithMessage("*70000*beyond the range of fp16*");
        var bf16Overflow = () => TensorFrame.Encode(new FrameTensor(ElementType.BFloat16, [1], new[] { float.MaxValue }));
        bf16Overflow.Should().Throw<ProtocolException>().Where(e => e.Rejection == ProtocolRejection.NonFinite);
    }

    [Fact]
    public void Declared_count_different_from_the_shape_is_a_shape_mismatch()
    {
        var frame = FeaturesAndLabels();
        BinaryPrimitives.WriteInt64LittleEndian(frame.AsSpan(12), 5);
        var e = Rejected(frame);
        e.Rejection.Should().Be(ProtocolRejection.ShapeMismatch);
        e.Message.Should().Contain("declares 5 elements but its shape [2, 3] holds 6");
    }

    [Fact]
    public void Bytes_left_over_after_the_last_tensor_are_a_shape_mismatch()
    {
        var frame = FeaturesAndLabels().Concat(new byte[4]).ToArray();
        var e = Rejected(frame);
        e.Rejection.Should().Be(ProtocolRejection.ShapeMismatch);
        e.Message.Should().Contain("4 bytes follow the last tensor");
    }

    [Fact]
    public void A_shape_larger_than_the_data_is_truncated()
    {
        var frame = FeaturesAndLabels();
        foreach (var cut in new[] { 1, 4, 8, frame.Length / 2, 3 })
        {
            var e = Rejected(frame[..^cut]);
            e.Rejection.Should().Be(ProtocolRejection.Truncated, $"cut {cut}");
            e.Message.Should().Contain("cut short");
        }
        Rejected(frame[..5]).Rejection.Should().Be(ProtocolRejection.Truncated);
    }

    [Fact]
    public void An_oversized_frame_is_refused_before_anything_is_allocated()
    {
        Rejected(FeaturesAndLabels(), maxElements: 7).Rejection.Should().Be(ProtocolRejection.Oversized);

        // A 40-byte frame claiming 2^40 elements.
        var frame = TensorFrame.Encode(new FrameTensor(ElementType.Float32, [1, 1], new float[] { 1 }));
        BinaryPrimitives.WriteInt64LittleEndian(frame.AsSpan(12), 1L << 40);
        BinaryPrimitives.WriteInt64LittleEndian(frame.AsSpan(20), 1L << 20);
        BinaryPrimitives.WriteInt64LittleEndian(frame.AsSpan(28), 1L << 20);
        var e = Rejected(frame);
        e.Rejection.Should().Be(ProtocolRejection.Oversized);
        e.Message.Should().Contain("smaller chunks");

        var encode = () => TensorFrame.GetEncodedLength([new FrameTensor(ElementType.Float32, [1L << 20, 1L << 20], ReadOnlyMemory<float>.Empty)]);
        encode.Should().Throw<ProtocolException>().Where(x => x.Rejection == ProtocolRejection.Oversized);
    }

    [Fact]
    public void Unknown_version_bad_magic_rank_and_dtype_are_named()
    {
        var frame = FeaturesAndLabels();
        var v3 = (byte[])frame.Clone();
        v3[4] = 3;
        Rejected(v3).Should()
            .Match<ProtocolException>(e => e.Rejection == ProtocolRejection.UnknownVersion && e.Message.Contains("version 3")
            && e.Message.Contains("versions 1-2"));

        var magic = (byte[])frame.Clone();
        magic[0] ^= 1;
        Rejected(magic).Rejection.Should().Be(ProtocolRejection.Malformed);

        var rank = (byte[])frame.Clone();
        rank[9] = 9;
        Rejected(rank).Should().Match<ProtocolException>(e => e.Rejection == ProtocolRejection.Malformed && e.Message.Contains("rank 9"));

        var dtype = (byte[])frame.Clone();
        dtype[8] = (byte)ElementType.Int64;
        Rejected(dtype).Should().Match<ProtocolException>(e => e.Rejection == ProtocolRejection.Malformed && e.Message.Contains("fp32 (0), fp16 (1), bf16 (2) "
            + "and int8 (5)"));

        var negative = (byte[])frame.Clone();
        BinaryPrimitives.WriteInt64LittleEndian(negative.AsSpan(20), -2);
        Rejected(negative).Rejection.Should().Be(ProtocolRejection.ShapeMismatch);
    }

    [Fact]
    public void Encoding_checks_its_arguments()
    {
        var mismatch = () => TensorFrame.Encode(new FrameTensor(ElementType.Float32, [2, 2], new float[3]));
        mismatch.Should().Throw<ArgumentException>().WithMessage("*shape [2, 2] (4 elements) but 3 values*");
        var none = () => TensorFrame.Encode();
        none.Should().Throw<ArgumentException>();
        var int64 = () => TensorFrame.Encode(new FrameTensor(ElementType.Int64, [1], new float[1]));
        int64.Should().Throw<ArgumentException>().WithMessage("*not a wire type*");
        var rank9 = () => TensorFrame.Encode(new FrameTensor(ElementType.Float32, [1, 1, 1, 1, 1, 1, 1, 1, 1], new float[1]));
        rank9.Should().Throw<ArgumentException>().WithMessage("*rank 9*");
    }

    [Fact]
    public void Scalars_and_empty_tensors_are_valid()
    {
        var tensors = TensorFrame.Decode(TensorFrame.Encode(new FrameTensor(ElementType.Float32, [], new[] { 42f }),
            new FrameTensor(ElementType.Float16, [0, 5], ReadOnlyMemory<float>.Empty)));
        tensors[0].Shape.Should().BeEmpty();
        tensors[0].Values.Should().Equal(42f);
        tensors[1].Values.Should().BeEmpty();
    }
    [Fact]
    public void A_shape_whose_element_count_overflows_after_a_small_tensor_is_rejected_as_oversized_not_wrapped()
    {
        // Tensor 0 holds one value; tensor 1 declares [2^62, 2], whose product saturates at long.MaxValue. Summed unchecked,
        // 1 + long.MaxValue wrapped negative, passed the element limit and became a negative element count.
        var frame = new List<byte>();
        frame.AddRange("SFTF"u8.ToArray());
        frame.AddRange(new byte[] { 1, 2, 0, 0 });
        void Tensor(long declared, params long[] shape)
        {
            frame.AddRange(new byte[] { (byte)ElementType.Float32, (byte)shape.Length, 0, 0 });
            frame.AddRange(BitConverter.GetBytes(declared));
            foreach (var d in shape) frame.AddRange(BitConverter.GetBytes(d));
        }
        Tensor(1, 1);
        frame.AddRange(BitConverter.GetBytes(1f));
        Tensor(long.MaxValue, 1L << 62, 2);
        frame.AddRange(new byte[64]);

        var e = Rejected([.. frame]);
        e.Rejection.Should().Be(ProtocolRejection.Oversized, e.Message);
        e.Message.Should().Contain("more than");
    }
}
