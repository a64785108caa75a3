using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.State;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Tests.Agent;

/// <summary>Local state: atomic files, the one-agent-per-folder lock, and a state file that survives a round trip.</summary>
public sealed class AgentStateTests
{
    [Fact]
    public void Atomic_write_replaces_the_file_whole_and_leaves_no_temporary_files()
    {
        using var dir = new TempDirectory();
        var path = dir.File("state.json");
        AtomicFile.Write(path, "old"u8);
        AtomicFile.Write(path, "new"u8);
        File.ReadAllText(path).Should().Be("new");
        Directory.GetFiles(dir.Path).Should().ContainSingle();
    }

    [Fact]
    public void A_second_agent_on_the_same_state_folder_is_refused_with_its_exit_code()
    {
        using var dir = new TempDirectory();
        using var first = StateFolder.Open(dir.Path, "run-1");
        var second = () => StateFolder.Open(dir.Path, "run-1");
        second.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.StateLocked && e.Message.Contains("in use by another agent"));
        StateLock.IsHeld(dir.Path).Should().BeTrue();
    }

    [Fact]
    public void The_lock_message_names_the_live_holder()
    {
        using var dir = new TempDirectory();
        using var first = StateFolder.Open(dir.Path, "run-1");
        var second = () => StateFolder.Open(dir.Path, "run-1");
        second.Should().Throw<AgentException>().Which.Message.Should().Contain($"pid {Environment.ProcessId} on {Environment.MachineName}");
    }

    [Fact]
    public void The_lock_message_never_names_an_owner_that_is_gone()
    {
        using var dir = new TempDirectory();
        StateFolder.Open(dir.Path, "run-1").Dispose();
        File.Exists(Path.Combine(dir.Path, "agent.lock.owner")).Should().BeFalse("the holder removes its record before it lets go");
        // An old record left by a crashed agent, and the lock held by someone who has not written theirs (or a `status` probe).
        using var exited = System.Diagnostics.Process.Start("true")!;
        exited.WaitForExit();
        File.WriteAllText(Path.Combine(dir.Path, "agent.lock.owner"), $"pid {exited.Id} on {Environment.MachineName}, since 2020-01-01 00:00:00Z");
        using var held = new FileStream(Path.Combine(dir.Path, StateLock.FileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        var open = () => StateFolder.Open(dir.Path, "run-1");
        var message = open.Should().Throw<AgentException>().Which.Message;
        message.Should().NotContain($"pid {exited.Id}").And.Contain("cannot tell which process holds it");
    }

    [Fact]
    public void The_lock_is_free_again_once_its_holder_is_gone()
    {
        using var dir = new TempDirectory();
        StateFolder.Open(dir.Path, "run-1").Dispose();
        StateLock.IsHeld(dir.Path).Should().BeFalse();
        using var again = StateFolder.Open(dir.Path, "run-1");
    }

    [Fact]
    public async Task Train_while_another_agent_holds_the_folder_exits_with_state_locked()
    {
        using var bed = new AgentTestBed("run-lock");
        await bed.InitAsync("UseDevelopmentStorage=true", bed.WriteImages(10));
        using var holder = StateLock.Acquire(bed.StateFolder);
        var run = await AgentTestBed.RunAsync(["train", "--config", bed.ConfigPath]);
        run.ExitCode.Should().Be((int)ExitCode.StateLocked, run.ToString());
        run.Error.Should().Contain("in use by another agent");
    }

    [Fact]
    public void State_round_trips_with_its_pending_message()
    {
        using var dir = new TempDirectory();
        using var folder = StateFolder.Open(dir.Path, "run-1");
        folder.Load().Should().BeNull();
        var state = new AgentState
        {
            RunId = "run-1",
            HospitalId = "h",
            Model = "pneumonia-cnn",
            Mode = "Vanilla",
            ManifestSha256 = "ab",
            TrainSamples = 10,
            Epoch = 1,
            Batch = 2,
            NextSequence = 9,
            Pending = new PendingFrame
            {
                Sequence = 8,
                Kind = FrameKind.Train,
                Blob = "features/run-1/000000000008.sfe",
                Length = 5,
                Sha256 = "cd",
                Epoch = 1,
                Batch = 2
            },
        };
        folder.Save(state);
        folder.Load().Should().BeEquivalentTo(state, o => o.Excluding(s => s.UpdatedAt));
        File.ReadAllText(Path.Combine(folder.RunFolder, "state.json")).Should().Contain("\"train\"");
    }

    [Fact]
    public void A_damaged_state_file_is_a_state_error_naming_the_folder()
    {
        using var dir = new TempDirectory();
        using var folder = StateFolder.Open(dir.Path, "run-1");
        File.WriteAllText(Path.Combine(folder.RunFolder, "state.json"), "{ not json");
        var load = () => folder.Load();
        load.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.StateCorrupt && e.Message.Contains(folder.RunFolder));
    }
}
