using System.Net;
using System.Text.Json;
using PriceDaemon.Tests.Support;

namespace PriceDaemon.Tests.Http;

public sealed class RestTests
{
    private TestDaemon _daemon = null!;
    private HttpClient _http = null!;

    [SetUp]
    public async Task SetUp()
    {
        _daemon = await TestDaemon.StartAsync();
        _http = _daemon.Http();
    }

    [TearDown]
    public async Task TearDown()
    {
        _http.Dispose();
        await _daemon.DisposeAsync();
    }

    [Test]
    public async Task Instruments_ListsTheNifty50Universe()
    {
        using var body = JsonDocument.Parse(await _http.GetStringAsync("/api/instruments"));
        var instruments = body.RootElement.EnumerateArray().ToList();
        Assert.That(instruments, Has.Count.EqualTo(50));
        var reliance = instruments.Single(i => i.GetProperty("instrument_key").GetString() == "NSE_EQ|INE002A01018");
        Assert.That(reliance.GetProperty("symbol").GetString(), Is.EqualTo("RELIANCE"));
        Assert.That(reliance.GetProperty("name").GetString(), Is.EqualTo("Reliance Industries"));
        Assert.That(instruments.Any(i => i.GetProperty("symbol").GetString() == "TCS"), Is.True);
    }

    [Test]
    public async Task Price_ByUrlEncodedKey_ReturnsLastKnownPrice()
    {
        await _daemon.TickAsync("NSE_EQ|INE467B01029", 3200.05, 4321, timeMs: 1_768_818_600_123);
        using var body = await PollJsonAsync("/api/prices/NSE_EQ%7CINE467B01029");
        Assert.That(body.RootElement.GetProperty("instrument_key").GetString(), Is.EqualTo("NSE_EQ|INE467B01029"));
        var data = body.RootElement.GetProperty("data");
        Assert.That(data.GetProperty("last_price").GetDouble(), Is.EqualTo(3200.05));
        Assert.That(data.GetProperty("volume").GetInt64(), Is.EqualTo(4321));
        Assert.That(data.GetProperty("timestamp").GetString(), Is.EqualTo("2026-01-19T10:30:00.123Z"));
        Assert.That(data.GetProperty("seq").GetInt64(), Is.EqualTo(1));

        using var all = JsonDocument.Parse(await _http.GetStringAsync("/api/prices"));
        Assert.That(all.RootElement.GetProperty("NSE_EQ|INE467B01029").GetProperty("last_price").GetDouble(), Is.EqualTo(3200.05));
    }

    [Test]
    public async Task Price_UnknownKey_Is404WithJsonError()
    {
        var response = await _http.GetAsync("/api/prices/NSE_EQ%7CNOPE");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.That(body.RootElement.GetProperty("code").GetString(), Is.EqualTo("unknown_instrument"));
    }

    private async Task<JsonDocument> PollJsonAsync(string path)
    {
        using var timeout = new CancellationTokenSource(TestClient.Timeout);
        while (true)
        {
            var response = await _http.GetAsync(path, timeout.Token);
            if (response.IsSuccessStatusCode)
            {
                return JsonDocument.Parse(await response.Content.ReadAsStringAsync(timeout.Token));
            }

            await Task.Delay(10, timeout.Token);
        }
    }
}
