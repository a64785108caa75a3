using System.CommandLine;
using System.Globalization;
using SplitFunctions.Core.CommandLine;
using SplitFunctions.Core.Consortium;

namespace SplitFunctions.Operator.Commands;

/// <summary>`poison list | retry | drop`: messages the function poisoned (`features-poison`) and why (`features-rejections`).</summary>
internal static class PoisonCommands
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var command = new Command("poison", "Poisoned messages: read why each was poisoned, move it back to 'features' once fixed, or drop it.");
        command.Subcommands.Add(List(output, error));
        command.Subcommands.Add(Take(output, error, "retry", "Move poisoned messages back to the 'features' queue (after fixing the cause: a key, a "
            + "manifest).", requeue: true));
        command.Subcommands.Add(Take(output, error, "drop", "Delete poisoned messages and their reason records.", requeue: false));
        return command;
    }

    private static Command List(TextWriter output, TextWriter error)
    {
        var command = new Command("list", $"List the first {PoisonInbox.PageSize} poisoned messages: id, when, run, hospital, and the recorded reason.");
        command.SetAction((parse, ct) => OperatorCli.RunAsync(error, async () =>
        {
            var inbox = new PoisonInbox(OperatorCli.Storage(parse));
            var count = await inbox.CountAsync(ct).ConfigureAwait(false);
            var messages = await inbox.ListAsync(ct).ConfigureAwait(false);
            await output.WriteLineAsync($"{count} poisoned message(s) on "
                + $"features-poison{(count > messages.Count ? $", the first {messages.Count} shown" : "")}").ConfigureAwait(false);
            foreach (var m in messages)
            {
                var (run, hospital) = m.Names();
                var why = m.Record is { } r ? string.Create(CultureInfo.InvariantCulture, $"{r.Reason} ({r.Host}, {r.DequeueCount} deliveries, "
                    + $"{r.At:u})") : "no reason recorded";
                // Run, hospital and reason quote what the sender wrote: no terminal escape or line break of theirs reaches the screen.
                await output.WriteLineAsync($"{Printable.Escape(m.Id)}  {m.InsertedOn:u}  run {Printable.Escape(run ?? "?")}  hospital "
                    + $"{Printable.Escape(hospital ?? "?")}: {Printable.Escape(why)}").ConfigureAwait(false);
            }
        }));
        return command;
    }

    private static Command Take(TextWriter output, TextWriter error, string name, string description, bool requeue)
    {
        var ids = new Argument<string[]>("id") { Description = "Message ids from `poison list`.", Arity = ArgumentArity.ZeroOrMore };
        var all = new Option<bool>("--all") { Description = "Every poisoned message." };
        var command = new Command(name, description) { ids, all };
        command.SetAction((parse, ct) => OperatorCli.RunAsync(error, async () =>
        {
            var given = parse.GetValue(ids) ?? [];
            if (given.Length == 0 == !parse.GetValue(all))
            {
                throw new OperatorException(OperatorExitCode.Invalid, $"name the message ids (from `poison list`) or pass --all, not both and not neither");
            }
            var inbox = new PoisonInbox(OperatorCli.Storage(parse));
            IReadOnlyCollection<string>? wanted = parse.GetValue(all) ? null : given.ToHashSet(StringComparer.Ordinal);
            var done = requeue ? await inbox.RetryAsync(wanted, ct).ConfigureAwait(false) : await inbox.DropAsync(wanted, ct).ConfigureAwait(false);
            await output.WriteLineAsync($"{(requeue ? "moved back to features" : "dropped")}: {done.Count} "
                + $"message(s){(done.Count > 0 ? " " + string.Join(", ", done) : "")}").ConfigureAwait(false);
            if (wanted is not null && wanted.Except(done).ToList() is { Count: > 0 } missing)
            {
                throw new OperatorException(OperatorExitCode.NotFound, $"no poisoned message {string.Join(", ", missing)} (taken already, or a typo: `poison "
                    + $"list` shows the ids)");
            }
        }));
        return command;
    }
}
