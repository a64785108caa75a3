using System.Globalization;
using System.Text.Json.Serialization;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Core.Contract;

/// <summary>
/// Which server model answered an `evaluate` (predictions, U-shaped server outputs), or how far its training is (a
/// `notready` reply): the run's mode, the journal step and temporal epoch the weights correspond to, the newest checkpoint
/// written when they were used, and whether training is over (the model will not change again). Two answers come from
/// the same weights exactly when <see cref="SameModel"/> holds; the checkpoint number is informational (an idle release
/// may write the same weights under a new number).
/// </summary>
public sealed record ModelVersion
{
    [JsonPropertyName("mode"), JsonConverter(typeof(StrictEnumConverter<TrainingMode>)), JsonPropertyOrder(0)]
    public required TrainingMode Mode { get; init; }

    /// <summary>Journal entries applied when the model answered: the weights are the checkpoint's plus the journal up to this step.</summary>
    [JsonPropertyName("step"), JsonPropertyOrder(1)]
    public required long Step { get; init; }

    /// <summary>Temporal mode: server epochs completed over the union of the hospitals' features; absent in the other modes.</summary>
    [JsonPropertyName("epoch"), JsonPropertyOrder(2)]
    public int? Epoch { get; init; }

    /// <summary>Temporal mode: the epochs the run trains (the manifest's); absent in the other modes.</summary>
    [JsonPropertyName("epochs"), JsonPropertyOrder(3)]
    public int? Epochs { get; init; }

    /// <summary>Number of the newest checkpoint (`runs/&lt;run&gt;/checkpoints/&lt;n&gt;/`) when the model answered; 0 before the first.</summary>
    [JsonPropertyName("checkpoint"), JsonPropertyOrder(4)]
    public required long Checkpoint { get; init; }

    /// <summary>Training is over: temporal, every epoch trained. Vanilla and U-shaped models are the current ones (false).</summary>
    [JsonPropertyName("final"), JsonPropertyOrder(5)]
    public required bool Final { get; init; }

    /// <summary>True when both name the same weights: same mode, journal step and temporal epoch.</summary>
    public bool SameModel(ModelVersion other) => other is not null && other.Mode == Mode && other.Step == Step && other.Epoch == Epoch;

    /// <summary>The field rules; the codec calls it on every reply that carries a model version.</summary>
    public string? Problem()
    {
        if (Step < 0 || Checkpoint < 0) return "model.step and model.checkpoint must be 0 or more.";
        if (Mode == TrainingMode.Temporal)
        {
            if (Epoch is not { } epoch || Epochs is not { } epochs || epochs < 1 || epoch < 0 || epoch > epochs)
                return "a temporal model names its epoch and epochs (0 <= epoch <= epochs, epochs >= 1).";
            if (Final != (epoch == epochs)) return "a temporal model is final exactly when every epoch is trained (epoch = epochs).";
        }
        else if (Epoch is not null || Epochs is not null) return "model.epoch and model.epochs belong only to temporal models.";
        return null;
    }

    /// <summary>One line for the console, the log and the reports.</summary>
    public string Describe() => Mode == TrainingMode.Temporal
        ? string.Create(CultureInfo.InvariantCulture,
            $"temporal model after epoch {Epoch} of {Epochs} (journal step {Step}, checkpoint {Checkpoint}){(Final ? ", final" : ", training not finished")}")
        : string.Create(CultureInfo.InvariantCulture,
            $"{Mode.ToString().ToLowerInvariant()} model at journal step {Step} (checkpoint {Checkpoint}), the current one{(Final ? ", final" : "")}");
}
