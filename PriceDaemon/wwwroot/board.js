// The live board at GET /: one PriceSocket, a table of the instruments the user picked (kept in
// localStorage), a search box over /api/instruments, and the connection state in plain words.
import { PriceSocket } from './price-socket.js';
import { openDetail, closeDetail } from './board-chart.js';

const ROWS_KEY = 'board:instruments';
const SPARK_POINTS = 40;
// RELIANCE, TCS, INFY, HDFCBANK, ICICIBANK: shown until the user changes the list.
const DEFAULT_ROWS = [
  'NSE_EQ|INE002A01018',
  'NSE_EQ|INE467B01029',
  'NSE_EQ|INE009A01021',
  'NSE_EQ|INE040A01034',
  'NSE_EQ|INE090A01021',
];

const $ = (selector) => document.querySelector(selector);
const tbody = $('#board tbody');
const pill = $('#connection');
const banner = $('#banner');
const input = $('#search-input');
const results = $('#search-results');

const priceFormat = new Intl.NumberFormat('en-IN', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const volumeFormat = new Intl.NumberFormat('en-IN');
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

const params = new URLSearchParams(location.search);
const socket = new PriceSocket({
  token: params.get('token') ?? undefined,
  reconnectDelayMs: Number(params.get('reconnectMs')) || undefined,
  // The live latency figure in the header: the daemon's receive time on every price (?timing=0 turns it off).
  timing: params.get('timing') !== '0',
});
window.priceSocket = socket; // for the console: priceSocket.prices(), priceSocket.status

const instruments = new Map(); // key -> { symbol, name }
const rows = new Map(); // key -> { tr, cells, release, history }

// ---- rows -------------------------------------------------------------------------------------------

function loadRowKeys() {
  try {
    const saved = JSON.parse(localStorage.getItem(ROWS_KEY));
    if (Array.isArray(saved)) {
      return saved.filter((key) => typeof key === 'string');
    }
  } catch {
    // fall through to the defaults
  }
  return DEFAULT_ROWS;
}

function saveRowKeys() {
  try {
    localStorage.setItem(ROWS_KEY, JSON.stringify([...rows.keys()]));
  } catch {
    // private mode: the board still works, it just forgets the list
  }
}

function cell(tr, className) {
  const td = document.createElement('td');
  td.className = className;
  tr.append(td);
  return td;
}

function addRow(key, { save = true } = {}) {
  if (rows.has(key)) {
    return rows.get(key);
  }
  const tr = document.createElement('tr');
  tr.dataset.key = key;
  const cells = {
    symbol: cell(tr, 'symbol'),
    name: cell(tr, 'name'),
    price: cell(tr, 'num price'),
    change: cell(tr, 'num change'),
    volume: cell(tr, 'num volume'),
    spark: cell(tr, 'spark'),
    time: cell(tr, 'num time'),
  };
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'remove';
  remove.textContent = '×';
  remove.addEventListener('click', () => removeRow(key));
  cell(tr, 'actions').append(bellButton(key), remove);
  tbody.append(tr);
  // Selecting a row opens its chart and depth ladder below the table.
  tr.addEventListener('click', (event) => {
    if (!event.target.closest('button')) {
      openDetail(socket, key, instruments.get(key)?.symbol ?? key);
    }
  });

  const row = { tr, cells, remove, history: [], release: null };
  rows.set(key, row);
  describeRow(key);
  const known = socket.price(key);
  if (known) {
    showPrice(key, known, false);
  } else {
    cells.price.textContent = '–';
  }
  row.release = socket.subscribe([key]);
  if (save) {
    saveRowKeys();
  }
  updateEmpty();
  return row;
}

function removeRow(key) {
  const row = rows.get(key);
  if (!row) {
    return;
  }
  if (document.body.dataset.detail === key) {
    closeDetail(socket);
  }
  row.release();
  row.tr.remove();
  rows.delete(key);
  saveRowKeys();
  updateEmpty();
}

function describeRow(key) {
  const row = rows.get(key);
  if (!row) {
    return;
  }
  const info = instruments.get(key);
  row.cells.symbol.textContent = info?.symbol ?? key.split('|').pop();
  row.cells.name.textContent = info?.name ?? '';
  row.cells.name.title = info?.name ?? '';
  row.remove.setAttribute('aria-label', `Remove ${info?.symbol ?? key}`);
  row.remove.title = `Remove ${info?.symbol ?? key}`;
}

function updateEmpty() {
  $('#empty').hidden = rows.size > 0;
  $('#board').hidden = rows.size === 0;
}

function showPrice(key, data, changed) {
  const row = rows.get(key);
  if (!row) {
    return;
  }
  const { cells, tr, history } = row;
  const previous = history.length > 0 ? history[history.length - 1] : undefined;
  if (changed || history.length === 0) {
    history.push(data.last_price);
    if (history.length > SPARK_POINTS) {
      history.shift();
    }
  }

  cells.price.textContent = priceFormat.format(data.last_price);
  cells.price.dataset.value = String(data.last_price);
  const change = Number(data.change_percent ?? 0);
  cells.change.textContent = `${change > 0 ? '+' : ''}${change.toFixed(2)}%`;
  cells.change.classList.toggle('up', change > 0);
  cells.change.classList.toggle('down', change < 0);
  cells.volume.textContent = data.volume === undefined ? '' : volumeFormat.format(data.volume);
  const time = data.timestamp ? new Date(data.timestamp) : null;
  cells.time.textContent = time && !Number.isNaN(time.getTime()) ? timeFormat.format(time) : '';
  cells.time.title = data.timestamp ?? '';

  tr.classList.toggle('stale', data.stale === true);
  tr.dataset.stale = String(data.stale === true);
  cells.price.title = data.stale ? 'stale: the last known price, not live' : `live (${data.source ?? 'feed'})`;

  if (changed && previous !== undefined && previous !== data.last_price) {
    const direction = data.last_price > previous ? 'flash-up' : 'flash-down';
    cells.price.classList.remove('flash-up', 'flash-down');
    void cells.price.offsetWidth; // restart the animation
    cells.price.classList.add(direction);
  }
  drawSpark(row);
}

function drawSpark(row) {
  const { history, cells, tr } = row;
  const width = 80;
  const height = 22;
  const min = Math.min(...history);
  const max = Math.max(...history);
  const span = max - min || 1;
  // Right-aligned, so the newest price is always at the same place; a short history is not stretched flat.
  const step = history.length > 1 ? width / (Math.max(history.length, 12) - 1) : 0;
  const offset = width - step * (history.length - 1);
  const points = history
    .map((value, i) => `${(offset + i * step).toFixed(1)},${(height - 2 - ((value - min) / span) * (height - 4)).toFixed(1)}`)
    .join(' ');
  cells.spark.innerHTML =
    `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" aria-hidden="true">` +
    `<polyline points="${points}"/></svg>`;
  const first = history[0];
  const last = history[history.length - 1];
  tr.classList.toggle('up-trend', last > first);
  tr.classList.toggle('down-trend', last < first);
}

// ---- connection state -------------------------------------------------------------------------------

function showConnection() {
  const feed = socket.feed;
  let state;
  let label;
  let kind = '';
  let text = '';
  switch (socket.status) {
    case 'connected':
      if (feed && feed.status === 'disconnected') {
        state = 'feed-down';
        label = 'Feed down';
        kind = 'reconnecting';
        text = `Reconnecting… the market feed is down; showing the last known prices. ${feed.message ?? ''}`;
      } else if (feed && feed.status === 'error') {
        state = 'error';
        label = 'Feed error';
        kind = 'error';
        text = `Market feed error: ${feed.message || 'unknown'}. Showing the last known prices.`;
      } else if (socket.slow) {
        // The daemon downsampled this connection: prices still come, but at most once per interval each.
        state = 'slow';
        label = 'Slow connection';
        kind = 'slow';
        const every = socket.slow.intervalMs ? ` at most once every ${socket.slow.intervalMs / 1000} s per instrument` : ' less often';
        text = `Slow connection: this page is not keeping up with the prices, so the daemon sends them${every} until it does.`;
      } else {
        state = 'live';
        label = 'Live';
      }
      break;
    case 'reconnecting':
      state = 'reconnecting';
      label = 'Reconnecting…';
      kind = 'reconnecting';
      text = `Reconnecting… the connection to the price daemon was lost; showing the last known prices (${socket.statusDetail}).`;
      break;
    case 'error':
      state = 'error';
      label = 'Error';
      kind = 'error';
      text = `Connection error: ${socket.statusDetail || 'unknown'}.`;
      break;
    case 'closed':
      state = 'error';
      label = 'Closed';
      break;
    default:
      state = 'connecting';
      label = 'Connecting…';
  }
  pill.dataset.state = state;
  pill.textContent = label;
  banner.dataset.kind = kind;
  banner.textContent = text;
  banner.hidden = kind === '';
}

$('#detail-close').addEventListener('click', () => closeDetail(socket));
socket.on('status', showConnection);
socket.on('feed', showConnection);
socket.on('slow', showConnection);
socket.on('price', ({ key, data, changed }) => showPrice(key, data, changed));
socket.on('server-error', ({ code, message }) => console.warn(`price daemon: ${code}: ${message}`));

// ---- latency: exchange -> daemon and daemon -> this page ---------------------------------------------

const latencyBox = $('#latency');
const msFormat = new Intl.NumberFormat('en-IN', { maximumFractionDigits: 1 });
let latencyShownAt = 0;

// Milliseconds up to 10 s; beyond that (a replayed day's trade times) seconds, minutes or hours, so it stays readable.
function duration(ms) {
  const abs = Math.abs(ms);
  if (abs < 10_000) {
    return `${msFormat.format(ms)} ms`;
  }
  if (abs < 600_000) {
    return `${msFormat.format(ms / 1000)} s`;
  }
  return abs < 36_000_000 ? `${msFormat.format(ms / 60_000)} min` : `${msFormat.format(ms / 3_600_000)} h`;
}

function showLatency(sample) {
  // A few times a second is live enough, and keeps the figure readable.
  if (sample.at - latencyShownAt < 250) {
    return;
  }
  latencyShownAt = sample.at;
  latencyBox.querySelector('[data-leg="feed"]').textContent = sample.exchangeToDaemonMs === null ? '–' : duration(sample.exchangeToDaemonMs);
  latencyBox.querySelector('[data-leg="page"]').textContent = duration(sample.daemonToClientMs);
  latencyBox.hidden = false;
}

socket.on('latency', showLatency);

// ---- pushes: announcements and notifications ---------------------------------------------------------

const DISMISSED_KEY = 'board:dismissed-announcements';
const TOAST_MS = 8000;
const announcementsBox = $('#announcements');
const toasts = $('#toasts');

function dismissedIds() {
  try {
    return new Set(JSON.parse(localStorage.getItem(DISMISSED_KEY)) ?? []);
  } catch {
    return new Set();
  }
}

// The announcements in force, less those this browser dismissed; redrawn whole (there are only a few).
function showAnnouncements() {
  const dismissed = dismissedIds();
  announcementsBox.replaceChildren(...socket.announcementList.filter((a) => !dismissed.has(a.id)).map((a) => {
    const box = document.createElement('div');
    box.className = 'announcement';
    box.dataset.level = a.level;
    box.dataset.id = a.id;
    box.setAttribute('role', a.level === 'critical' ? 'alert' : 'status');
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = a.message;
    const close = document.createElement('button');
    close.className = 'dismiss';
    close.type = 'button';
    close.title = 'Dismiss';
    close.setAttribute('aria-label', 'Dismiss announcement');
    close.textContent = '×';
    close.addEventListener('click', () => {
      dismissed.add(a.id);
      try {
        localStorage.setItem(DISMISSED_KEY, JSON.stringify([...dismissed].slice(-50)));
      } catch {
        // private mode: dismissed for this page only
      }
      showAnnouncements();
    });
    box.append(text, close);
    return box;
  }));
}

// A toast: a kind line and a detail line, gone after TOAST_MS.
function toast(kindText, detailText, id) {
  const box = document.createElement('div');
  box.className = 'toast';
  box.dataset.id = id;
  box.setAttribute('role', 'status');
  const kind = document.createElement('div');
  kind.className = 'kind';
  kind.textContent = kindText;
  const detail = document.createElement('div');
  detail.className = 'detail';
  detail.textContent = detailText;
  box.append(kind, detail);
  toasts.append(box);
  setTimeout(() => box.remove(), TOAST_MS);
}

// A toast per notification; shown, then acked by the client when this handler returns.
function showNotification(notification) {
  toast(
    notification.kind.replaceAll('_', ' ') + (notification.replayed ? ' (while you were away)' : ''),
    notification.kind === 'price_alert' ? describeFired(notification.data)
      : typeof notification.data === 'object' && notification.data !== null
      ? Object.entries(notification.data).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ')
      : String(notification.data ?? ''),
    notification.id);
}

// Unusual volume (the volume_alerts channel) on the instruments this board shows.
function showVolumeAlert(key, data) {
  if (!rows.has(key)) {
    return;
  }
  const symbol = instruments.get(key)?.symbol ?? key.split('|').pop();
  toast('unusual volume',
    `${symbol}: ${volumeFormat.format(data.volume_1m)} traded in a minute, ${data.ratio.toFixed(1)}× the usual ${volumeFormat.format(data.baseline)}`,
    `volume-${key}-${data.timestamp}`);
}

socket.onAnnouncement(showAnnouncements);
socket.onNotification(showNotification);
socket.subscribeVolumeAlerts(null, showVolumeAlert);

// ---- price alerts: a bell on each row, the user's alerts beside the board ----------------------------------

const CONDITION_WORDS = { above: 'at or above', below: 'at or below', crosses_up: 'crosses up', crosses_down: 'crosses down', change_pct_above: 'day change ≥', change_pct_below: 'day change ≤' };
const alertEditor = $('#alert-editor');
const alertsBox = $('#alerts');

function bellButton(key) {
  const bell = document.createElement('button');
  bell.type = 'button';
  bell.className = 'bell';
  // Drawn, not an emoji: a machine without an emoji font would show a box.
  bell.innerHTML = '<svg viewBox="0 0 24 24" width="14" height="14" aria-hidden="true"><path fill="currentColor" d="M12 22a2 2 0 0 0 2-2h-4a2 2 0 0 0 2 2zm6-6v-5a6 6 0 0 0-5-5.9V4a1 1 0 0 0-2 0v1.1A6 6 0 0 0 6 11v5l-2 2v1h16v-1z"/></svg>';
  bell.title = 'Set a price alert';
  bell.setAttribute('aria-label', `Set a price alert for ${instruments.get(key)?.symbol ?? key}`);
  bell.addEventListener('click', () => openAlertEditor(key));
  return bell;
}

// One small form for the row whose bell was pressed: above or below a price, prefilled with the last price.
function openAlertEditor(key) {
  const symbol = instruments.get(key)?.symbol ?? key.split('|').pop();
  alertEditor.dataset.key = key;
  $('#alert-symbol').textContent = symbol;
  const last = socket.price(key)?.last_price;
  $('#alert-price').value = last ? String(last) : '';
  $('#alert-error').textContent = '';
  alertEditor.hidden = false;
  $('#alert-price').focus();
}

alertEditor?.addEventListener('submit', async (event) => {
  event.preventDefault();
  const price = Number($('#alert-price').value);
  const condition = $('#alert-condition').value;
  try {
    await socket.createAlert({ instrument_key: alertEditor.dataset.key, condition, price, note: $('#alert-note').value });
    alertEditor.hidden = true;
    $('#alert-note').value = '';
  } catch (error) {
    $('#alert-error').textContent = error.code === 'alert_limit' ? 'You have as many alerts as allowed: delete one first.' : error.message;
  }
});
$('#alert-cancel')?.addEventListener('click', () => { alertEditor.hidden = true; });

function describeAlert(alert) {
  const symbol = instruments.get(alert.instrument_key)?.symbol ?? alert.instrument_key.split('|').pop();
  const value = alert.percent !== undefined ? `${alert.percent} %` : priceFormat.format(alert.price);
  return `${symbol} ${CONDITION_WORDS[alert.condition] ?? alert.condition} ${value}`;
}

function describeFired(data) {
  const alert = { ...data };
  const parts = [`${describeAlert(alert)}: last ${priceFormat.format(data.last_price)}`];
  if (data.note) {
    parts.push(data.note);
  }
  return parts.join(' · ');
}

// The user's alerts, redrawn whole on every change (a user has at most a few dozen); rows with an armed alert ring.
function showAlerts(list) {
  alertsBox.hidden = list.length === 0;
  $('#alerts-list').replaceChildren(...list.map((alert) => {
    const li = document.createElement('li');
    li.dataset.id = alert.id;
    li.dataset.state = alert.state;
    const text = document.createElement('span');
    text.textContent = describeAlert(alert) + (alert.state === 'fired' ? ` · fired at ${priceFormat.format(alert.fired_price)}` : alert.state === 'resetting' ? ' · re-arming' : '');
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'remove';
    remove.textContent = '×';
    remove.title = 'Delete this alert';
    remove.addEventListener('click', () => socket.deleteAlert(alert.id).catch((error) => console.warn(error.message)));
    li.append(text, remove);
    return li;
  }));
  const armed = new Set(list.filter((a) => a.state !== 'fired').map((a) => a.instrument_key));
  for (const [key, row] of rows) {
    row.tr.querySelector('button.bell')?.classList.toggle('armed', armed.has(key));
  }
}

socket.on('alerts', showAlerts);
socket.watchAlerts(); // lists now and after every reconnect; a daemon with alerts off leaves the list empty

// ---- search -----------------------------------------------------------------------------------------

let matches = [];
let active = 0;

function search(text) {
  const query = text.trim().toLowerCase();
  if (query === '') {
    return [];
  }
  const found = [];
  for (const [key, info] of instruments) {
    if (rows.has(key)) {
      continue;
    }
    const symbol = info.symbol.toLowerCase();
    const rank = symbol === query ? 0 : symbol.startsWith(query) ? 1 : info.name.toLowerCase().includes(query) || symbol.includes(query) ? 2 : -1;
    if (rank >= 0) {
      found.push({ key, info, rank });
    }
  }
  found.sort((a, b) => a.rank - b.rank || a.info.symbol.localeCompare(b.info.symbol));
  return found.slice(0, 8);
}

function showResults() {
  matches = search(input.value);
  active = Math.min(active, Math.max(0, matches.length - 1));
  results.replaceChildren(
    ...matches.map((match, i) => {
      const li = document.createElement('li');
      li.classList.toggle('active', i === active);
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.key = match.key;
      const symbol = document.createElement('span');
      symbol.className = 'sym';
      symbol.textContent = match.info.symbol;
      const name = document.createElement('span');
      name.className = 'nm';
      name.textContent = match.info.name;
      button.append(symbol, name);
      button.addEventListener('click', () => pick(match.key));
      li.append(button);
      return li;
    }),
  );
  results.hidden = matches.length === 0;
}

function pick(key) {
  addRow(key);
  input.value = '';
  active = 0;
  showResults();
  input.focus();
}

input.addEventListener('input', () => {
  active = 0;
  showResults();
});
input.addEventListener('keydown', (event) => {
  if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    event.preventDefault();
    active = (active + (event.key === 'ArrowDown' ? 1 : -1) + matches.length) % Math.max(1, matches.length);
    showResults();
  } else if (event.key === 'Escape') {
    input.value = '';
    showResults();
  }
});
$('#search').addEventListener('submit', (event) => {
  event.preventDefault();
  if (matches[active]) {
    pick(matches[active].key);
  }
});

async function loadInstruments() {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetch('/api/instruments');
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      for (const item of await response.json()) {
        instruments.set(item.instrument_key, { symbol: item.symbol, name: item.name });
      }
      for (const key of rows.keys()) {
        describeRow(key);
      }
      showResults();
      return;
    } catch (error) {
      // The daemon may be restarting; the rows work without names, the search waits.
      console.warn('price daemon: /api/instruments failed, retrying', error);
      await new Promise((resolve) => setTimeout(resolve, Math.min(30000, 1000 * attempt)));
    }
  }
}

// ---- start ------------------------------------------------------------------------------------------

for (const key of loadRowKeys()) {
  addRow(key, { save: false });
}
showConnection();
loadInstruments();
