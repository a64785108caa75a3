using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using SplitFunctions.Core;
using SplitFunctions.Core.Protocol;

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
        RoundTrip(Tensors(ElementType.Float32, AnyFinite), (sent, got) => BitConverter.SingleToUInt32Bits(got).Should().Be(BitConverter.SingleToUInt32Bits(sent)));

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

    [Property(MaxTest = 200)]
    public Property Any_truncation_of_a_frame_is_rejected_as_truncated() =>
        Prop.ForAll(Tensors(ElementType.Float32, AnyFinite).Where(t => t.Values.Length > 0).SelectMany(t => Gen.Choose(1, 20).Select(cut => (t, cut))).ToArbitrary(), c =>
        {
            var frame = TensorFrame.Encode(c.t);
            var cut = Math.Min(c.cut, frame.Length);
            var decode = () => TensorFrame.Decode(frame.AsSpan(0, frame.Length - cut));
            decode.Should().Throw<ProtocolException>().Which.Rejection.Should().Be(ProtocolRejection.Truncated);
        });
}
