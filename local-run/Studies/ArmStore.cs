using System.Text.Json;
using System.Text.Json.Serialization;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>
/// Each finished arm's results in `&lt;study&gt;/arms/&lt;arm&gt;.json`, written (atomically) as soon as the arm ends, so a crash
/// in a later arm loses nothing and `--resume` runs only the arms not yet done. `study.json` holds the settings the
/// arms were run with: resuming with other settings is refused, since the arms would not be comparable.
/// </summary>
public sealed class ArmStore
{
    private readonly string armsFolder;
    private readonly Dictionary<string, IReadOnlyList<ArmResult>> done;

    private ArmStore(string armsFolder, Dictionary<string, IReadOnlyList<ArmResult>> done)
    {
        this.armsFolder = armsFolder;
        this.done = done;
    }

    /// <summary>Arms already done (by the name given to --arms), with their results.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<ArmResult>> Done => done;

    /// <summary>
    /// Opens the study folder: with <paramref name="resume"/> keeps what an earlier run of the same settings finished, otherwise starts empty (earlier arms
    /// moved aside).
    /// </summary>
    public static ArmStore Open(string folder, StudyOptions options, bool resume)
    {
        ArgumentNullException.ThrowIfNull(options);
        var arms = Path.Combine(folder, "arms");
        var settingsFile = Path.Combine(folder, "study.json");
        var settings = Settings(options);
        var found = new Dictionary<string, IReadOnlyList<ArmResult>>(StringComparer.Ordinal);
        if (resume && File.Exists(settingsFile))
        {
            var earlier = File.ReadAllText(settingsFile);
            if (earlier != settings)
            {
                throw new StudyException(StudyExitCode.Usage,
                    $"--resume: {folder} holds a study run with other settings ({settingsFile}); rerun with the same --data, --model, --epochs, --batch-size, "
                        + $"--lr, --seed and mapping, or use another --name.");
            }
            foreach (var file in Directory.Exists(arms) ? Directory.GetFiles(arms, "*.json") : [])
            {
                try
                {
                    var results = JsonSerializer.Deserialize<List<ArmResult>>(File.ReadAllBytes(file), Json);
                    if (results is { Count: > 0 }) found[Path.GetFileNameWithoutExtension(file)] = results;
                }
                catch (JsonException)
                {
                    // Unreadable (written by another version): that arm runs again.
                }
            }
        }
        else if (Directory.Exists(arms) && Directory.EnumerateFiles(arms, "*.json").Any())
        {
            // A fresh start never throws finished work away: the earlier arms move aside.
            var aside = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{arms}-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
            Directory.Move(arms, aside);
            Console.WriteLine($"earlier arms moved to {aside} (pass --resume to continue them instead)");
        }
        Directory.CreateDirectory(arms);
        File.WriteAllText(settingsFile, settings);
        return new ArmStore(arms, found);
    }

    /// <summary>Records a finished arm; a crash after this returns keeps it.</summary>
    public void Save(string arm, IReadOnlyList<ArmResult> results)
    {
        var path = Path.Combine(armsFolder, arm + ".json");
        var temporary = path + ".tmp";
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(results, Json));
        File.Move(temporary, path, overwrite: true);
        done[arm] = results;
    }

    /// <summary>Every finished result, arms in the order given (arms finished earlier but not asked for now come last).</summary>
    public IReadOnlyList<ArmResult> All(IReadOnlyList<string> order) =>
        [.. order.Where(done.ContainsKey).Concat(done.Keys.Except(order).Order(StringComparer.Ordinal)).Distinct().SelectMany(a => done[a])];

    // What makes two runs' arms comparable: everything but the name, the arm list and the output folder.
    private static string Settings(StudyOptions options) =>
        JsonSerializer.Serialize(options with { Arms = [], Name = "", OutputFolder = "" }, Json);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
