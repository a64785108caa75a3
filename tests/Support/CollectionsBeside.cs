namespace SplitFunctions.Tests;

/// <summary>
/// Garbage collections running on another thread for as long as this lives: TorchSharp 0.107 lets a collection finalize a
/// temporary Scalar while libtorch still reads it ("Expected false to be true"), and only collections beside the calls
/// show it. Generation 0 only: that is where a step's temporaries are, and it stays quick however large the test
/// process's heap (full collections made such tests take minutes in the whole suite).
/// </summary>
public sealed class CollectionsBeside : IDisposable
{
    private readonly Thread collector;
    private int stop;

    public CollectionsBeside()
    {
        collector = new Thread(() =>
        {
            while (Volatile.Read(ref stop) == 0)
            {
                GC.Collect(0);
                GC.WaitForPendingFinalizers();
            }
        });
        collector.Start();
    }

    public void Dispose()
    {
        Volatile.Write(ref stop, 1);
        collector.Join();
    }
}
