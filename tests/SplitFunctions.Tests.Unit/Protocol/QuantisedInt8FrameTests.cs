using System.Buffers;
using System.Buffers.Binary;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Tests.Protocol;

/// <summary>int8 tensors in frames (version 2): layout, per-sample scales, strict header validation, old frames still read.</summary>
public sealed class QuantisedInt8FrameTests
{
    // Two samples of three values: sample 0 signed, sample 1 non-negative (as after ReLU).
    private static readonly float[] Features = [0.5f, -1.25f, 3f, 0f, 1e-3f, 7.5f];
    private static readonly float[] Labels = [1f, 0f];

    // Frame header 8 + tensor header 12 + shape 2 x 8: the scales start at 36, zero points at 44, data at 46.
    private const int ScalesAt = 36;
    private const int ZeroPointsAt = 44;
    private const int DataAt = 46;

    private static byte[] FeaturesAndLabels() => TensorFrame.Encode(
        new FrameTensor(ElementType.QInt8, [2, 3], Features),
        new FrameTensor(ElementType.Float32, [2, 1], Labels));

    private static ProtocolException Rejected(byte[] frame)
    {
        var decode = () => TensorFrame.Decode(frame);
        return decode.Should().Throw<ProtocolException>().Which;
    }

    [Fact]
    public void An_int8_frame_is_version_2_with_a_scale_and_zero_point_per_sample_before_the_data()
    {
        var frame = FeaturesAndLabels();
        frame[4].Should().Be(2, "int8 tensors need version 2");
        frame[8].Should().Be((byte)ElementType.QInt8);
        frame.Length.Should().Be(DataAt + 6 + (12 + 2 * 8 + 2 * 4), "int8 data is one byte per element after 5 bytes per sample; the labels stay fp32");

        // Sample 0 spans [-1.25, 3]: scale 4.25 / 255, zero point round(-128 + 1.25 / scale) = -53.
        BinaryPrimitives.ReadSingleLittleEndian(frame.AsSpan(ScalesAt)).Should().Be(4.25f / 255);
        ((sbyte)frame[ZeroPointsAt]).Should().Be(-53);
        // Sample 1 is non-negative: its range starts at 0, which maps to -128 and comes back exactly.
        BinaryPrimitives.ReadSingleLittleEndian(frame.AsSpan(ScalesAt + 4)).Should().Be(7.5f / 255);
        ((sbyte)frame[ZeroPointsAt + 1]).Should().Be(-128);
        ((sbyte)frame[DataAt + 3]).Should().Be(-128);
        ((sbyte)frame[DataAt + 5]).Should().Be(127, "the largest value of a sample takes the top code");

        var decoded = TensorFrame.Decode(frame);
        decoded[0].WireType.Should().Be(ElementType.QInt8);
        decoded[0].Values[3].Should().Be(0f, "zero is exact");
        for (var k = 0; k < Features.Length; k++)
        {
            var scale = k < 3 ? 4.25f / 255 : 7.5f / 255;
            decoded[0].Values[k].Should().BeApproximately(Features[k], scale / 2 * 1.0001f, $"element {k} is within half a step of its sample's scale");
        }
        decoded[1].Values.Should().Equal(Labels);
    }

    [Fact]
    public void Frames_without_int8_are_still_written_and_read_as_version_1()
    {
        var frame = TensorFrame.Encode(new FrameTensor(ElementType.Float16, [2, 3], Features), new FrameTensor(ElementType.Float32, [2, 1], Labels));
        frame[4].Should().Be(TensorFrame.FirstVersion, "earlier releases read only version 1, and nothing in this frame needs more");
        TensorFrame.Decode(frame)[1].Values.Should().Equal(Labels);
    }

    [Fact]
    public void Each_sample_has_its_own_scale_so_small_gradients_survive_next_to_large_ones()
    {
        // dL/dA of a well-fitted sample is orders of magnitude smaller than that of a badly fitted one in the same batch.
        float[] gradient = [0.8f, -0.6f, 0.3f, 4e-6f, -3e-6f, 1e-6f];
        var decoded = TensorFrame.Decode(TensorFrame.Encode(new FrameTensor(ElementType.QInt8, [2, 3], gradient)))[0].Values;
        for (var k = 3; k < 6; k++)
        {
            decoded[k].Should().NotBe(0f, "one scale for the tensor (0.8 / 127) would round these to zero");
            decoded[k].Should().BeApproximately(gradient[k], 7e-6f / 255, $"element {k}");
        }
    }

    [Fact]
    public void Buffer_writer_and_span_encodings_are_identical_across_chunk_and_sample_boundaries()
    {
        // 7 samples of 5,000 values: samples straddle the encoder's 16 Ki-element chunks.
        var values = Enumerable.Range(0, 35_000).Select(i => MathF.Sin(i * 0.01f) * (1 + i / 5_000)).ToArray();
        var tensors = new[] { new FrameTensor(ElementType.QInt8, [7, 5_000], values), new FrameTensor(ElementType.Float32, [7, 1], new float[7]) };
        var writer = new ArrayBufferWriter<byte>(16);
        TensorFrame.Encode(tensors, writer).Should().Be(writer.WrittenCount);
        writer.WrittenSpan.ToArray().Should().Equal(TensorFrame.Encode(tensors));
    }

    [Theory]
    [InlineData(float.NaN, ProtocolRejection.NonFinite, "scale NaN")]
    [InlineData(float.PositiveInfinity, ProtocolRejection.NonFinite, "scale +Infinity")]
    [InlineData(0f, ProtocolRejection.Malformed, "scale 0")]
    [InlineData(-0.01f, ProtocolRejection.Malformed, "scale -0.01")]
    [InlineData(1e-40f, ProtocolRejection.Malformed, "scale 1E-40")]
    [InlineData(1e37f, ProtocolRejection.Malformed, "scale 1E+37")]
    public void A_malformed_scale_is_rejected_naming_the_tensor_and_sample(float scale, ProtocolRejection rejection, string named)
    {
        var frame = FeaturesAndLabels();
        BinaryPrimitives.WriteSingleLittleEndian(frame.AsSpan(ScalesAt + 4), scale);
        var e = Rejected(frame);
        e.Rejection.Should().Be(rejection);
        e.Message.Should().Contain("Tensor 0 (int8)").And.Contain(named).And.Contain("slice 1");
    }

    [Fact]
    public void Int8_in_a_version_1_frame_is_rejected()
    {
        var frame = FeaturesAndLabels();
        frame[4] = 1;
        Rejected(frame).Should().Match<ProtocolException>(e => e.Rejection == ProtocolRejection.Malformed && e.Message.Contains("version 2 frames only"));
    }

    [Fact]
    public void Wrong_lengths_are_rejected_as_truncated_or_left_over()
    {
        var frame = FeaturesAndLabels();
        // Cut inside the zero points: the header itself is short.
        Rejected(frame[..(ZeroPointsAt + 1)]).Should()
            .Match<ProtocolException>(e => e.Rejection == ProtocolRejection.Truncated && e.Message.Contains("scales and zero points"));
        // Cut inside the int8 data.
        Rejected(frame[..(DataAt + 2)]).Rejection.Should().Be(ProtocolRejection.Truncated);
        // One byte too many.
        Rejected([.. frame, 0]).Rejection.Should().Be(ProtocolRejection.ShapeMismatch);
    }

    [Fact]
    public void An_empty_int8_tensor_carries_no_parameters_whatever_its_first_dimension()
    {
        var frame = TensorFrame.Encode(new FrameTensor(ElementType.QInt8, [1_000_000, 0], ReadOnlyMemory<float>.Empty));
        frame.Length.Should().Be(8 + 12 + 16);
        TensorFrame.Decode(frame)[0].Values.Should().BeEmpty();
        TensorFrame.Decode(TensorFrame.Encode(new FrameTensor(ElementType.QInt8, [], new[] { -2.5f })))[0].Values[0].Should()
            .BeApproximately(-2.5f, 2.5f / 255 / 2);
    }

    [Fact]
    public void Nothing_non_finite_or_beyond_int8_scaling_reaches_the_wire()
    {
        var nan = () => TensorFrame.Encode(new FrameTensor(ElementType.QInt8, [2, 2], new[] { 1f, 2f, float.NaN, 0f }));
        nan.Should().Throw<ProtocolException>().Where(e => e.Rejection == ProtocolRejection.NonFinite && e.Message.Contains("element 2"));
        var wide = () => TensorFrame.Encode(new FrameTensor(ElementType.QInt8, [1, 2], new[] { -3e38f, 3e38f }));
        wide.Should().Throw<ProtocolException>().Where(e => e.Rejection == ProtocolRejection.NonFinite && e.Message.Contains("send fp32"));
    }

    [Fact]
    public void Every_code_is_the_fp32_formulas_whether_or_not_the_cpu_has_vector_instructions()
    {
        // The encoder quantises 32 values at a time where the CPU allows and one at a time otherwise; the codes must
        // not depend on which ran (temporal mode's weights are compared bit for bit across machines). Slices of 1,003
        // values leave a tail after the vector rounds, and half the values sit exactly half a step between two codes.
        const int Slices = 3, Length = 1003;
        var random = new Random(20);
        var values = new float[Slices * Length];
        for (var k = 0; k < values.Length; k++)
        {
            var step = (k / Length + 1) * 0.01f;
            values[k] = k % 2 == 0 ? (random.Next(-100, 150) + 0.5f) * step : (float)(random.NextDouble() * 2.5 - 1) * (k / Length + 1);
        }
        var frame = TensorFrame.Encode(new FrameTensor(ElementType.QInt8, [Slices, Length], values));

        // Frame header 8 + tensor header 12 + shape 2 x 8, then 3 scales and 3 zero points, then one byte per value.
        const int scalesAt = 36, zeroPointsAt = scalesAt + 4 * Slices, dataAt = zeroPointsAt + Slices;
        var decoded = TensorFrame.Decode(frame)[0].Values;
        for (var k = 0; k < values.Length; k++)
        {
            var s = k / Length;
            var scale = BinaryPrimitives.ReadSingleLittleEndian(frame.AsSpan(scalesAt + 4 * s));
            float zeroPoint = (sbyte)frame[zeroPointsAt + s];
            var expected = (sbyte)Math.Clamp(MathF.Round(values[k] * (1f / scale) + zeroPoint, MidpointRounding.ToEven), sbyte.MinValue, sbyte.MaxValue);
            ((sbyte)frame[dataAt + k]).Should().Be(expected, $"value {k} ({values[k]:R}) of slice {s}");
            decoded[k].Should().BeApproximately(values[k], scale / 2 * 1.0001f, $"value {k} decodes within half a step");
        }
    }
}
