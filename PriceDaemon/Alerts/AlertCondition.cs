namespace PriceDaemon.Alerts;

/// <summary>What an alert waits for; the names are the protocol's (<c>"condition": "above"</c>).</summary>
internal enum AlertCondition : byte
{
    /// <summary><c>above</c>: the price is at or above <c>price</c> (fires on the first tick that holds, even the first after creation).</summary>
    Above,

    /// <summary><c>below</c>: the price is at or below <c>price</c>.</summary>
    Below,

    /// <summary><c>crosses_up</c>: a tick at or above <c>price</c> after one below it (created above it: waits for a dip first).</summary>
    CrossesUp,

    /// <summary><c>crosses_down</c>: a tick at or below <c>price</c> after one above it.</summary>
    CrossesDown,

    /// <summary><c>change_pct_above</c>: the day change (against the previous close) is at or above <c>percent</c>.</summary>
    ChangePctAbove,

    /// <summary><c>change_pct_below</c>: the day change is at or below <c>percent</c> (e.g. -2 for a 2 % fall).</summary>
    ChangePctBelow,
}

internal static class AlertConditions
{
    public static readonly string[] Names = ["above", "below", "crosses_up", "crosses_down", "change_pct_above", "change_pct_below"];

    public static string Name(AlertCondition condition) => Names[(int)condition];

    public static bool TryParse(string name, out AlertCondition condition)
    {
        var index = Array.IndexOf(Names, name);
        condition = (AlertCondition)Math.Max(index, 0);
        return index >= 0;
    }

    /// <summary>Fires on a rise to its level (its threshold is an upper line).</summary>
    public static bool IsUpward(AlertCondition condition) => condition is AlertCondition.Above or AlertCondition.CrossesUp or AlertCondition.ChangePctAbove;

    /// <summary>The threshold is a day change in percent, turned into a price with the previous close.</summary>
    public static bool IsPercent(AlertCondition condition) => condition is AlertCondition.ChangePctAbove or AlertCondition.ChangePctBelow;

    /// <summary>Needs the price on the other side first: created on the firing side, it waits for the price to come back.</summary>
    public static bool IsCrossing(AlertCondition condition) => condition is AlertCondition.CrossesUp or AlertCondition.CrossesDown;
}
