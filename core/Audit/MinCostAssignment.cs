namespace SplitFunctions.Core.Audit;

/// <summary>
/// The minimum-cost one-to-one assignment of n rows to n columns (the Hungarian method with potentials, O(n^3)): the
/// multi-view attack's linking when each view holds every patient exactly once, as an epoch does.
/// </summary>
public static class MinCostAssignment
{
    /// <summary>
    /// The column assigned to each row of <paramref name="cost"/> ([n, n] row-major) so that the summed cost is the least.
    /// Adding a constant to a row or a column does not change the answer.
    /// </summary>
    public static int[] Solve(ReadOnlySpan<double> cost, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (cost.Length != (long)n * n) throw new ArgumentException($"{cost.Length} costs are not {n} x {n}", nameof(cost));
        foreach (var c in cost) if (!double.IsFinite(c)) throw new ArgumentException("every cost must be finite", nameof(cost));
        // 1-based as in the textbook form: column 0 and row 0 are the augmenting path's virtual start.
        var rowPotential = new double[n + 1];
        var columnPotential = new double[n + 1];
        var rowOfColumn = new int[n + 1];
        var previous = new int[n + 1];
        var slack = new double[n + 1];
        var used = new bool[n + 1];
        for (var row = 1; row <= n; row++)
        {
            rowOfColumn[0] = row;
            var column = 0;
            Array.Fill(slack, double.PositiveInfinity);
            Array.Clear(used);
            do
            {
                // Grow the tree of tight edges from the current column until it reaches an unassigned column.
                used[column] = true;
                var from = rowOfColumn[column];
                var delta = double.PositiveInfinity;
                var next = 0;
                for (var j = 1; j <= n; j++)
                {
                    if (used[j]) continue;
                    var reduced = cost[(from - 1) * n + j - 1] - rowPotential[from] - columnPotential[j];
                    if (reduced < slack[j]) (slack[j], previous[j]) = (reduced, column);
                    if (slack[j] < delta) (delta, next) = (slack[j], j);
                }
                for (var j = 0; j <= n; j++)
                {
                    if (used[j])
                    {
                        rowPotential[rowOfColumn[j]] += delta;
                        columnPotential[j] -= delta;
                    }
                    else
                    {
                        slack[j] -= delta;
                    }
                }
                column = next;
            }
            while (rowOfColumn[column] != 0);
            // Flip the augmenting path.
            do
            {
                var before = previous[column];
                rowOfColumn[column] = rowOfColumn[before];
                column = before;
            }
            while (column != 0);
        }
        var assignment = new int[n];
        for (var j = 1; j <= n; j++) assignment[rowOfColumn[j] - 1] = j - 1;
        return assignment;
    }
}
