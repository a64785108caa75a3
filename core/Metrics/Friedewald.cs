namespace SplitFunctions.Core.Metrics;

/// <summary>
/// The Friedewald equation (1972), the classical LDL estimate the LDL model is compared with:
/// LDL = TC - HDL - TG/5, all in mg/dL (TG/5 estimates VLDL cholesterol).
/// It is not valid for triglycerides of 400 mg/dL or more, where TG/5 overstates VLDL and LDL comes out too low.
/// </summary>
public static class Friedewald
{
    /// <summary>Triglycerides (mg/dL) from which the estimate is not valid.</summary>
    public const double TriglycerideLimit = 400;

    /// <summary>Estimated LDL cholesterol in mg/dL; check <see cref="IsApplicable"/> before trusting it.</summary>
    public static double Ldl(double totalCholesterol, double hdl, double triglycerides) => totalCholesterol - hdl - triglycerides / 5.0;

    /// <summary>Whether the equation may be used for these triglycerides (below 400 mg/dL).</summary>
    public static bool IsApplicable(double triglycerides) => triglycerides < TriglycerideLimit;

    /// <summary>Estimates for many rows at once (for scoring the baseline with the same metrics as the models).</summary>
    public static float[] Ldl(ReadOnlySpan<float> totalCholesterol, ReadOnlySpan<float> hdl, ReadOnlySpan<float> triglycerides)
    {
        if (hdl.Length != totalCholesterol.Length || triglycerides.Length != totalCholesterol.Length)
            throw new ArgumentException("total cholesterol, HDL and triglycerides must have one value per row each", nameof(hdl));
        var ldl = new float[totalCholesterol.Length];
        for (var i = 0; i < ldl.Length; i++) ldl[i] = (float)Ldl(totalCholesterol[i], hdl[i], triglycerides[i]);
        return ldl;
    }
}
