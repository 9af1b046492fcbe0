// The board's detail panel: selecting a row opens a live candlestick chart of that instrument (TradingView's
// lightweight-charts, vendored beside this file with its licence) and, beside it, a depth ladder of the `depth`
// channel. Self-contained: the board calls openDetail(socket, key, label) and nothing else.

const INTERVALS = ['1m', '5m', '15m', '1h', '1d'];
const HISTORY = 300;
// Charts label bars in UTC; bars are shifted to the exchange's local time (IST, +05:30) so 09:15 reads 09:15.
const EXCHANGE_OFFSET_S = 330 * 60;

const priceFormat = new Intl.NumberFormat('en-IN', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const qtyFormat = new Intl.NumberFormat('en-IN');

let current = null; // { key, interval, chart, series, releaseCandles, depth }

const $ = (selector) => document.querySelector(selector);

function chartTime(bar) {
  return Math.floor(Date.parse(bar.t) / 1000) + EXCHANGE_OFFSET_S;
}

function toPoint(bar) {
  return { time: chartTime(bar), open: bar.o, high: bar.h, low: bar.l, close: bar.c };
}

/** Opens (or switches) the panel to `key`; `label` names it. */
export function openDetail(socket, key, label) {
  const panel = $('#detail');
  if (current?.key === key) {
    return;
  }
  closeDetail(socket);
  panel.hidden = false;
  $('#detail-title').textContent = label;
  current = { key, interval: current?.interval ?? '1m', chart: null, series: null, releaseCandles: null, depth: null };
  renderIntervals(socket);
  startChart(socket);
  startDepth(socket);
  document.body.dataset.detail = key;
}

export function closeDetail(socket) {
  if (!current) {
    return;
  }
  current.releaseCandles?.();
  current.chart?.remove();
  stopDepth(socket);
  current = null;
  $('#detail').hidden = true;
  delete document.body.dataset.detail;
}

function renderIntervals(socket) {
  const box = $('#detail-intervals');
  box.replaceChildren(
    ...INTERVALS.map((interval) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = interval;
      button.setAttribute('aria-pressed', String(interval === current.interval));
      button.addEventListener('click', () => {
        if (!current || current.interval === interval) {
          return;
        }
        current.interval = interval;
        current.releaseCandles?.();
        current.chart?.remove();
        renderIntervals(socket);
        startChart(socket);
      });
      return button;
    }),
  );
}

// ---- the chart ---------------------------------------------------------------------------------------

function startChart(socket) {
  const box = $('#chart');
  box.replaceChildren();
  const status = $('#chart-status');
  status.textContent = 'Loading bars…';
  const charts = window.LightweightCharts;
  if (!charts) {
    status.textContent = 'The chart library did not load.';
    return;
  }
  const chart = charts.createChart(box, {
    autoSize: true,
    layout: { background: { color: '#ffffff' }, textColor: '#1d2430', attributionLogo: false },
    grid: { vertLines: { color: '#eef0f3' }, horzLines: { color: '#eef0f3' } },
    timeScale: { timeVisible: current.interval !== '1d', secondsVisible: false, barSpacing: 8, rightOffset: 3 },
    rightPriceScale: { borderColor: '#e3e6eb' },
  });
  const series = chart.addSeries(charts.CandlestickSeries, {
    upColor: '#12805c', downColor: '#c62f2f', borderVisible: false, wickUpColor: '#12805c', wickDownColor: '#c62f2f',
  });
  current.chart = chart;
  current.series = series;
  const { key, interval } = current;
  current.releaseCandles = socket.subscribeCandles(key, interval, { history: HISTORY }, (event) => {
    if (!current || current.key !== key || current.interval !== interval) {
      return;
    }
    if (event.type === 'history') {
      const points = event.bars.map(toPoint);
      if (event.forming) {
        points.push(toPoint(event.forming));
      }
      series.setData(points);
    } else if (event.bar) {
      try {
        series.update(toPoint(event.bar));
      } catch {
        // older than the last bar shown: the history that follows a reconnect puts it right
      }
    }
    const count = event.bars.length + (event.forming ? 1 : 0);
    // A few bars fill the width (up to a readable size); many show the newest at the default spacing.
    if (count < 80) {
      chart.timeScale().applyOptions({ barSpacing: Math.min(24, Math.max(6, 600 / Math.max(count, 1))) });
      chart.timeScale().scrollToRealTime();
    }
    status.textContent = count === 0 ? 'No trades yet in this interval.' : '';
    box.dataset.bars = String(count);
  });
}

// ---- the depth ladder ----------------------------------------------------------------------------------

function startDepth(socket) {
  const ladder = $('#ladder');
  ladder.dataset.state = 'waiting';
  $('#ladder-body').replaceChildren();
  $('#ladder-status').textContent = 'Waiting for depth…';
  const key = current.key;
  const send = () => sendDepth(socket, 'subscribe', key);
  const offFrame = socket.onFrame('depth', (message) => {
    if (current?.key === message.instrument_key) {
      renderDepth(message.data ?? {});
    }
  });
  const offError = socket.on('server-error', ({ code, message }) => {
    // The daemon answers unknown_channel until depth is built: the ladder says so and the chart carries on.
    if (current?.key === key && code === 'unknown_channel' && /depth/.test(message ?? '')) {
      ladder.dataset.state = 'none';
      $('#ladder-status').textContent = 'No depth from this daemon.';
    }
  });
  const offStatus = socket.on('status', () => {
    if (socket.status === 'connected' && current?.key === key && !current.depth?.managed) {
      send(); // a raw subscribe is not resent by the client library: resend it on every connect
    }
  });
  current.depth = { offFrame, offError, offStatus, managed: false, release: null };
  if (typeof socket.subscribeDepth === 'function') {
    current.depth.managed = true;
    current.depth.release = socket.subscribeDepth([key]);
  } else {
    send();
  }
}

function sendDepth(socket, action, key) {
  if (socket.status === 'connected') {
    socket._send({ action, channel: 'depth', instruments: [key] });
  }
}

function stopDepth(socket) {
  const depth = current?.depth;
  if (!depth) {
    return;
  }
  depth.offFrame?.();
  depth.offError?.();
  depth.offStatus?.();
  if (depth.managed) {
    depth.release?.();
  } else if ($('#ladder').dataset.state !== 'none') {
    sendDepth(socket, 'unsubscribe', current.key);
  }
}

function renderDepth(data) {
  const asks = Array.isArray(data.asks) ? data.asks.slice(0, 5) : [];
  const bids = Array.isArray(data.bids) ? data.bids.slice(0, 5) : [];
  const max = Math.max(1, ...asks.map((l) => l[1]), ...bids.map((l) => l[1]));
  const row = (side, [price, qty, orders]) => {
    const tr = document.createElement('tr');
    tr.className = side;
    tr.style.setProperty('--fill', `${Math.round((qty / max) * 100)}%`);
    for (const [text, cls] of [[qtyFormat.format(orders ?? 0), 'orders'], [qtyFormat.format(qty), 'qty'], [priceFormat.format(price), 'price']]) {
      const td = document.createElement('td');
      td.className = cls;
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  };
  // Asks above, best ask nearest the middle; bids below, best bid first.
  $('#ladder-body').replaceChildren(...[...asks].reverse().map((l) => row('ask', l)), ...bids.map((l) => row('bid', l)));
  const ladder = $('#ladder');
  ladder.dataset.state = data.stale ? 'stale' : 'live';
  $('#ladder-status').textContent = asks.length + bids.length === 0 ? 'The book is empty.' : '';
}
