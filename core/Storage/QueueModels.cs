namespace SplitFunctions.Core.Storage;

/// <summary>A message after Put Message: what is needed to delete or update it.</summary>
public sealed record SendReceipt(string MessageId, DateTimeOffset InsertionTime, DateTimeOffset ExpirationTime, string PopReceipt, DateTimeOffset TimeNextVisible);

/// <summary>A received message, invisible to others until <see cref="NextVisibleOn"/>; delete or update it with <see cref="PopReceipt"/>.</summary>
public sealed record QueueMessage(
    string MessageId, string PopReceipt, long DequeueCount, string MessageText,
    DateTimeOffset InsertionTime, DateTimeOffset ExpirationTime, DateTimeOffset NextVisibleOn);

/// <summary>A message seen without taking it (no pop receipt, visibility unchanged).</summary>
public sealed record PeekedMessage(string MessageId, long DequeueCount, string MessageText, DateTimeOffset InsertionTime, DateTimeOffset ExpirationTime);

/// <summary>The new pop receipt and visibility after Update Message.</summary>
public sealed record UpdateReceipt(string PopReceipt, DateTimeOffset NextVisibleOn);

/// <summary>Queue properties (Get Queue Metadata).</summary>
public sealed record QueueProperties(int ApproximateMessagesCount);
