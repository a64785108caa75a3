using SplitFunctions.Core.Model;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.LocalRun;

/// <summary>The network a command trains: a catalog preset by --model, or a consortium's own by --model-file.</summary>
public static class ModelChoice
{
    /// <summary>Loads and validates the choice; an unknown preset or a bad model file is one line with exit code 4.</summary>
    public static ModelDefinition Resolve(string preset, FileInfo? modelFile)
    {
        try
        {
            return modelFile is null ? ModelCatalog.Get(preset) : ModelFile.Load(modelFile.FullName);
        }
        catch (Exception e) when (e is UnknownModelException or ModelDefinitionException)
        {
            throw new StudyException(StudyExitCode.Model, $"{(modelFile is null ? "--model" : "--model-file")}: {e.Message}", e);
        }
    }
}
