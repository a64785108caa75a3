using System.CommandLine;
using System.Globalization;
using SplitFunctions.Core.CommandLine;
using SplitFunctions.Core.Consortium;

namespace SplitFunctions.Operator.Commands;

/// <summary>`hospital add | rotate-key | revoke | list`.</summary>
internal static class HospitalCommands
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var command = new Command("hospital", "Onboard hospitals: their container and reply queue, their key (where the function reads keys), their "
            + "credentials.");
        command.Subcommands.Add(Add(output, error));
        command.Subcommands.Add(RotateKey(output, error));
        command.Subcommands.Add(Revoke(output, error));
        command.Subcommands.Add(List(output, error));
        return command;
    }

    private static Argument<string> IdArgument() => new("hospital")
    {
        Description = "Hospital id: 1-40 lowercase letters, digits and single inner hyphens, "
        + "e.g. hospital-a."
    };

    private static Option<string?> OutOption() => new("--out")
    {
        Description = "Folder to write the hospital's onboarding package to (keys/ and init.rsp; default: onboarding/<hospital>). Send it over a secure "
            + "channel.",
        HelpName = "folder",
    };

    private static Option<int> SasDaysOption() => new("--sas-days")
    {
        Description = "SAS access: days until the SAS expire "
        + "(1-365).",
        DefaultValueFactory = _ => 30
    };

    private static Command Add(TextWriter output, TextWriter error)
    {
        var id = IdArgument();
        var access = new Option<HospitalAccessKind>("--access")
        {
            Description = "sas: SAS URIs (accounts with shared key access, Azurite); identity: the hospital's own Entra service principal (Azure).",
            DefaultValueFactory = _ => HospitalAccessKind.Sas,
        };
        var sasDays = SasDaysOption();
        var principal = new Option<string?>("--principal-id")
        {
            Description = "Identity access: object id of the hospital's service principal (`az ad sp show "
            + "--id <app id> --query id`)."
        };
        var tenant = new Option<string?>("--tenant-id") { Description = "Identity access: the hospital service principal's Microsoft Entra tenant." };
        var clientId = new Option<string?>("--client-id") { Description = "Identity access: the service principal's application (client) id." };
        var certificate = new Option<string?>("--certificate")
        {
            Description = "Identity access: the certificate file name at the hospital (default: "
            + "splitfn-<hospital>.pem).",
            HelpName = "file"
        };
        var outFolder = OutOption();
        var command = new Command("add", "Onboard a hospital: create container h-<id> and queue replies-<id>, create its key, write its onboarding package "
            + "and print how it runs `splitfn-agent init`.")
        {
            id, access, sasDays, principal, tenant, clientId, certificate, outFolder,
        };
        command.SetAction((parse, ct) => OperatorCli.RunAsync(error, async () =>
        {
            var hospital = parse.GetValue(id)!;
            var storage = OperatorCli.Storage(parse);
            var keys = OperatorCli.FunctionKeys(parse);
            var package = await new HospitalOnboarding(storage, keys).AddAsync(new OnboardingRequest
            {
                HospitalId = hospital,
                Access = parse.GetValue(access),
                SasLifetime = TimeSpan.FromDays(parse.GetValue(sasDays)),
                PrincipalId = parse.GetValue(principal),
                TenantId = parse.GetValue(tenant),
                ClientId = parse.GetValue(clientId),
                Certificate = parse.GetValue(certificate),
            }, ct).ConfigureAwait(false);
            await output.WriteLineAsync($"hospital {hospital} onboarded: container h-{hospital}, queue replies-{hospital}, key '{package.Key.KeyId}' stored "
                + $"in {keys.Location}").ConfigureAwait(false);
            await WritePackageAsync(output, package, parse.GetValue(outFolder)).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command RotateKey(TextWriter output, TextWriter error)
    {
        var id = IdArgument();
        var retire = new Option<bool>("--retire-old")
        {
            Description = "Also retire the hospital's previous keys now (frames still sealed with them are then "
            + "refused)."
        };
        var sasDays = SasDaysOption();
        var outFolder = OutOption();
        var command = new Command("rotate-key", "Issue a new current key (and, for SAS access, new SAS) and rewrite the onboarding package; old keys stay "
            + "valid unless --retire-old.")
        {
            id, retire, sasDays, outFolder,
        };
        command.SetAction((parse, ct) => OperatorCli.RunAsync(error, async () =>
        {
            var keys = OperatorCli.FunctionKeys(parse);
            var package = await new HospitalOnboarding(OperatorCli.Storage(parse), keys)
                .RotateKeyAsync(parse.GetValue(id)!, parse.GetValue(retire), TimeSpan.FromDays(parse.GetValue(sasDays)), ct: ct).ConfigureAwait(false);
            await output.WriteLineAsync($"hospital {package.Record.HospitalId}: new key '{package.Key.KeyId}' in {keys.Location}; keys in use: "
                + $"{string.Join(", ", package.Record.KeyIds)}").ConfigureAwait(false);
            await WritePackageAsync(output, package, parse.GetValue(outFolder)).ConfigureAwait(false);
            await output.WriteLineAsync("The hospital re-runs init with the new package (add --force to overwrite its configuration); its run state is "
                + "kept.").ConfigureAwait(false);
        }));
        return command;
    }

    private static Command Revoke(TextWriter output, TextWriter error)
    {
        var id = IdArgument();
        var command = new Command("revoke", "Revoke a hospital: retire all its keys (the function refuses its frames) and end its SAS; its container and data "
            + "stay.") { id };
        command.SetAction((parse, ct) => OperatorCli.RunAsync(error, async () =>
        {
            var (record, removals) = await new HospitalOnboarding(OperatorCli.Storage(parse), OperatorCli.FunctionKeys(parse))
                .RevokeAsync(parse.GetValue(id)!, ct).ConfigureAwait(false);
            await output.WriteLineAsync($"hospital {record.HospitalId} revoked at {record.RevokedAt:u}: keys {string.Join(", ", record.KeyIds)} "
                + $"retired").ConfigureAwait(false);
            if (record.Access == HospitalAccessKind.Sas)
            {
                // A SAS minted with the account key hangs on the stored access policy revoke removed; a user-delegation SAS (minted
                // when the operator signs in with Entra ID) does not, and only revoking the account's delegation keys ends it early.
                await output.WriteLineAsync($"its container and reply-queue SAS stopped working now if they were minted with the account key; a "
                    + $"user-delegation SAS (minted under an Entra sign-in) runs until {record.SasExpiresOn:u} unless you run `az storage account "
                    + $"revoke-delegation-keys`; its add-only SAS for 'features' runs until {record.SasExpiresOn:u}; the function refuses all it sends")
                    .ConfigureAwait(false);
            }
            foreach (var line in removals) await output.WriteLineAsync(line).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command List(TextWriter output, TextWriter error)
    {
        var command = new Command("list", "List the onboarded hospitals: access, current key, SAS expiry, revoked or not.");
        command.SetAction((parse, ct) => OperatorCli.RunAsync(error, async () =>
        {
            var records = await new HospitalRegistry(OperatorCli.Storage(parse)).ListAsync(ct).ConfigureAwait(false);
            if (records.Count == 0) await output.WriteLineAsync("no hospitals onboarded yet: `hospital add <id>`").ConfigureAwait(false);
            foreach (var r in records)
            {
                var state = r.IsRevoked ? $"revoked {r.RevokedAt:u}" : "active";
                var expiry = r.SasExpiresOn is { } e ? $", SAS until {e:u}" : "";
                await output.WriteLineAsync($"{Printable.Escape(r.HospitalId)}: {state}, {r.Access.ToString().ToLowerInvariant()} access, key "
                    + $"{Printable.Escape(r.CurrentKeyId)}{expiry}").ConfigureAwait(false);
            }
        }));
        return command;
    }

    private static async Task WritePackageAsync(TextWriter output, OnboardingPackage package, string? folder)
    {
        var hospital = package.Record.HospitalId;
        folder = Path.GetFullPath(folder ?? Path.Combine("onboarding", hospital));
        var responseFile = package.WriteTo(folder);
        if (package.Credentials is { } c)
        {
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"SAS expire at {c.ExpiresOn:u} (container and reply queue revocable; "
                + $"features queue add-only)")).ConfigureAwait(false);
        }
        foreach (var line in package.RoleAssignments) await output.WriteLineAsync(line).ConfigureAwait(false);
        await output.WriteLineAsync($"onboarding package: {folder} ({OnboardingPackage.KeyFolder}/ holds the hospital's key, {Path.GetFileName(responseFile)} "
            + $"its init arguments; owner-only files)").ConfigureAwait(false);
        await output.WriteLineAsync("the hospital, in that folder:").ConfigureAwait(false);
        await output.WriteLineAsync($"  splitfn-agent --config agent-<run>.json init @{OnboardingPackage.ResponseFile} --run <run> --data "
            + $"<data-file>").ConfigureAwait(false);
        // The SAS (`sig=`) live in the owner-only response file alone: stdout ends up in terminals' scrollback, CI logs and tickets.
        await output.WriteLineAsync($"  (the SAS are in {Path.GetFileName(responseFile)} only, readable by its owner; they are never printed: "
            + "send the folder to the hospital over a channel fit for credentials)").ConfigureAwait(false);
    }
}
