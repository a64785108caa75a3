using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Tests.Protocol;

public sealed class TensorFramePropertyTests
{
    // Any finite fp32, from raw bits: subnormals, -0, the extremes.
    private static readonly Gen<float> AnyFinite =
        Gen.Two(Gen.Choose(0, 0xFFFF)).Select(p => BitConverter.UInt32BitsToSingle(((uint)p.Item1 << 16) | (uint)p.Item2)).Where(float.IsFinite);

    private static readonly Gen<long[]> Shapes =
        Gen.Choose(0, 4).SelectMany(rank => Gen.Choose(0, 7).ArrayOf(rank)).Select(dims => dims.Select(d => (long)d).ToArray());

    private static Gen<FrameTensor> Tensors(ElementType type, Gen<float> values) =>
        Shapes.SelectMany(shape => values.ArrayOf((int)shape.Aggregate(1L, (a, b) => a * b)).Select(v => new FrameTensor(type, shape, v)));

    private static Property RoundTrip(Gen<FrameTensor> tensor, Action<float, float> check) =>
        Prop.ForAll(tensor.ArrayOf().Where(t => t.Length is >= 1 and <= TensorFrame.MaxTensors).ToArbitrary(), tensors =>
        {
            var decoded = TensorFrame.Decode(TensorFrame.Encode(tensors));
            decoded.Should().HaveCount(tensors.Length);
            for (var i = 0; i < tensors.Length; i++)
            {
                decoded[i].WireType.Should().Be(tensors[i].WireType);
                decoded[i].Shape.Should().Equal(tensors[i].Shape);
                var sent = tensors[i].Values.ToArray();
                decoded[i].Values.Should().HaveCount(sent.Length);
                for (var k = 0; k < sent.Length; k++) check(sent[k], decoded[i].Values[k]);
            }
        });

    [Property(MaxTest = 300)]
    public Property Fp32_round_trips_bit_exactly() =>
        RoundTrip(Tensors(ElementType.Float32, AnyFinite), (sent, got) => BitConverter.SingleToUInt32Bits(got).Should()
            .Be(BitConverter.SingleToUInt32Bits(sent)));

    [Property(MaxTest = 300)]
    public Property Fp16_round_trips_within_half_precision() =>
        RoundTrip(Tensors(ElementType.Float16, AnyFinite.Where(v => MathF.Abs(v) <= 65_504f)), (sent, got) =>
        {
            got.Should().Be((float)(Half)sent, "the wire value is the nearest fp16");
            // Relative error 2^-11 for normals; absolute 2^-25 (half the smallest subnormal step) below.
            MathF.Abs(got - sent).Should().BeLessThanOrEqualTo(MathF.Max(MathF.Abs(sent) * MathF.Pow(2, -11), MathF.Pow(2, -25)));
        });

    [Property(MaxTest = 300)]
    public Property Bf16_round_trips_within_bfloat_precision() =>
        RoundTrip(Tensors(ElementType.BFloat16, AnyFinite.Where(v => MathF.Abs(v) <= 3.3e38f)), (sent, got) =>
        {
            got.Should().Be(TensorFrame.FromBFloat16Bits(TensorFrame.ToBFloat16Bits(sent)));
            // 8 significant bits: relative error 2^-9 for normals; absolute 2^-134 for fp32 subnormals.
            MathF.Abs(got - sent).Should().BeLessThanOrEqualTo(MathF.Max(MathF.Abs(sent) * MathF.Pow(2, -8), MathF.Pow(2, -133)));
        });

    [Property(MaxTest = 300)]
    public Property Int8_round_trips_within_half_a_step_of_each_samples_scale() =>
        // Ranges wider than ~1e36 are refused at encoding (tested in QuantisedInt8FrameTests); everything else round trips.
        Prop.ForAll(Tensors(ElementType.QInt8, AnyFinite.Where(v => MathF.Abs(v) <= 1e35f)).ToArbitrary(), tensor =>
        {
            var decoded = TensorFrame.Decode(TensorFrame.Encode(tensor, new FrameTensor(ElementType.Float32, [1], new[] { 1f })));
            decoded[0].WireType.Should().Be(ElementType.QInt8);
            decoded[0].Shape.Should().Equal(tensor.Shape);
            decoded[1].Values.Should().Equal(1f);
            var sent = tensor.Values.ToArray();
            var slices = tensor.Shape.Length == 0 ? 1 : (int)tensor.Shape[0];
            var sliceLength = sent.Length == 0 ? 0 : sent.Length / slices;
            for (var s = 0; s < slices && sliceLength > 0; s++)
            {
                var slice = sent.AsSpan(s * sliceLength, sliceLength);
                double low = 0, high = 0;
                foreach (var v in slice) (low, high) = (Math.Min(low, v), Math.Max(high, v));
                // Independent of the codec: the step is the sample's range (including 0) over 255 levels.
                var step = Math.Max((high - low) / 255, QuantisedInt8.MinScale);
                for (var k = 0; k < sliceLength; k++)
                {
                    var got = decoded[0].Values[s * sliceLength + k];
                    var expected = slice[k];
                    Math.Abs(got - (double)expected).Should().BeLessThanOrEqualTo(step / 2 * (1 + 1e-4) + Math.Abs(expected) * 1e-6,
                        $"sample {s} element {k}: sent {expected:R}, got {got:R}, step {step:R}");
                    if (expected == 0) got.Should().Be(0f, "zero is exact");
                }
            }
        });

    [Property(MaxTest = 200)]
    public Property Any_truncation_of_an_int8_frame_is_rejected_as_truncated() =>
        Prop.ForAll(Tensors(ElementType.QInt8, AnyFinite.Where(v => MathF.Abs(v) <= 1e35f)).Where(t => t.Values.Length > 0)
            .SelectMany(t => Gen.Choose(1, 60).Select(cut => (t, cut))).ToArbitrary(), c =>
        {
            var frame = TensorFrame.Encode(c.t);
            var cut = Math.Min(c.cut, frame.Length);
            var decode = () => TensorFrame.Decode(frame.AsSpan(0, frame.Length - cut));
            decode.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.Truncated);
        });

    [Property(MaxTest = 200)]
    public Property Any_truncation_of_a_frame_is_rejected_as_truncated() =>
        Prop.ForAll(Tensors(ElementType.Float32, AnyFinite).Where(t => t.Values.Length > 0).SelectMany(t => Gen.Choose(1, 20).Select(cut => (t, cut)))
            .ToArbitrary(), c =>
        {
            var frame = TensorFrame.Encode(c.t);
            var cut = Math.Min(c.cut, frame.Length);
            var decode = () => TensorFrame.Decode(frame.AsSpan(0, frame.Length - cut));
            decode.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.Truncated);
        });
}
