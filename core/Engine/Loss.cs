namespace SplitFunctions.Core.Engine;

/// <summary>Training losses the engine computes (codes match native/include).</summary>
public enum LossKind
{
    BinaryCrossEntropy = 0,
    BinaryCrossEntropyWithLogits = 1,
    MeanSquaredError = 2,
}

/// <summary>Mean loss over a batch, optionally backpropagated.</summary>
public static class Loss
{
    /// <summary>Returns the loss; a NaN or infinite loss raises <see cref="NonFiniteValueException"/>.</summary>
    public static double Compute(LossKind kind, Tensor prediction, Tensor target, bool backward)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        NativeStatus.Check(NativeMethods.sf_loss((int)kind, prediction.Handle, target.Handle, backward ? 1 : 0, out var value));
        return value;
    }
}
