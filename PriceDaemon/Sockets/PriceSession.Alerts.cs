using PriceDaemon.Alerts;

namespace PriceDaemon.Sockets;

/// <summary>
/// Price alerts over the socket: <c>alert_create</c>, <c>alert_list</c>, <c>alert_delete</c>. A signed-in user's alerts
/// are the user's (every socket, HTTP, and after a restart); an anonymous socket's belong to the connection, are not
/// stored, and go with it.
/// </summary>
internal sealed partial class PriceSession
{
    private bool _hasConnectionAlerts;
    private bool _volumeCounted; // the volume_alerts channel holds one of the user's subscriptions

    /// <summary>Whose alerts this socket reads and writes: the user's <c>sub</c>, else this connection's own key.</summary>
    private string AlertOwner => _client.Subject ?? $"connection:{Id}";

    /// <param name="req">The client's request id, echoed in the answer and in any error, so concurrent requests are matched by id.</param>
    private void HandleAlert(ClientAction action, ReadOnlySpan<byte> message, string? req)
    {
        void Answer(byte[] frame) => EnqueueControl(ControlFrames.WithReq(frame, req));

        if (_services.Alerts is not { } book)
        {
            Answer(ControlFrames.Error(ErrorCodes.AlertsUnavailable, "alerts are off on this daemon (Alerts:Enabled=false)"));
            return;
        }

        if (!book.Ready && _client.Subject is not null)
        {
            Answer(ControlFrames.Error(ErrorCodes.AlertsUnavailable, AlertFrames.NotLoadedMessage));
            return;
        }

        if (action == ClientAction.AlertList)
        {
            Answer(AlertFrames.List(book.List(AlertOwner)));
            return;
        }

        if (!book.TryChange(AlertOwner, out var retryAfter))
        {
            Interlocked.Increment(ref _services.Metrics.ClientErrors);
            Answer(RateLimitedFrame(retryAfter, $"at most {book.Options.ChangesPerMinute} alert creates and deletes a minute (Alerts:ChangesPerMinute)"));
            return;
        }

        var request = AlertRequest.Parse(message, action == ClientAction.AlertCreate, book.Options.MaxNoteLength, out var problem);
        if (request is null)
        {
            Interlocked.Increment(ref _services.Metrics.ClientErrors);
            Answer(ControlFrames.Error(ErrorCodes.InvalidMessage, problem));
            return;
        }

        if (action == ClientAction.AlertDelete)
        {
            if (!book.TryDelete(AlertOwner, request.Id!, out var deleted))
            {
                Answer(ControlFrames.Error(ErrorCodes.UnknownAlert, $"no alert '{request.Id}' is yours"));
                return;
            }

            var id = request.Id!;
            _ = deleted.ContinueWith(t => Answer(Refusal(t) ?? AlertFrames.Deleted(id)), TaskScheduler.Default);
            return;
        }

        if (!_services.Instruments.TryGet(request.InstrumentKey!, out var instrument))
        {
            Answer(ControlFrames.Error(ErrorCodes.UnknownInstrument, "unknown instrument key", [request.InstrumentKey!]));
            return;
        }

        var anonymous = _client.Subject is null;
        var alert = new Alert(NewAlertId(), AlertOwner, anonymous, instrument.Id, instrument.Key, request.Condition, request.Value,
            request.Repeat, request.Note, _services.Time.GetUtcNow())
        {
            Deliver = anonymous ? EnqueueControl : null,
        };
        var refused = book.TryAdd(alert, out var stored);
        if (refused is not null)
        {
            Answer(refused == AlertErrors.Limit
                ? ControlFrames.Error(ErrorCodes.AlertLimit, $"at most {book.MaxPerOwner} alerts per user; delete one first (Alerts:MaxPerUser)")
                : ControlFrames.Error(ErrorCodes.AlertsUnavailable, "alerts are busy; try again in a moment"));
            return;
        }

        _hasConnectionAlerts |= anonymous;
        // Answered once stored: an alert_created means it survives a crash from then on (and, with NATS, is on every daemon).
        _ = stored.ContinueWith(t => Answer(Refusal(t) ?? AlertFrames.Created(book.Current(alert))), TaskScheduler.Default);
    }

    /// <summary>The error frame of a create or delete the shared store (NATS) did not take; null when it was stored.</summary>
    private static byte[]? Refusal(Task<string?> stored) =>
        stored.IsCompletedSuccessfully && stored.Result is null
            ? null
            : ControlFrames.Error(ErrorCodes.AlertsUnavailable, AlertFrames.UnconfirmedMessage);

    /// <summary>
    /// The <c>volume_alerts</c> channel: <c>volume_alert</c> frames for the named instruments, or for all when none (or
    /// <c>"*"</c>) are named. The whole channel counts as one subscription against the user's limit, however many
    /// instruments it names; the ack lists what the connection hears of (<c>["*"]</c> for all).
    /// </summary>
    private void HandleVolumeAlerts(bool subscribe)
    {
        if (_services.Volume is not { } volume)
        {
            EnqueueControl(ControlFrames.Error(ErrorCodes.UnknownChannel, "volume alerts are off on this daemon (Alerts:Volume:Enabled=false)"));
            return;
        }

        var rejected = new List<(string Key, string Code)>();
        List<int>? ids = null;
        if (!_keys.Contains("*"))
        {
            foreach (var key in _keys)
            {
                if (_services.Instruments.TryGet(key, out var instrument))
                {
                    (ids ??= []).Add(instrument.Id);
                }
                else
                {
                    rejected.Add((key, ErrorCodes.UnknownInstrument));
                }
            }

            if (ids is null && _keys.Count > 0)
            {
                // Only unknown keys: nothing to change (not "all").
                EnqueueControl(ControlFrames.Ack(subscribe ? "subscribe" : "unsubscribe", "volume_alerts", "instruments", [], "instrument_key", rejected));
                return;
            }
        }

        IReadOnlyCollection<string> held;
        if (subscribe)
        {
            if (!_volumeCounted)
            {
                if (!_client.User.TryAddSubscription())
                {
                    EnqueueControl(ControlFrames.Error(ErrorCodes.SubscriptionLimit, "the user's subscription limit is reached; the volume_alerts channel counts as one"));
                    return;
                }

                _volumeCounted = true;
            }

            held = volume.Subscribe(this, ids);
        }
        else
        {
            held = volume.Unsubscribe(this, ids);
            if (held.Count == 0 && _volumeCounted)
            {
                _volumeCounted = false;
                _client.User.RemoveSubscriptions(1);
            }
        }

        EnqueueControl(ControlFrames.Ack(subscribe ? "subscribe" : "unsubscribe", "volume_alerts", "instruments", held, "instrument_key", rejected));
    }

    /// <summary>The end of the receive loop: an anonymous connection's alerts go with it, and its volume channel.</summary>
    private void ReleaseAlerts()
    {
        if (_volumeCounted)
        {
            _volumeCounted = false;
            _services.Volume?.Remove(this);
            _client.User.RemoveSubscriptions(1);
        }

        if (_hasConnectionAlerts)
        {
            _services.Alerts?.DeleteAll(AlertOwner);
        }
    }

    internal static string NewAlertId() => "al-" + Guid.NewGuid().ToString("N")[..16];
}
