using SplitFunctions.Core.Model;

namespace SplitFunctions.Tests;

/// <summary>Networks for the multi-class and multi-label tests.</summary>
internal static class TaskModels
{
    /// <summary>The PneumoniaMNIST network with K logits instead of one probability.</summary>
    public static ModelDefinition Logits(TaskKind task, int outputs) => ModelCatalog.PneumoniaCnn with
    {
        Name = $"pneumonia-cnn-{task.ToString().ToLowerInvariant()}-{outputs}",
        Task = task,
        ServerLayers = [.. ModelCatalog.PneumoniaCnn.ServerLayers.SkipLast(2), new Linear(64, outputs)],
        Loss = task == TaskKind.MultiClass ? LossKind.CrossEntropy : LossKind.BinaryCrossEntropyWithLogits,
    };
}
