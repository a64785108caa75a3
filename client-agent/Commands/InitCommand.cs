using System.CommandLine;
using System.Globalization;
using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Privacy;

namespace SplitFunctions.ClientAgent.Commands;

/// <summary>`init`: writes the agent configuration and creates the hospital key in the local key store.</summary>
internal static class InitCommand
{
    private const string NewKeyPlaceholder = "new-key";

    public static Command Build(TextWriter output, TextWriter error)
    {
        var hospital = new Option<string>("--hospital")
        {
            Description = "This hospital's id, as the operator registered it (lowercase letters, digits, "
            + "hyphens).",
            Required = true
        };
        var run = new Option<string>("--run") { Description = "The run id to take part in.", Required = true };
        var data = new Option<string>("--data")
        {
            Description = "Local data: a folder of images (a subfolder per class; PNG, JPEG, DICOM), a .csv/.tsv image manifest "
            + "(with --data-kind images), a NumPy .npz of images and labels, or a .csv table.",
            Required = true,
            HelpName = "file"
        };
        var dataKind = new Option<string?>("--data-kind")
        {
            Description = $"{DataKinds.Images}, {DataKinds.ImagesNpz} or {DataKinds.TabularCsv} (default: {DataKinds.Images} for a folder or "
            + $"with --path-column, else from the file extension)."
        };
        dataKind.AcceptOnlyFromAmong(DataKinds.Images, DataKinds.ImagesNpz, DataKinds.TabularCsv);
        var pathColumn = new Option<string?>("--path-column") { Description = "Image manifest: the column of image paths or file names (default: path)." };
        var labelColumns = new Option<string?>("--label-columns")
        {
            Description = "Image manifest: the label column, or comma-separated 0/1 columns for multi-label (default: label)."
        };
        var splitColumn = new Option<string?>("--split-column") { Description = "Image manifest: a column saying train, val or test." };
        var groupColumn = new Option<string?>("--group-column")
        {
            Description = "Image manifest: the patient column; a patient's images stay in one split."
        };
        var imageRoot = new Option<string?>("--image-root")
        {
            Description = "Image manifest: the folder its paths are relative to (default: the manifest's).",
            HelpName = "folder"
        };
        var classes = new Option<string?>("--classes")
        {
            Description = "Images: class names in index order, comma-separated, the same at every hospital (binary: negative first)."
        };
        var window = new Option<string?>("--window") { Description = "DICOM: the intensity window center:width, e.g. 40:400 (default: each file's own)." };
        var augmentation = new Option<string?>("--augmentation")
        {
            Description = "Images: augment training batches (data.augmentation): 'on' for a flip, up to 10 degrees of rotation and 10% shift, or e.g. "
                + "no-flip,rotation=5,shift=0.05 (default: off).",
            HelpName = "spec",
        };
        var connectionString = new Option<string?>("--connection-string")
        {
            Description = "Storage connection string (development; "
            + "'UseDevelopmentStorage=true' for Azurite)."
        };
        var accountName = new Option<string?>("--account-name")
        {
            Description = "Identity-based storage: the storage account (with --tenant-id, --client-id, "
            + "--certificate, or alone for a managed identity)."
        };
        var tenantId = new Option<string?>("--tenant-id")
        {
            Description = "Identity-based storage: the Microsoft Entra tenant of the hospital's service "
            + "principal."
        };
        var clientId = new Option<string?>("--client-id") { Description = "Identity-based storage: the service principal's application (client) id." };
        var certificate = new Option<string?>("--certificate")
        {
            Description = "Identity-based storage: PEM/PFX with the service principal's certificate and "
            + "private key.",
            HelpName = "file"
        };
        var containerUri = new Option<string?>("--container-uri") { Description = "The hospital container's URI with its SAS (from onboarding)." };
        var featuresUri = new Option<string?>("--features-queue-uri") { Description = "The features queue's URI with its add-only SAS." };
        var repliesUri = new Option<string?>("--replies-queue-uri") { Description = "This hospital's reply queue URI with its read/process SAS." };
        var keyDir = new Option<string>("--key-dir")
        {
            Description = "Key store folder (owner-only "
            + "files).",
            DefaultValueFactory = _ => "keys",
            HelpName = "folder"
        };
        var keyId = new Option<string?>("--key-id") { Description = "Use this existing key instead of creating a new one (e.g. one the operator issued)." };
        var state = new Option<string>("--state")
        {
            Description = "State folder (weights, cursor, pending "
            + "message).",
            DefaultValueFactory = _ => "state",
            HelpName = "folder"
        };
        var preset = new Option<string?>("--columns-preset") { Description = "A ready CSV column mapping: nhis-lipids (the paper's LDL task)." };
        preset.AcceptOnlyFromAmong("nhis-lipids");
        var features = new Option<string?>("--features") { Description = "CSV feature columns, comma-separated, in the model's input order." };
        var target = new Option<string?>("--target") { Description = "CSV target column." };
        var categorical = new Option<string[]>("--categorical")
        {
            Description = "A categorical CSV column and its codes, e.g. sex=Male:0,Female:1 (repeat for more columns).",
            AllowMultipleArgumentsPerToken = false,
        };
        var range = new Option<string[]>("--range")
        {
            Description = "A CSV column's plausible range, e.g. HDL_chole=1:300 (repeat for more columns); rows outside it are dropped and counted.",
            AllowMultipleArgumentsPerToken = false,
        };
        var noDefaultRanges = new Option<bool>("--no-default-ranges")
        {
            Description = "Check only the --range columns, not the clinical defaults "
            + "(docs/experiments.md)."
        };
        var seed = new Option<long>("--partition-seed")
        {
            Description = "Seed of the shared shuffle that splits the data (same at every simulated "
            + "hospital).",
            DefaultValueFactory = _ => 0
        };
        var weights = new Option<string>("--partition-weights")
        {
            Description = "Shares of the training rows per hospital, e.g. "
            + "0.7,0.2,0.1.",
            DefaultValueFactory = _ => "1"
        };
        var index = new Option<int>("--partition-index") { Description = "Which share is this hospital's (0-based).", DefaultValueFactory = _ => 0 };
        var validation = new Option<double>("--validation-fraction") { Description = "Rows held out for validation.", DefaultValueFactory = _ => 0.1 };
        var test = new Option<double>("--test-fraction") { Description = "Rows held out for testing.", DefaultValueFactory = _ => 0.1 };
        var predefined = new Option<bool>("--predefined-splits")
        {
            Description = "Images: keep the archive's own val and test splits (e.g. MedMNIST's "
            + "official ones); only its train split is shared by --partition-weights."
        };
        var replyTimeout = new Option<int>("--reply-timeout")
        {
            Description = "Seconds to wait for the function's reply before "
            + "stopping.",
            DefaultValueFactory = _ => 300
        };
        var outage = new Option<int>("--storage-outage")
        {
            Description = "Seconds a storage outage may last before the agent "
            + "stops.",
            DefaultValueFactory = _ => 600
        };
        var force = new Option<bool>("--force") { Description = "Overwrite an existing configuration file." };
        var consortium = new Option<string?>("--consortium-secret")
        {
            Description = "The consortium secret file the hospitals share at onboarding (never "
            + "given to the operator or the function).",
            HelpName = "file"
        };
        var newConsortium = new Option<bool>("--new-consortium-secret")
        {
            Description = "Create the consortium secret at --consortium-secret (one hospital "
            + "does this once, then copies the file to the others)."
        };

        var floor = new Option<string>("--privacy-floor")
        {
            Description = "The least protection this hospital accepts: 'recommended' (at least two client layers, the gradient bound on) or 'open' "
                + "(any manifest, for studies of undefended runs). Edit privacy.floor in the file for more (docs/privacy.md).",
            DefaultValueFactory = _ => "recommended",
        };
        floor.AcceptOnlyFromAmong("recommended", "open");
        var maxEpsilon = new Option<double?>("--max-epsilon")
        {
            Description = "The epsilon budget of this hospital: the agent stops before a release would exceed it (docs/privacy.md).",
        };
        var command = new Command("init", "Write the agent configuration (--config) and create the hospital key.")
        {
            hospital, run, data, dataKind, connectionString, accountName, tenantId, clientId, certificate, containerUri, featuresUri, repliesUri, keyDir,
                keyId, state,
            preset, features, target, categorical, range, noDefaultRanges, seed, weights, index, validation, test, predefined, replyTimeout, outage, force,
                consortium, newConsortium, pathColumn, labelColumns, splitColumn, groupColumn, imageRoot, classes, window, augmentation, floor, maxEpsilon,
        };
        command.SetAction((parse, cancellationToken) => AgentCli.RunAsync(error, async () =>
        {
            var path = Path.GetFullPath(parse.GetValue(AgentCli.ConfigOption)!);
            if (File.Exists(path) && !parse.GetValue(force))
            {
                throw new AgentException(ExitCode.Configuration, $"configuration {path} already exists: pass --force to overwrite it, or --config <other "
                    + $"file>.");
            }
            var baseDir = Path.GetDirectoryName(path)!;
            // Paths typed on the command line are relative to the current folder; the defaults live beside the configuration.
            string Place(Option<string> option) => parse.GetResult(option) is { Implicit: false }
                ? Path.GetFullPath(parse.GetValue(option)!)
                : Path.Combine(baseDir, parse.GetValue(option)!);
            var dataPath = Path.GetFullPath(parse.GetValue(data)!);
            var fullData = dataPath;
            var manifestColumns = new[] { parse.GetValue(pathColumn), parse.GetValue(labelColumns), parse.GetValue(splitColumn), parse.GetValue(groupColumn),
                parse.GetValue(imageRoot) }.Any(v => v is not null);
            if (!File.Exists(fullData) && !Directory.Exists(fullData))
                throw new AgentException(ExitCode.Data, $"data file {fullData} does not exist: check --data.");
            var kind = parse.GetValue(dataKind) ?? (Directory.Exists(fullData) || manifestColumns
                ? DataKinds.Images
                : Path.GetExtension(dataPath).ToLowerInvariant() switch
                {
                    ".npz" => DataKinds.ImagesNpz,
                    ".csv" => DataKinds.TabularCsv,
                    ".tsv" => DataKinds.Images,
                    var other => throw new AgentException(ExitCode.Configuration, $"cannot tell the data kind of '{other}' files: pass --data-kind "
                        + $"{DataKinds.ImagesNpz} or {DataKinds.TabularCsv}."),
                });

            var config = new AgentConfiguration
            {
                HospitalId = parse.GetValue(hospital)!,
                RunId = parse.GetValue(run)!,
                Storage = new StorageSettings
                {
                    ConnectionString = parse.GetValue(connectionString),
                    Identity = parse.GetValue(accountName) is { } account
                        ? new IdentitySettings
                        {
                            AccountName = account,
                            TenantId = parse.GetValue(tenantId),
                            ClientId = parse.GetValue(clientId),
                            CertificatePath = parse.GetValue(certificate) is { } c ? Path.GetFullPath(c) : null
                        }
                        : null,
                    ContainerUri = parse.GetValue(containerUri),
                    FeaturesQueueUri = parse.GetValue(featuresUri),
                    RepliesQueueUri = parse.GetValue(repliesUri),
                },
                // Until the key exists, validation sees a well-formed placeholder id; it is replaced before the file is written.
                Key = new KeySettings { Directory = Place(keyDir), KeyId = parse.GetValue(keyId) ?? NewKeyPlaceholder },
                Data = new DataSettings
                {
                    Path = dataPath,
                    Kind = kind,
                    Columns = kind == DataKinds.TabularCsv
                        ? WithRanges(Columns(parse.GetValue(preset), parse.GetValue(features), parse.GetValue(target), parse.GetValue(categorical) ?? []),
                            parse.GetValue(range) ?? [], parse.GetValue(noDefaultRanges))
                        : null,
                    Images = kind == DataKinds.Images ? ImageSettingsFrom(parse.GetValue(pathColumn), parse.GetValue(labelColumns),
                        parse.GetValue(splitColumn), parse.GetValue(groupColumn), parse.GetValue(imageRoot), parse.GetValue(classes),
                        parse.GetValue(window)) : null,
                    Augmentation = parse.GetValue(augmentation) is { } spec ? ParseAugmentation(spec) : null,
                    Partition = new PartitionSettings
                    {
                        Seed = parse.GetValue(seed),
                        Weights = ParseWeights(parse.GetValue(weights)!),
                        Index = parse.GetValue(index),
                        ValidationFraction = parse.GetValue(validation),
                        TestFraction = parse.GetValue(test),
                        PredefinedSplits = parse.GetValue(predefined),
                    },
                },
                StateFolder = Place(state),
                Timeouts = new TimeoutSettings { ReplySeconds = parse.GetValue(replyTimeout), StorageOutageSeconds = parse.GetValue(outage) },
                ConsortiumSecretFile = parse.GetValue(consortium) is { } secretFile ? Path.GetFullPath(secretFile) : null,
                Privacy = new AgentPrivacySettings
                {
                    Floor = parse.GetValue(floor) == "open" ? PrivacyFloor.Open : PrivacyFloor.Recommended,
                    MaxEpsilon = parse.GetValue(maxEpsilon),
                },
            };
            var secret = OpenConsortiumSecret(config.ConsortiumSecretFile, parse.GetValue(newConsortium));
            if (config.Storage.ConnectionString is null && config.Storage.ContainerUri is null && config.Storage.Identity is null)
            {
                throw new AgentException(ExitCode.Configuration,
                    "no storage given: pass --connection-string (development), --account-name with the hospital identity (--tenant-id, --client-id, "
                        + "--certificate), or --container-uri, --features-queue-uri and --replies-queue-uri (SAS from onboarding).");
            }
            AgentConfigurationFile.Validate(config, path);
            if (config.Data.Columns is { } columns)
            {
                // An unknown column is a typo best caught now, not at the first scheduled training session.
                try
                {
                    CsvTabularLoader.RequireColumns(CsvTabularLoader.ReadHeader(dataPath), new ColumnMapping(columns.Features, columns.Target), dataPath);
                }
                catch (DataFormatException e)
                {
                    throw new AgentException(ExitCode.Data, $"data error in {e.Message}", e);
                }
                catch (ArgumentException e)
                {
                    throw new AgentException(ExitCode.Configuration, $"column mapping: {e.Message.Split(" (Parameter", 2)[0]}", e);
                }
            }

            if (config.Data.Kind == DataKinds.Images) await ReportImagesAsync(config.Data, output).ConfigureAwait(false);

            var store = new LocalKeyStore(config.Key.Directory);
            HospitalKey key;
            try
            {
                key = config.Key.KeyId != NewKeyPlaceholder
                    ? await store.GetKeyAsync(config.HospitalId, config.Key.KeyId, cancellationToken).ConfigureAwait(false)
                    : store.CreateKey(config.HospitalId);
            }
            catch (Exception e) when (e is ProtocolException or KeyStoreException or ArgumentException or UnauthorizedAccessException or IOException)
            {
                throw new AgentException(ExitCode.Key, $"key error: {e.Message}. Check --key-dir and --key-id, or leave --key-id out to create a new key.", e);
            }
            config = config with { Key = config.Key with { KeyId = key.KeyId } };
            AgentConfigurationFile.Save(path, config);
            // The hospital's own order secret, kept beside its state and never sent (docs/privacy.md).
            OrderSecret.LoadOrCreate(config.StateFolder);
            await output.WriteLineAsync($"configuration written to {path} (readable by its owner only)").ConfigureAwait(false);
            await output.WriteLineAsync($"hospital key '{key.KeyId}' in {store.Directory}").ConfigureAwait(false);
            await output.WriteLineAsync("The function must hold the same key (Key Vault secret hospital-<id>--<keyId>, or its local key folder in "
                + "development); see docs/deploy.md.").ConfigureAwait(false);
            if (secret is not null)
            {
                await output.WriteLineAsync($"consortium secret {config.ConsortiumSecretFile}: commitment {secret.Commitment} (the operator writes it into "
                    + $"the run manifest as privacy.consortiumCommitment; the secret itself stays with the hospitals)").ConfigureAwait(false);
            }
            await output.WriteLineAsync($"next: splitfn-agent train --config {path}").ConfigureAwait(false);
            return ExitCode.Ok;
        }));
        return command;
    }

    private static AugmentationSettings ParseAugmentation(string spec) =>
        AugmentationSettings.Parse(spec, out var problem) ?? throw new AgentException(ExitCode.Usage, $"--augmentation: {problem}.");

    private static ImageSettings ImageSettingsFrom(string? pathColumn, string? labelColumns, string? splitColumn, string? groupColumn, string? imageRoot,
        string? classes, string? window)
    {
        static string[]? List(string? text) => text?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var defaults = new ImageSettings();
        return new ImageSettings
        {
            PathColumn = pathColumn ?? defaults.PathColumn,
            LabelColumns = List(labelColumns) ?? defaults.LabelColumns,
            SplitColumn = splitColumn,
            GroupColumn = groupColumn,
            ImageRoot = imageRoot is null ? null : Path.GetFullPath(imageRoot),
            Classes = List(classes),
            Window = window,
        };
    }

    // The data report before any run exists: what the agent will train on, what it skipped and why, leaks between splits.
    private static async Task ReportImagesAsync(DataSettings data, TextWriter output)
    {
        ImageDataReport report;
        try
        {
            // The run's task is not known before its manifest: a label column of numbers reads as classes 0..k here.
            var options = Data.HospitalDataLoader.ImageOptions(data, Core.Model.TaskKind.Classification) with
            {
                LabelKind = data.Images?.LabelColumns.Count > 1 ? ImageLabelKind.MultiLabel : ImageLabelKind.SingleClass,
            };
            report = ImageSourceLoader.Report(options, Data.HospitalDataLoader.SplitRule(data.Partition));
        }
        catch (DataFormatException e)
        {
            throw new AgentException(ExitCode.Data, $"data error in {e.Message}", e);
        }
        catch (GdcmMissingException e)
        {
            throw new AgentException(ExitCode.Data, e.Message + ".", e);
        }
        if (report.Usable == 0)
        {
            var reasons = string.Join("; ", report.SkipReasons.Take(3).Select(r => $"{r.Count} {r.Reason}"));
            throw new AgentException(ExitCode.Data, $"data error in {data.Path}: no usable image ({report.Listed} files listed; "
                + $"{(reasons.Length == 0 ? "none found" : reasons)}). Point --data at a folder of PNG, JPEG or DICOM images.");
        }
        await output.WriteLineAsync(report.ToString()).ConfigureAwait(false);
    }

    private static ConsortiumSecret? OpenConsortiumSecret(string? path, bool create)
    {
        if (path is null)
        {
            if (create) throw new AgentException(ExitCode.Usage, "--new-consortium-secret needs --consortium-secret <file> to say where to write it.");
            return null;
        }
        try
        {
            if (create && !File.Exists(path))
            {
                var secret = ConsortiumSecret.Create();
                secret.Save(path);
                return secret;
            }
            return ConsortiumSecret.Load(path);
        }
        catch (ConsortiumSecretException e)
        {
            throw new AgentException(ExitCode.Configuration, e.Message + ".", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentException(ExitCode.Configuration, $"consortium secret {path} cannot be written ({e.Message}).", e);
        }
    }

    private static ColumnSettings Columns(string? preset, string? features, string? target, string[] categorical)
    {
        if (preset == "nhis-lipids" && features is null)
        {
            var m = Core.Data.ColumnMapping.NhisLipids;
            return new ColumnSettings
            {
                Features = [.. m.Features],
                Target = m.Target,
                Categorical = m.Categorical.ToDictionary(c => c.Key, c => c.Value.ToDictionary(v => v.Key, v => v.Value)),
                Ranges = m.Ranges.ToDictionary(r => r.Key, r => new RangeSettings(r.Value.Min, r.Value.Max)),
            };
        }
        if (string.IsNullOrWhiteSpace(features) || string.IsNullOrWhiteSpace(target))
        {
            throw new AgentException(ExitCode.Configuration, "a CSV data set needs --features a,b,c and --target t (or --columns-preset nhis-lipids).");
        }
        var codes = new Dictionary<string, Dictionary<string, double>>();
        foreach (var spec in categorical)
        {
            var eq = spec.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new AgentException(ExitCode.Configuration, $"--categorical '{spec}' is not column=Value:code,Value:code (e.g. "
                + $"sex=Male:0,Female:1).");
            var values = new Dictionary<string, double>();
            foreach (var pair in spec[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var colon = pair.LastIndexOf(':');
                if (colon <= 0 || !double.TryParse(pair[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var code))
                {
                    throw new AgentException(ExitCode.Configuration, $"--categorical '{spec}': '{pair}' is not Value:code.");
                }
                values[pair[..colon]] = code;
            }
            codes[spec[..eq].Trim()] = values;
        }
        return new ColumnSettings
        {
            Features = features.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            Target = target.Trim(),
            Categorical = codes,
        };
    }

    private static ColumnSettings WithRanges(ColumnSettings columns, string[] ranges, bool noDefaults)
    {
        var all = new Dictionary<string, RangeSettings>(columns.Ranges);
        foreach (var spec in ranges)
        {
            var eq = spec.LastIndexOf('=');
            if (eq <= 0 || !PlausibleRange.TryParse(spec[(eq + 1)..], out var r))
                throw new AgentException(ExitCode.Configuration, $"--range '{spec}' is not column=min:max (e.g. HDL_chole=1:300).");
            all[spec[..eq].Trim()] = new RangeSettings(r.Min, r.Max);
        }
        return columns with { Ranges = all, UseDefaultRanges = !noDefaults };
    }

    private static double[] ParseWeights(string text)
    {
        try
        {
            return [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(w => double.Parse(w, CultureInfo.InvariantCulture))];
        }
        catch (FormatException e)
        {
            throw new AgentException(ExitCode.Configuration, $"--partition-weights '{text}' is not a comma-separated list of numbers, e.g. 0.7,0.2,0.1.", e);
        }
    }
}
