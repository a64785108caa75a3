using System.Runtime.InteropServices;

namespace SplitFunctions.ClientAgent;

/// <summary>
/// Turns the first Ctrl-C (SIGINT) or SIGTERM into a cancellation the running command finishes cleanly on (exit 130);
/// a second signal is left to the runtime and ends the process at once.
/// </summary>
public sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _received;

    public StopSignals() =>
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)];

    public CancellationToken Token => _stop.Token;

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Exchange(ref _received, 1) != 0) return;
        context.Cancel = true;
        // Said at once: the step in flight may take a while to finish, and a silent agent looks hung.
        Console.Error.WriteLine($"splitfn-agent: {context.Signal} received: finishing the step in flight, then stopping (exit code 130); a second signal "
            + $"stops at once.");
        // Off the signal thread: the command's cancellation callbacks may take a while.
        _ = Task.Run(_stop.Cancel);
    }

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        _stop.Dispose();
    }
}
