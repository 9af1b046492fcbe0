using System.Collections.Concurrent;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace PriceDaemon.Benchmarks.EndToEnd;

/// <summary>
/// The original guide's design, kept as the yardstick: a Kestrel WebSocket endpoint whose ticker, for
/// every tick, walks the clients, serializes the update to JSON for each subscriber and awaits each send
/// in turn inside the broadcast loop. It speaks the daemon's protocol and ticks on the same schedule as
/// the simulated feed, so the harness loads it exactly as it loads the daemon.
/// Run as its own process: <c>baseline-server --instruments N --tick-min-ms A --tick-max-ms B --urls URL</c>.
/// </summary>
internal static class BaselineServer
{
    public static async Task<int> RunAsync(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
        var count = builder.Configuration.GetValue("instruments", 50);
        var tickMin = builder.Configuration.GetValue("tick-min-ms", 1000);
        var tickMax = builder.Configuration.GetValue("tick-max-ms", 2000);

        var keys = Enumerable.Range(1, count).Select(static i => $"NSE_EQ|SYN{i:D7}").ToArray();
        var prices = new ConcurrentDictionary<string, object>(StringComparer.Ordinal);
        var clients = new ConcurrentDictionary<Guid, Client>();

        var app = builder.Build();
        app.UseWebSockets();
        app.MapGet("/api/instruments", () => keys.Select(static k => new { instrument_key = k }));
        app.Map("/api/ws/prices", async context =>
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var client = new Client(socket);
            var id = Guid.NewGuid();
            clients[id] = client;
            try
            {
                await client.SendAsync(new { type = "status", status = "connected", message = "Live market data connected" });
                var buffer = new byte[16 * 1024];
                while (socket.State == WebSocketState.Open)
                {
                    var result = await socket.ReceiveAsync(buffer, context.RequestAborted);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        break;
                    }

                    using var message = JsonDocument.Parse(buffer.AsMemory(0, result.Count));
                    var requested = message.RootElement.GetProperty("instruments").EnumerateArray().Select(static e => e.GetString()!).ToList();
                    foreach (var key in requested)
                    {
                        client.Subscriptions[key] = true;
                    }

                    await client.SendAsync(new { type = "subscribed", instruments = requested });
                    foreach (var key in requested)
                    {
                        if (prices.TryGetValue(key, out var update))
                        {
                            await client.SendAsync(update);
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
                // The harness closed its sockets.
            }
            finally
            {
                clients.TryRemove(id, out _);
            }
        });

        var ticker = Task.Run(() => TickAsync(keys, tickMin, tickMax, prices, clients, app.Lifetime.ApplicationStopping));
        await app.RunAsync();
        await ticker;
        return 0;
    }

    private static async Task TickAsync(string[] keys, int tickMin, int tickMax, ConcurrentDictionary<string, object> prices, ConcurrentDictionary<Guid, Client> clients, CancellationToken stopping)
    {
        var random = new Random(1);
        var price = keys.Select(static (_, i) => 100.0 + (i * 7919 % 4900)).ToArray();
        var seq = new long[keys.Length];
        var due = new PriorityQueue<int, long>();
        var start = Environment.TickCount64;
        var startUtc = DateTime.UtcNow;
        for (var i = 0; i < keys.Length; i++)
        {
            due.Enqueue(i, random.Next(tickMin, tickMax + 1));
        }

        try
        {
            while (!stopping.IsCancellationRequested)
            {
                var woke = DateTime.UtcNow;
                while (due.TryPeek(out var i, out var at) && at <= Environment.TickCount64 - start)
                {
                    due.Dequeue();
                    // Stamped as the daemon's feed stamps its ticks: when the loop wakes to generate the ticks
                    // that are due. A tick that then waits behind the broadcast of earlier ones in the same
                    // burst counts that wait, as it does for the daemon; one that falls due meanwhile is
                    // stamped when it falls due.
                    // Never later than now: the schedule runs on TickCount64 (coarse, and read apart from
                    // startUtc), so a due time can land up to a millisecond ahead of the wall clock, which read
                    // as a negative latency (a p50 of 0 in seed).
                    var dueAt = startUtc.AddMilliseconds(at);
                    var now = DateTime.UtcNow;
                    var stamp = dueAt <= woke ? woke : dueAt <= now ? dueAt : now;
                    price[i] = Math.Round(price[i] * (1 + (((random.NextDouble() * 2) - 1) * 0.005)), 2);
                    var update = new
                    {
                        type = "price_update",
                        instrument_key = keys[i],
                        data = new
                        {
                            last_price = price[i],
                            timestamp = stamp.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
                            change_percent = 0.0,
                            volume = 1000 + seq[i],
                            seq = ++seq[i],
                            source = "simulated",
                        },
                    };
                    prices[keys[i]] = update;
                    foreach (var client in clients.Values)
                    {
                        if (client.Subscriptions.ContainsKey(keys[i]))
                        {
                            await client.SendAsync(update);
                        }
                    }

                    due.Enqueue(i, at + random.Next(tickMin, tickMax + 1));
                }

                await Task.Delay(1, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private sealed class Client
    {
        private readonly SemaphoreSlim _sendLock = new(1, 1);

        public Client(WebSocket socket)
        {
            Socket = socket;
        }

        public WebSocket Socket { get; }

        public ConcurrentDictionary<string, bool> Subscriptions { get; } = new(StringComparer.Ordinal);

        /// <summary>Serializes per call, as the guide did; one send at a time, because a WebSocket allows no more.</summary>
        public async Task SendAsync(object message)
        {
            var bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(message));
            await _sendLock.WaitAsync();
            try
            {
                await Socket.SendAsync(bytes, WebSocketMessageType.Text, true, CancellationToken.None);
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException)
            {
                // A closed client; the broadcast goes on.
            }
            finally
            {
                _sendLock.Release();
            }
        }
    }
}
