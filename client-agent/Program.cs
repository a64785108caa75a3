// The hospital agent; its commands arrive with the client agent issue.
Console.Error.WriteLine("splitfn-agent: not implemented yet (see issue 5).");
return 2;
