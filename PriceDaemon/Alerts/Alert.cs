namespace PriceDaemon.Alerts;

/// <summary>Where an alert is in its life; <c>state</c> in <c>alert_list</c>.</summary>
internal enum AlertState : byte
{
    /// <summary><c>armed</c>: fires on the next tick past its threshold.</summary>
    Armed,

    /// <summary>
    /// <c>resetting</c>: waits for the price to move back past its reset level before it arms: a <c>repeat</c> alert
    /// after firing (past the hysteresis band), or a crossing alert created on its firing side (past the threshold).
    /// </summary>
    Resetting,

    /// <summary><c>fired</c>: a one-shot alert that fired; listed until deleted, never fires again.</summary>
    Fired,
}

/// <summary>
/// One price alert. What the user set never changes; its state (<see cref="State"/> and the fired fields) is changed
/// and read only under its instrument's lock in <see cref="AlertBook"/>.
/// </summary>
internal sealed class Alert
{
    public Alert(string id, string owner, bool ownedByConnection, int instrumentId, string instrumentKey, AlertCondition condition, double value, bool repeat, string note, DateTimeOffset createdAt)
    {
        Id = id;
        Owner = owner;
        OwnedByConnection = ownedByConnection;
        InstrumentId = instrumentId;
        InstrumentKey = instrumentKey;
        Condition = condition;
        Value = value;
        Repeat = repeat;
        Note = note;
        CreatedAt = createdAt;
    }

    public string Id { get; }

    /// <summary>The user's <c>sub</c>, or the connection's key for an anonymous socket's alert.</summary>
    public string Owner { get; }

    /// <summary>Belongs to one connection (Auth:Mode=None): not stored, gone with the socket, delivered to it alone.</summary>
    public bool OwnedByConnection { get; }

    public int InstrumentId { get; }

    public string InstrumentKey { get; }

    public AlertCondition Condition { get; }

    /// <summary>The price, or for the change conditions the day change in percent.</summary>
    public double Value { get; }

    public bool Repeat { get; }

    public string Note { get; }

    public DateTimeOffset CreatedAt { get; }

    /// <summary>The connection an anonymous alert is delivered to; null for a user's.</summary>
    public Action<byte[]>? Deliver { get; init; }

    // State: under the instrument's lock.
    public AlertState State;
    public long FiredAtUs; // exchange time of the tick that fired it last; 0 never fired
    public double FiredPrice;
    public int FireCount;

    /// <summary>Deleted: a trigger still queued for the writer is dropped rather than persisted back.</summary>
    public bool Deleted;

    /// <summary>The price line it fires at, or resets past; set by the book (percent alerts: from the close).</summary>
    public double Level;

    /// <summary>
    /// In a NATS deployment, the alerts bucket's revision of the state this daemon holds (under the instrument's lock):
    /// a fire is written only over this revision, so a delete or another evaluator's write made meanwhile wins. 0 alone.
    /// </summary>
    public ulong Revision;

    /// <summary>
    /// In a NATS deployment, the fires whose notification is known to be in the shared inbox (<c>nf</c> in the bucket),
    /// written after it was created: an evaluator that loads an alert with more fires than this creates the missing one
    /// (a stop or SIGKILL fell between the fire's state and its notification). Written by the alert writer; 0 alone.
    /// </summary>
    public int Notified;
}

/// <summary>A copy of an alert's state, taken under its lock, for a list or a write.</summary>
internal readonly record struct AlertSnapshot(Alert Alert, AlertState State, long FiredAtUs, double FiredPrice, int FireCount);
