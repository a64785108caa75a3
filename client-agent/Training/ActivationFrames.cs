using SplitFunctions.ClientAgent.Wire;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Model;
using TorchSharp;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// What leaves the hospital from a forward pass: the activations clipped per sample (privacy.clipNorm) with the run's Gaussian noise (privacy.noiseSigma),
/// sealed under the sequence number, with the batch's labels only where the mode sends them (vanilla `train`, temporal `chunk`).
/// </summary>
internal static class ActivationFrames
{
    public static FeatureFrame Seal(HospitalRun run, long sequence, torch.Tensor activations, float[]? targets = null)
    {
        var manifest = run.Manifest;
        var values = activations.ToFloats();
        ClientLayer.AddNoise(values, (int)activations.shape[0], manifest.Privacy);
        var features = new FrameTensor(manifest.FeatureType, activations.shape, values);
        return targets is null
            ? run.Frames.SealFeatures(sequence, features)
            : run.Frames.SealFeatures(sequence, features, new FrameTensor(SplitFunctions.Core.Contract.ElementType.Float32,
                [activations.shape[0], targets.Length / activations.shape[0]], targets));
    }
}
