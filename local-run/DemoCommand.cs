using System.CommandLine;

namespace SplitFunctions.LocalRun;

/// <summary>`splitfn-local demo`: the README's main job.</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var command = new Command("demo", "Three hospitals train one network with split learning on a local Azurite.");
        command.SetAction((_, _) => Task.FromResult(1));
        return command;
    }
}
