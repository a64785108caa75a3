using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Model;

/// <summary>Training losses the engine computes.</summary>
public enum LossKind
{
    BinaryCrossEntropy = 0,
    BinaryCrossEntropyWithLogits = 1,
    MeanSquaredError = 2,
    /// <summary>Softmax cross-entropy on K logits against class indices (a [batch, 1] target).</summary>
    CrossEntropy = 3,
}

/// <summary>Mean loss over a batch, optionally backpropagated.</summary>
public static class Loss
{
    /// <summary>Returns the loss; a NaN or infinite prediction or loss raises <see cref="NonFiniteValueException"/>.</summary>
    public static double Compute(LossKind kind, Tensor prediction, Tensor target, bool backward)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        var classIndices = kind == LossKind.CrossEntropy;
        if (classIndices ? target.shape is not [var rows, 1] || rows != prediction.shape[0] : !prediction.shape.SequenceEqual(target.shape))
            throw new TensorShapeException($"prediction [{TensorData.Format(prediction.shape)}] and target [{TensorData.Format(target.shape)}] differ in "
                + $"shape");
        using var scope = NewDisposeScope();
        // libtorch's BCE refuses NaN inputs with a range error; name the real problem first.
        var bad = prediction.CountNonFinite();
        if (bad > 0) throw new NonFiniteValueException($"loss is NaN: the prediction holds {bad} NaN or infinite values (check the input features and the "
            + $"learning rate)");
        var loss = LibTorchErrors.Guard("loss", () => kind switch
        {
            LossKind.BinaryCrossEntropy => nn.functional.binary_cross_entropy(prediction, target),
            LossKind.BinaryCrossEntropyWithLogits => nn.functional.binary_cross_entropy_with_logits(prediction, target),
            LossKind.MeanSquaredError => nn.functional.mse_loss(prediction, target),
            LossKind.CrossEntropy => nn.functional.cross_entropy(prediction, target.squeeze(1).to_type(ScalarType.Int64)),
            _ => throw new ArgumentException($"unknown loss {kind}"),
        });
        var value = loss.item<float>();
        if (!float.IsFinite(value)) throw new NonFiniteValueException($"loss is {(float.IsNaN(value) ? "NaN" : "infinite")}: check the targets and the "
            + $"learning rate");
        if (backward) loss.backward();
        return value;
    }
}
