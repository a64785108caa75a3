using System.Globalization;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Contract;

/// <summary>Names of the containers, queues and blobs the run uses (docs/architecture.md, "Storage layout").</summary>
public static class StorageNames
{
    /// <summary>Container with manifests, run state and checkpoints.</summary>
    public const string RunsContainer = "runs";

    /// <summary>Queue the agents enqueue frame messages on.</summary>
    public const string FeaturesQueue = "features";

    /// <summary>Queue of poisoned messages, each exactly as the hospital sent it (the Functions host's `&lt;queue&gt;-poison`).</summary>
    public const string FeaturesPoisonQueue = "features-poison";

    /// <summary>Queue of JSON records saying why each message was poisoned (docs/architecture.md, "Poison messages").</summary>
    public const string FeaturesRejectionsQueue = "features-rejections";

    /// <summary>Folder of a hospital container holding sealed features (agent to function).</summary>
    public const string FeaturesFolder = "features";

    /// <summary>Folder of a hospital container holding sealed gradients (function to agent).</summary>
    public const string GradientsFolder = "gradients";

    /// <summary>Folder of a hospital container holding sealed predictions (function to agent).</summary>
    public const string PredictionsFolder = "predictions";

    /// <summary>Folder of a hospital container holding sealed server outputs (U-shaped mode, function to agent).</summary>
    public const string OutputsFolder = "outputs";

    /// <summary>
    /// The folder of a hospital container that a sealed payload of this kind is written under. U-shaped output gradients
    /// travel, like features, from the hospital: they share its folder (their sequence numbers differ).
    /// </summary>
    public static string PayloadFolder(PayloadKind kind) => kind switch
    {
        PayloadKind.Features => FeaturesFolder,
        PayloadKind.Gradients => GradientsFolder,
        PayloadKind.Predictions => PredictionsFolder,
        PayloadKind.ServerOutputs => OutputsFolder,
        PayloadKind.OutputGradients => FeaturesFolder,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>The folder a reply of this kind names its blob under.</summary>
    public static string ReplyFolder(ReplyKind kind) =>
        PayloadFolder(PayloadKinds.For(kind) ?? throw new ArgumentOutOfRangeException(nameof(kind), kind, "this reply kind carries no blob"));

    /// <summary>Longest hospital id: keeps `replies-&lt;hospital&gt;` within the 63-character queue name limit.</summary>
    public const int MaxHospitalIdLength = 40;

    /// <summary>Container that holds one hospital's frames: `h-&lt;hospital&gt;`.</summary>
    public static string HospitalContainer(string hospitalId) => "h-" + ValidateHospitalId(hospitalId);

    /// <summary>Queue the function answers one hospital on: `replies-&lt;hospital&gt;`.</summary>
    public static string RepliesQueue(string hospitalId) => "replies-" + ValidateHospitalId(hospitalId);

    /// <summary>Blob name of one frame inside the hospital's container, e.g. `features/run-1/000000000042.sfe`.</summary>
    public static string FrameBlob(string folder, string runId, long sequence)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        return string.Create(CultureInfo.InvariantCulture, $"{folder}/{ValidateRunId(runId)}/{sequence:D12}.sfe");
    }

    /// <summary>True when <paramref name="hospitalId"/> is 1-40 lowercase letters, digits and single inner hyphens.</summary>
    public static bool IsValidHospitalId(string? hospitalId) => IsDnsLabel(hospitalId, MaxHospitalIdLength);

    /// <summary>Returns the id, or throws with the rule it broke.</summary>
    public static string ValidateHospitalId(string? hospitalId)
    {
        if (!IsValidHospitalId(hospitalId))
        {
            throw new ArgumentException(
                $"Hospital id '{hospitalId}' is invalid: use 1-{MaxHospitalIdLength} lowercase letters, digits and hyphens, " +
                "starting and ending with a letter or digit, without two hyphens in a row (it becomes part of container and queue names).",
                nameof(hospitalId));
        }
        return hospitalId!;
    }

    /// <summary>True when <paramref name="runId"/> is 1-63 lowercase letters, digits and single inner hyphens.</summary>
    public static bool IsValidRunId(string? runId) => IsDnsLabel(runId, 63);

    /// <summary>Returns the id, or throws with the rule it broke.</summary>
    public static string ValidateRunId(string? runId)
    {
        if (!IsValidRunId(runId))
        {
            throw new ArgumentException(
                $"Run id '{runId}' is invalid: use 1-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit, without two "
                    + $"hyphens in a row.",
                nameof(runId));
        }
        return runId!;
    }

    private static bool IsDnsLabel(string? value, int maxLength)
    {
        if (string.IsNullOrEmpty(value) || value.Length > maxLength) return false;
        if (value[0] == '-' || value[^1] == '-') return false;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            var ok = c is (>= 'a' and <= 'z') or (>= '0' and <= '9') || (c == '-' && value[i - 1] != '-');
            if (!ok) return false;
        }
        return true;
    }
}
