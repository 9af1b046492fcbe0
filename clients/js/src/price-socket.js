// price-socket.js: the browser client of PriceDaemon's /api/ws/prices. A dependency-free ES module, the main
// entry of the npm package @pricedaemon/client (clients/js/) and the same file the daemon serves at
// /price-socket.js (embedded from this source; there is no second copy).
//
//   import { PriceSocket } from '@pricedaemon/client';       // or 'http://HOST:PORT/price-socket.js'
//   const prices = new PriceSocket();                 // connects at once
//   const release = prices.subscribe(['NSE_EQ|INE002A01018']);
//   prices.on('price', ({ key, data }) => render(key, data));
//   prices.on('status', ({ status, detail }) => banner(status, detail));
//   release();                                          // drops this component's reference
//
// One socket serves a whole page: subscriptions are reference counted, so components subscribe and
// release independently and the daemon is told only when an instrument's first reference appears or its
// last one goes. The socket reconnects by itself and resubscribes everything it held.

const STORAGE_KEY = 'price-socket:v1:prices';
const MAX_STORED = 500;

/** Connection states, in the order a page usually sees them. */
export const ConnectionStatus = Object.freeze({
  connecting: 'connecting',
  connected: 'connected',
  reconnecting: 'reconnecting',
  error: 'error',
  closed: 'closed',
});

// Close codes by which the daemon refuses this client rather than going away: the client keeps retrying,
// slower, but the page shows an error instead of "reconnecting".
const REFUSED_CLOSE_CODES = new Set([1002, 1003, 1007, 1008, 1009, 1010, 1011]);

/**
 * Delay before reconnect attempt number `attempt` (1 = the first retry): `baseMs` grown by `factor` per
 * failed attempt up to `maxMs`, then spread by +/- `jitter` (a fraction) so that a thousand pages that
 * lost the same daemon do not all come back in the same millisecond.
 */
export function backoffDelay(attempt, { baseMs = 3000, maxMs = 30000, factor = 2, jitter = 0.2 } = {}, random = Math.random) {
  const grown = Math.min(maxMs, baseMs * Math.pow(factor, Math.max(0, attempt - 1)));
  const spread = grown * jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(Math.min(maxMs, grown + spread)));
}

/** The WebSocket URL of the daemon that served `location`, e.g. ws://127.0.0.1:8080/api/ws/prices. */
export function defaultUrl(location = globalThis.location) {
  if (!location) {
    throw new Error('price-socket: no location to derive the URL from; pass { url }');
  }
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/api/ws/prices`;
}

/**
 * Milliseconds since the Unix epoch of an ISO 8601 UTC time, keeping the microseconds Date.parse drops
 * (the daemon writes received_at with 6 fractional digits); NaN when it is not a time.
 */
export function parseTimeMs(text) {
  if (typeof text !== 'string') {
    return NaN;
  }
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(text);
  if (!match) {
    return Date.parse(text);
  }
  return Date.parse(`${match[1]}Z`) + (match[2] ? Number(`0.${match[2]}`) * 1000 : 0);
}

/**
 * Why a request to the daemon (createAlert, listAlerts, deleteAlert) failed: `code` is the daemon's error code
 * (alert_limit, unknown_alert, unknown_instrument, invalid_message, rate_limited, alerts_unavailable) or the client's
 * own: 'not_connected' (nothing was sent), 'connection_closed' (sent, but the socket closed before the answer: the
 * change may or may not have been made; listAlerts tells), 'timeout' (no answer within the request timeout).
 */
export class RequestError extends Error {
  constructor(code, message, req = undefined) {
    super(message);
    this.name = 'RequestError';
    this.code = code;
    this.req = req;
  }
}

function httpBase(wsUrl) {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = '';
  url.search = '';
  return url.origin;
}

function defaultStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // a sandboxed frame may throw on access
  }
}

/**
 * A reference-counted, self-reconnecting subscription to live prices.
 *
 * Options (all optional):
 * - url: the WebSocket endpoint; default: /api/ws/prices on the page's own host.
 * - token: a JWT for daemons in JWT mode; sent as ?token= (browsers cannot set headers on a WebSocket)
 *   and as a Bearer header on the REST fallback.
 * - reconnectDelayMs (3000), maxReconnectDelayMs (30000), backoffFactor (2), jitter (0.2): the retry policy.
 * - storage: where last prices persist between page loads (default localStorage; null for none).
 * - debug: log to the console; default localStorage.ws_debug === 'true'.
 * - connect (true): connect in the constructor.
 * - requestTimeoutMs (10000): how long createAlert, listAlerts and deleteAlert wait for the daemon's answer before
 *   rejecting with code 'timeout' (0: no timeout); each call may pass its own { timeoutMs }.
 * - timing (false): ask the daemon for its receive time on every price ("timing": true on subscribe); the
 *   client then keeps `latency` (exchange -> daemon and daemon -> client) and emits 'latency'.
 * - notify ('frame'): when onKey listeners (the React hooks) hear of a price change: 'frame', batched once
 *   per animation frame where requestAnimationFrame exists (at once elsewhere); 'sync', at once.
 * - WebSocket, fetch, setTimeout, clearTimeout, random, now, console: injectable for tests.
 */
export class PriceSocket {
  constructor(options = {}) {
    this._storage = options.storage === undefined ? defaultStorage() : options.storage;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._fetch = options.fetch ?? globalThis.fetch?.bind(globalThis);
    this._setTimeout = options.setTimeout ?? globalThis.setTimeout.bind(globalThis);
    this._clearTimeout = options.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
    this._random = options.random ?? Math.random;
    this._now = options.now ?? Date.now;
    this._console = options.console ?? globalThis.console;
    this._backoff = {
      baseMs: options.reconnectDelayMs ?? 3000,
      maxMs: options.maxReconnectDelayMs ?? 30000,
      factor: options.backoffFactor ?? 2,
      jitter: options.jitter ?? 0.2,
    };
    this.url = options.url ?? defaultUrl();
    this.token = options.token ?? null;
    this.debug = options.debug ?? this._readDebugFlag();

    this.status = ConnectionStatus.connecting;
    this.statusDetail = '';
    /** The daemon's feed status frame: { status: 'connected'|'disconnected'|'error', message }, or null until one arrives. */
    this.feed = null;
    this.epoch = null;
    /** Consecutive failed connection attempts; 0 while connected. */
    this.attempt = 0;
    // Flow control and timing: see "slow connection and latency" below.
    this.timing = options.timing === true;
    /** The daemon's slow_consumer warning in force: { message, intervalMs, since }, or null at full rate. */
    this.slow = null;
    /** The last latency sample (with timing on): { key, exchangeToDaemonMs, daemonToClientMs, at }, or null. */
    this.latency = null;

    this._refs = new Map(); // instrument key -> reference count
    this._prices = new Map(); // instrument key -> { data, epoch, stale }
    this._rejected = new Map(); // instrument key -> reason code from the last ack
    this._listeners = new Map(); // event name -> Set of callbacks
    this._frameListeners = new Map(); // server frame type -> Set of callbacks
    this._keyListeners = new Map(); // instrument key -> Set of callbacks (the React hooks' store)
    this._pendingAdd = new Set(); // deferred subscribes not yet sent
    this._pendingRemove = new Set(); // deferred unsubscribes not yet sent
    this._flushQueued = false;
    this._version = 0; // grows with every price change of any key
    // onKey listeners hear of changes once per animation frame where there are frames (a browser), at once
    // elsewhere; { notify: 'sync' } asks for at once everywhere.
    const frame = globalThis.requestAnimationFrame?.bind(globalThis);
    this._requestFrame = options.notify === 'sync' ? null : (options.requestAnimationFrame ?? frame ?? null);
    this._dirtyKeys = new Set();
    this._frameQueued = false;
    this._pendingFetch = new Set();
    // Pushes (notifications, announcements, topics): see "pushes" below.
    this._notificationHandlers = new Set();
    this._handled = new Set(); // notification ids handled on this page (a replay after a lost ack is acked again, not shown again)
    this._handledOrder = [];
    this._inFlight = new Map(); // notification id -> promise of its handlers' outcome, while they run
    this._acks = new Set(); // ids to ack at the end of the current task
    this._ackQueued = false;
    this.announcements = new Map(); // id -> announcement frame, while in force
    this.announcementList = []; // the same, as an array replaced on every change (a stable React snapshot)
    this._topics = new Map(); // topic -> { refs, seq, data, callbacks: Set }
    this._books = { depth: new Map(), book: new Map() }; // channel -> instrument key -> { refs, seq, data, callbacks: Set }
    this._candles = new Map(); // `${interval} ${key}` -> { key, interval, history, refs, seq, bars, forming, view, callbacks: Set }
    // Alerts and requests: see "alerts" below.
    this._requestTimeoutMs = options.requestTimeoutMs ?? 10000;
    this._requests = new Map(); // req id -> { answer, resolve, reject, timer }: requests the daemon has not answered yet
    this._requestSeq = 0;
    this._alertsById = new Map();
    this._alertWatchers = 0; // useAlerts components mounted: the list is loaded on every connect while there are any
    this._alertsWanted = false; // the page listed its alerts once: they are listed again after a reconnect
    /** The user's alerts as last heard of (after listAlerts, creates, deletes and fired price_alert notifications). */
    this.alertList = [];
    /** The same with whether a list has come and why the last one failed: { alerts, loaded, error }, replaced on every change. */
    this.alertsView = Object.freeze({ alerts: this.alertList, loaded: false, error: null });
    // volume_alerts: references to all ('*') and per key, the listeners, and what the daemon was last told it holds.
    this._volume = { all: 0, keys: new Map(), entries: new Set(), sent: { all: false, keys: new Set() }, queued: false };
    this._socket = null;
    this._retryTimer = null;
    this._resyncTimer = null;
    this._persistTimer = null;
    this._closed = false;

    this._loadStored();
    if (options.connect !== false) {
      this.connect();
    }
  }

  // ---- events -------------------------------------------------------------------------------------

  /**
   * Listens to one event; returns a function that stops listening. Events:
   * - 'status'  { status, detail, attempt, delayMs? }      connection state changes
   * - 'feed'    { status, message, epoch }                  the daemon's feed status frames
   * - 'price'   { key, data, stale }                        a new price, or a change of its stale flag
   * - 'subscribed' { instruments, rejected }                the daemon's ack
   * - 'server-error' { code, message, instruments }         an error frame from the daemon
   * - 'announcement' { id, level, message, expires_at }     an announcement; { id, removed: true } when withdrawn
   * - 'slow'    { slow, message, intervalMs? }               the daemon downsampled this connection (slow: true) or
   *                                                          returned it to full rate (slow: false)
   * - 'latency' { key, exchangeToDaemonMs, daemonToClientMs, at }  each price, with the timing option on
   */
  on(event, callback) {
    let set = this._listeners.get(event);
    if (!set) {
      set = new Set();
      this._listeners.set(event, set);
    }
    set.add(callback);
    return () => set.delete(callback);
  }

  /**
   * Listens to every server frame of one `type` (e.g. 'price_update', 'subscribed', or a channel of DESIGN.md
   * "Beyond prices" such as 'depth' or 'notification'), after the client has applied it; returns a function
   * that stops listening. Frames of types this client does not know are delivered here too, so a page can
   * use a channel the daemon added before this library names it.
   */
  onFrame(type, callback) {
    let set = this._frameListeners.get(type);
    if (!set) {
      set = new Set();
      this._frameListeners.set(type, set);
    }
    set.add(callback);
    return () => set.delete(callback);
  }

  /**
   * Calls `callback()` whenever the price (or stale flag) of `key` changes; returns a function that stops.
   * This is the store contract of React's useSyncExternalStore: pair it with priceSnapshot(key).
   */
  onKey(key, callback) {
    let set = this._keyListeners.get(key);
    if (!set) {
      set = new Set();
      this._keyListeners.set(key, set);
    }
    set.add(callback);
    return () => {
      set.delete(callback);
      if (set.size === 0 && this._keyListeners.get(key) === set) {
        this._keyListeners.delete(key);
      }
    };
  }

  // ---- pushes ------------------------------------------------------------------------------------------

  /**
   * Calls `handler(notification)` for each notification for this page's user (trade confirmations, fired
   * alerts: { id, kind, created_at, data, replayed? }), then acks it to the daemon, which then stops keeping
   * it. The ack goes only after every handler returned (a returned promise is awaited); a handler that throws
   * or rejects leaves the notification unacked, so the daemon delivers it again on the next connect. An id
   * already handled on this page is acked again without calling handlers (its ack may have been lost).
   * Returns a function that stops listening. With no handler, nothing is acked: the daemon keeps them.
   */
  onNotification(handler) {
    this._notificationHandlers.add(handler);
    return () => this._notificationHandlers.delete(handler);
  }

  /**
   * Calls `callback(announcement)` for each announcement to every user ({ id, level, message, expires_at }), and
   * `callback({ id, removed: true })` when the daemon withdraws one. `this.announcements` holds those in force.
   */
  onAnnouncement(callback) {
    return this.on('announcement', callback);
  }

  /**
   * Holds `topics` (e.g. 'leaderboard'), reference counted like instruments: the daemon sends the current value
   * at once and each new one after (latest wins). `callback(topic, data, seq)` hears every value of these topics
   * from then on, starting with the one already here. Returns a function that releases them.
   */
  subscribeTopic(topics, callback) {
    const names = normalizeKeys(topics);
    const added = holdEntries(this._topics, names, callback);
    if (added.length > 0) {
      this._send({ action: 'subscribe', channel: 'topic', topics: added });
    }
    return once(() => {
      const gone = releaseEntries(this._topics, names, callback);
      if (gone.length > 0) {
        this._send({ action: 'unsubscribe', channel: 'topic', topics: gone });
      }
    });
  }

  /** The last value of a held topic, or undefined. */
  topic(name) {
    return this._topics.get(name)?.data;
  }

  /**
   * Holds the `interval` bars ('1m', '5m', '15m', '1h', '1d') of one instrument, reference counted: the daemon sends
   * the last `history` closed bars (at most 1000) once, then the forming bar at the throttle rate and each bar once
   * more with `closed: true` when its interval ends. `callback({ type, instrument_key, interval, bars, forming, bar })`
   * hears the history (`type: 'history'`, `bars` oldest first) and every bar after (`type: 'candle'`, `bar`), starting
   * with what is already here. Resubscribed after a reconnect, with fresh history. Returns a function that releases it.
   */
  subscribeCandles(key, interval, options = {}, callback = undefined) {
    if (typeof options === 'function') {
      callback = options;
      options = {};
    }
    const history = Math.max(0, Math.min(1000, Math.floor(options.history ?? 200)));
    const id = `${interval} ${key}`;
    let entry = this._candles.get(id);
    if (!entry) {
      entry = { key, interval, history, refs: 0, seq: -1, bars: [], forming: null, view: null, callbacks: new Set() };
      this._candles.set(id, entry);
    }
    entry.refs += 1;
    if (callback) {
      entry.callbacks.add(callback);
      if (entry.view) {
        callback({ type: 'history', instrument_key: key, interval, ...entry.view });
      }
    }
    if (entry.refs === 1) {
      this._send(candlesMessage('subscribe', entry));
    }
    let released = false;
    return () => {
      if (released) {
        return;
      }
      released = true;
      if (callback) {
        entry.callbacks.delete(callback);
      }
      entry.refs -= 1;
      if (entry.refs <= 0 && this._candles.get(id) === entry) {
        this._candles.delete(id);
        this._send({ action: 'unsubscribe', channel: 'candles', interval, instruments: [key] });
      }
    };
  }

  /** The held bars of an instrument at an interval: `{ bars, forming }` (closed bars oldest first), or undefined. */
  candles(key, interval) {
    return this._candles.get(`${interval} ${key}`)?.view ?? undefined;
  }

  _candleChanged(entry, event) {
    entry.view = { bars: entry.bars, forming: entry.forming };
    const detail = { type: event.type, instrument_key: entry.key, interval: entry.interval, bars: entry.bars, forming: entry.forming, bar: event.bar };
    for (const callback of [...entry.callbacks]) {
      try {
        callback(detail);
      } catch (error) {
        this._console?.error?.(error);
      }
    }
  }

  // ---- depth and book ----

  /**
   * Holds the order book of `keys`, reference counted like prices: the best 5 levels a side (channel 'depth'), or
   * with `{ levels: 30 }` (or `{ book: true }`) up to 30 (channel 'book'). `callback(key, data, seq)` hears each book,
   * starting with the one already here; `data` is `{ bids: [[price, quantity, orders], ...], asks, timestamp, seq,
   * source, stale? }`, bids best (highest) first, asks best (lowest) first. Resubscribed after every reconnect.
   * Returns a function that releases them.
   */
  subscribeDepth(keys, callback, options = {}) {
    const channel = depthChannel(options);
    const held = this._books[channel];
    const names = normalizeKeys(keys);
    const added = holdEntries(held, names, callback);
    if (added.length > 0) {
      this._send({ action: 'subscribe', channel, instruments: added });
    }
    return once(() => {
      const gone = releaseEntries(held, names, callback);
      if (gone.length > 0) {
        this._send({ action: 'unsubscribe', channel, instruments: gone });
      }
    });
  }

  /** The last book of a held instrument (`{ levels: 30 }` for the book channel), or undefined. */
  depth(key, options = {}) {
    return this._books[depthChannel(options)].get(key)?.data;
  }

  // Sends every held depth and book subscription again (after a reconnect or a rate limit).
  _resubscribeBooks(fresh) {
    for (const [channel, held] of Object.entries(this._books)) {
      if (held.size === 0) {
        continue;
      }
      if (fresh) {
        // Books are not stored: a restarted daemon's seq starts again, so the first book after a reconnect is taken.
        for (const entry of held.values()) {
          entry.seq = -1;
        }
      }
      this._send({ action: 'subscribe', channel, instruments: [...held.keys()] });
    }
  }

  _acceptBook(channel, message) {
    const data = message.data;
    const entry = this._books[channel].get(message.instrument_key);
    if (!entry || !data || !Array.isArray(data.bids) || !Array.isArray(data.asks) || typeof data.seq !== 'number') {
      return;
    }
    // Never an older book after a newer one; the same book again only when its freshness changed.
    if (data.seq < entry.seq || (data.seq === entry.seq && (data.stale === true) === (entry.data?.stale === true))) {
      return;
    }
    entry.seq = data.seq;
    entry.data = data;
    for (const callback of [...entry.callbacks]) {
      try {
        callback(message.instrument_key, data, data.seq);
      } catch (error) {
        this._console?.error?.(error);
      }
    }
  }

  // ---- alerts ----

  /**
   * Sets a price alert: { instrument_key, condition, price | percent, repeat?, note? } with condition one of above,
   * below, crosses_up, crosses_down (price) or change_pct_above, change_pct_below (percent). Resolves with the alert
   * once the daemon stored it; rejects with a RequestError whose `code` is the daemon's (alert_limit, ...) or the
   * client's (not_connected, connection_closed, timeout). Answers are matched by a request id the daemon echoes
   * ("req"), so concurrent calls each get their own answer whatever order they come in.
   */
  createAlert(alert, options = undefined) {
    return this._request({ ...alert, action: 'alert_create' }, 'alert_created', options);
  }

  /** The user's alerts with their state (armed, resetting, fired; fired_at, fired_price); also kept in `alertList`. */
  listAlerts(options = undefined) {
    this._alertsWanted = true;
    const listing = this._request({ action: 'alert_list' }, 'alerts', options);
    listing.catch((error) => {
      if (error.code !== 'connection_closed' && error.code !== 'not_connected') {
        this._alertsChanged(error); // e.g. alerts_unavailable: the page can say so (listed again on the next connect)
      }
    });
    return listing;
  }

  /** Deletes one of the user's alerts; resolves with its id. */
  deleteAlert(id, options = undefined) {
    return this._request({ action: 'alert_delete', id }, 'alert_deleted', options);
  }

  /**
   * Keeps `alertList` current while held (what useAlerts does): lists the alerts now (or on connect) unless they are
   * here already, and again after every reconnect. Returns a function that releases it.
   */
  watchAlerts() {
    this._alertWatchers += 1;
    if (!this.alertsView.loaded && this._isOpen()) {
      this._refreshAlerts();
    }
    return once(() => {
      this._alertWatchers -= 1;
    });
  }

  /**
   * Hears unusual-volume alerts for `keys` (null or omitted: every instrument): `callback(key, data)` with data
   * { volume_1m, baseline, ratio, timestamp }. Reference counted per key like prices, and told to the daemon at the
   * end of the task as the difference from what it holds (StrictMode's mount, unmount and mount again send one
   * subscribe); held across reconnects. Returns a function that stops.
   */
  subscribeVolumeAlerts(keys, callback) {
    const volume = this._volume;
    const all = keys === null || keys === undefined;
    const list = all ? [] : normalizeKeys(keys);
    const entry = { all, keys: new Set(list), callback };
    volume.entries.add(entry);
    volume.all += all ? 1 : 0;
    for (const key of list) {
      volume.keys.set(key, (volume.keys.get(key) ?? 0) + 1);
    }
    this._queueVolumeSync();
    return once(() => {
      volume.entries.delete(entry);
      volume.all -= all ? 1 : 0;
      for (const key of list) {
        const count = (volume.keys.get(key) ?? 1) - 1;
        if (count > 0) {
          volume.keys.set(key, count);
        } else {
          volume.keys.delete(key);
        }
      }
      this._queueVolumeSync();
    });
  }

  // Sends an alert_* message with a fresh request id; settled by the answer or error that echoes it, by the socket's
  // close, or by the timeout. Nothing is queued while disconnected: the caller hears not_connected at once.
  _request(message, answer, { timeoutMs = this._requestTimeoutMs } = {}) {
    if (!this._isOpen()) {
      return Promise.reject(new RequestError('not_connected', 'not connected to the daemon; try again once connected'));
    }
    const req = `r${++this._requestSeq}`;
    return new Promise((resolve, reject) => {
      const request = { answer, resolve, reject, timer: null };
      if (Number.isFinite(timeoutMs) && timeoutMs > 0) {
        request.timer = this._setTimeout(() => {
          if (this._requests.get(req) === request) {
            this._requests.delete(req);
            reject(new RequestError('timeout', `the daemon did not answer ${message.action} within ${timeoutMs} ms`, req));
          }
        }, timeoutMs);
      }
      this._requests.set(req, request);
      this._send({ ...message, req });
    });
  }

  // The request `frame.req` names, taken out of those waiting (undefined: not ours, or already settled).
  _takeRequest(frame) {
    const request = typeof frame.req === 'string' ? this._requests.get(frame.req) : undefined;
    if (request) {
      this._requests.delete(frame.req);
      if (request.timer !== null) {
        this._clearTimeout(request.timer);
      }
    }
    return request;
  }

  _answer(frame, value) {
    const request = this._takeRequest(frame);
    if (!request) {
      return;
    }
    if (request.answer === frame.type) {
      request.resolve(value);
    } else {
      request.reject(new RequestError('unexpected_answer', `expected ${request.answer}, got ${frame.type}`, frame.req));
    }
  }

  _rejectRequests(code, message) {
    const waiting = [...this._requests];
    this._requests.clear();
    for (const [req, request] of waiting) {
      if (request.timer !== null) {
        this._clearTimeout(request.timer);
      }
      request.reject(new RequestError(code, message, req));
    }
  }

  // One alert_list in flight at a time: StrictMode's double mount, or a watcher and a reconnect together, ask once.
  _refreshAlerts() {
    const listing = [...this._requests.values()].some((request) => request.answer === 'alerts');
    if (!listing && this._isOpen()) {
      this.listAlerts().catch((error) => this._log('could not list alerts', error.code, error.message));
    }
  }

  _alertsChanged(error = this.alertsView.error) {
    this.alertList = [...this._alertsById.values()];
    this.alertsView = Object.freeze({ alerts: this.alertList, loaded: this.alertsView.loaded, error });
    this._emit('alerts', this.alertList);
  }

  _setAlerts(alerts) {
    this._alertsById = new Map(alerts.filter((alert) => typeof alert?.id === 'string').map((alert) => [alert.id, alert]));
    this.alertsView = Object.freeze({ ...this.alertsView, loaded: true });
    this._alertsChanged(null);
  }

  // A fired alert arrives as a price_alert notification: the list shows it fired without asking again.
  _alertFired(message) {
    const data = message.data;
    const alert = message.kind === 'price_alert' && data ? this._alertsById.get(data.alert_id) : undefined;
    if (alert && (data.fire_count ?? 0) > (alert.fire_count ?? 0)) {
      this._alertsById.set(alert.id, { ...alert, state: alert.repeat ? 'resetting' : 'fired', fire_count: data.fire_count, fired_at: data.fired_at, fired_price: data.last_price });
      this._alertsChanged();
    }
  }

  // Everything held on the volume_alerts channel, asked for again (a new connection holds nothing; after a rate limit
  // what was applied is unknown, and subscribing again is harmless).
  _resubscribeVolume() {
    this._volume.sent = { all: false, keys: new Set() };
    this._syncVolume();
  }

  _queueVolumeSync() {
    if (!this._volume.queued) {
      this._volume.queued = true;
      queueMicrotask(() => {
        this._volume.queued = false;
        this._syncVolume();
      });
    }
  }

  // Tells the daemon the difference between what the page holds on the volume_alerts channel and what it was told.
  // While every instrument is held, named ones need no message of their own.
  _syncVolume() {
    if (!this._isOpen()) {
      return; // the next connection is told everything
    }
    const volume = this._volume;
    const sent = volume.sent;
    if (volume.all > 0) {
      if (!sent.all) {
        this._send({ action: 'subscribe', channel: 'volume_alerts', instruments: ['*'] });
        sent.all = true;
      }
      return;
    }
    if (sent.all) {
      // The daemon's unsubscribe of all drops named instruments too: those still held are asked for again below.
      this._send({ action: 'unsubscribe', channel: 'volume_alerts' });
      volume.sent = { all: false, keys: new Set() };
    }
    const told = volume.sent.keys;
    const gone = [...told].filter((key) => !volume.keys.has(key));
    if (gone.length > 0) {
      this._send({ action: 'unsubscribe', channel: 'volume_alerts', instruments: gone });
      gone.forEach((key) => told.delete(key));
    }
    const added = [...volume.keys.keys()].filter((key) => !told.has(key));
    if (added.length > 0) {
      this._send({ action: 'subscribe', channel: 'volume_alerts', instruments: added });
      added.forEach((key) => told.add(key));
    }
  }

  async _handleNotification(message) {
    if (this._handled.has(message.id)) {
      this._ack(message.id);
      return;
    }
    const inFlight = this._inFlight.get(message.id);
    if (inFlight) {
      // The same id again (live and replayed while connecting) while its handlers still run: its outcome decides.
      if (await inFlight) {
        this._ack(message.id);
      }
      return;
    }
    if (this._notificationHandlers.size === 0) {
      return; // nobody showed it: the daemon keeps it for a page that will
    }
    const run = (async () => {
      for (const handler of [...this._notificationHandlers]) {
        await handler(message);
      }
    })().then(() => true, (error) => {
      this._log('a notification handler failed; not acked, the daemon delivers it again', message.id, error);
      return false;
    });
    this._inFlight.set(message.id, run);
    const handled = await run;
    this._inFlight.delete(message.id);
    if (!handled) {
      return;
    }
    this._handled.add(message.id);
    this._handledOrder.push(message.id);
    if (this._handledOrder.length > 1000) {
      this._handled.delete(this._handledOrder.shift());
    }
    this._ack(message.id);
  }

  // Acks go in one message per task: a replay of many notifications is acked at once.
  _ack(id) {
    this._acks.add(id);
    if (this._ackQueued) {
      return;
    }
    this._ackQueued = true;
    queueMicrotask(() => {
      this._ackQueued = false;
      const ids = [...this._acks];
      this._acks.clear();
      if (ids.length > 0 && this._isOpen()) {
        this._send({ action: 'ack', ids });
      }
      // Not open: not acked; the daemon replays them on the next connect and they are acked then.
    });
  }

  _emitFrame(message) {
    const set = this._frameListeners.get(message.type);
    if (!set) {
      return;
    }
    for (const callback of [...set]) {
      try {
        callback(message);
      } catch (error) {
        this._console?.error?.('price-socket: frame listener failed', error);
      }
    }
  }

  _emitKey(key) {
    this._version++;
    if (!this._keyListeners.has(key)) {
      return;
    }
    if (this._requestFrame) {
      // Per key, at most one notification a frame: a row whose price ticked three times since the last paint
      // renders once, and a page showing 500 keys renders once a frame, not once a message.
      this._dirtyKeys.add(key);
      if (!this._frameQueued) {
        this._frameQueued = true;
        this._requestFrame(() => this._flushKeys());
      }
      return;
    }
    this._notifyKey(key);
  }

  _flushKeys() {
    this._frameQueued = false;
    const keys = [...this._dirtyKeys];
    this._dirtyKeys.clear();
    for (const key of keys) {
      this._notifyKey(key);
    }
  }

  _notifyKey(key) {
    const set = this._keyListeners.get(key);
    if (!set) {
      return;
    }
    for (const callback of [...set]) {
      try {
        callback();
      } catch (error) {
        this._console?.error?.('price-socket: listener failed', error);
      }
    }
  }

  _emit(event, detail) {
    const set = this._listeners.get(event);
    if (!set) {
      return;
    }
    for (const callback of [...set]) {
      try {
        callback(detail);
      } catch (error) {
        // One broken listener must not starve the others, nor kill the socket's message handler.
        this._console?.error?.('price-socket: listener failed', error);
      }
    }
  }

  _log(...args) {
    if (this.debug) {
      this._console?.log?.('[price-socket]', ...args);
    }
  }

  _readDebugFlag() {
    try {
      return this._storage?.getItem('ws_debug') === 'true' || defaultStorage()?.getItem('ws_debug') === 'true';
    } catch {
      return false;
    }
  }

  // ---- subscriptions ------------------------------------------------------------------------------

  /**
   * Adds one reference to each key. The daemon hears only about keys whose first reference this is.
   * Returns a function that releases exactly these references, once, however often it is called.
   *
   * With `{ deferred: true }` (what the React hooks use) the daemon is told at the end of the current task
   * (a microtask), in one message for all changes made meanwhile: a component tree mounting a hundred rows
   * sends one subscribe, and a release followed by a new reference to the same key (React StrictMode's
   * double mount, a re-keyed row) sends nothing at all.
   */
  subscribe(keys, { deferred = false } = {}) {
    const list = normalizeKeys(keys);
    const added = [];
    for (const key of list) {
      const count = this._refs.get(key) ?? 0;
      this._refs.set(key, count + 1);
      if (count === 0) {
        added.push(key);
      }
    }
    if (added.length > 0) {
      if (deferred) {
        for (const key of added) {
          if (!this._pendingRemove.delete(key)) {
            this._pendingAdd.add(key);
          }
        }
        this._queueFlush();
      } else {
        for (const key of added) {
          this._pendingRemove.delete(key);
          this._pendingAdd.delete(key);
        }
        this._log('subscribe', added);
        this._send({ action: 'subscribe', instruments: added });
      }
      this._fetchMissing(added);
    }
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.unsubscribe(list, { deferred });
      }
    };
  }

  /** Drops one reference from each key; the daemon hears only about keys whose last reference this was. */
  unsubscribe(keys, { deferred = false } = {}) {
    const removed = [];
    for (const key of normalizeKeys(keys)) {
      const count = this._refs.get(key) ?? 0;
      if (count <= 1) {
        if (count === 1) {
          removed.push(key);
        }
        this._refs.delete(key);
        this._rejected.delete(key);
      } else {
        this._refs.set(key, count - 1);
      }
    }
    if (removed.length > 0) {
      if (deferred) {
        for (const key of removed) {
          if (!this._pendingAdd.delete(key)) {
            this._pendingRemove.add(key);
          }
        }
        this._queueFlush();
      } else {
        const now = removed.filter((key) => !this._pendingAdd.delete(key));
        if (now.length > 0) {
          this._log('unsubscribe', now);
          this._send({ action: 'unsubscribe', instruments: now });
        }
      }
    }
  }

  _queueFlush() {
    if (this._flushQueued) {
      return;
    }
    this._flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  /** Sends the deferred subscription changes now (they are otherwise sent at the end of the task). */
  flush() {
    this._flushQueued = false;
    const add = [...this._pendingAdd];
    const remove = [...this._pendingRemove];
    this._pendingAdd.clear();
    this._pendingRemove.clear();
    if (remove.length > 0) {
      this._log('unsubscribe', remove);
      this._send({ action: 'unsubscribe', instruments: remove });
    }
    if (add.length > 0) {
      this._log('subscribe', add);
      this._send({ action: 'subscribe', instruments: add });
    }
  }

  /** The keys with at least one reference. */
  get subscriptions() {
    return [...this._refs.keys()];
  }

  refCount(key) {
    return this._refs.get(key) ?? 0;
  }

  /** Keys the daemon refused in its last ack, with the reason code (e.g. unknown_instrument). */
  get rejected() {
    return new Map(this._rejected);
  }

  // ---- prices -------------------------------------------------------------------------------------

  /** The last known price of one instrument: the daemon's `data` plus `stale`, or undefined. */
  price(key) {
    const entry = this._prices.get(key);
    return entry ? { ...entry.data, stale: entry.stale } : undefined;
  }

  /**
   * The last known price of one instrument as an immutable snapshot: the same object until that price (or
   * its stale flag) changes, so `Object.is` tells a change (React's useSyncExternalStore needs exactly this).
   * undefined when none is known.
   */
  priceSnapshot(key) {
    const entry = this._prices.get(key);
    if (!entry) {
      return undefined;
    }
    if (!entry.view) {
      entry.view = Object.freeze({ ...entry.data, stale: entry.stale });
    }
    return entry.view;
  }

  /** A number that grows whenever any price changes (for stores that watch the whole map). */
  get version() {
    return this._version;
  }

  /** All last known prices as a plain object, key -> data (with `stale`). */
  prices() {
    const result = {};
    for (const [key, entry] of this._prices) {
      result[key] = { ...entry.data, stale: entry.stale };
    }
    return result;
  }

  _accept(key, data, epoch, stale) {
    const current = this._prices.get(key);
    if (current && current.epoch === epoch && epoch !== null && typeof data.seq === 'number' && typeof current.data.seq === 'number') {
      if (data.seq < current.data.seq) {
        return; // an older price than the one shown: never go back in time
      }
      if (data.seq === current.data.seq) {
        // The same price again (a snapshot after a reconnect): only its freshness may have changed.
        if (current.stale !== stale) {
          current.stale = stale;
          current.view = null;
          this._emitKey(key);
          this._emit('price', { key, data: { ...current.data, stale }, stale, changed: false });
        }
        return;
      }
    }
    this._prices.set(key, { data, epoch, stale, view: null });
    this._schedulePersist();
    this._emitKey(key);
    this._emit('price', { key, data: { ...data, stale }, stale, changed: true });
  }

  _markAllStale() {
    for (const [key, entry] of this._prices) {
      if (!entry.stale) {
        entry.stale = true;
        entry.view = null;
        this._emitKey(key);
        this._emit('price', { key, data: { ...entry.data, stale: true }, stale: true, changed: false });
      }
    }
  }

  _loadStored() {
    if (!this._storage) {
      return;
    }
    try {
      const stored = JSON.parse(this._storage.getItem(STORAGE_KEY) ?? '{}');
      for (const [key, entry] of Object.entries(stored)) {
        if (entry && entry.data && typeof entry.data.last_price === 'number') {
          // Whatever was stored is older than this page: it is served, but as stale.
          this._prices.set(key, { data: entry.data, epoch: entry.epoch ?? null, stale: true, view: null });
        }
      }
    } catch (error) {
      this._log('ignoring unreadable stored prices', error);
    }
  }

  _schedulePersist() {
    if (!this._storage || this._persistTimer !== null) {
      return;
    }
    // At most one write a second: localStorage is synchronous and prices can change many times a second.
    this._persistTimer = this._setTimeout(() => {
      this._persistTimer = null;
      this._persist();
    }, 1000);
  }

  _persist() {
    if (!this._storage) {
      return;
    }
    const out = {};
    let n = 0;
    for (const [key, entry] of this._prices) {
      if (n++ >= MAX_STORED) {
        break;
      }
      out[key] = { data: entry.data, epoch: entry.epoch };
    }
    try {
      this._storage.setItem(STORAGE_KEY, JSON.stringify(out));
    } catch (error) {
      this._log('could not store prices', error);
    }
  }

  /** Asks REST for instruments the cache lacks while no socket can answer with a snapshot. */
  _fetchMissing(keys) {
    if (!this._fetch || this._isOpen()) {
      return;
    }
    const base = httpBase(this.url);
    for (const key of keys) {
      if (this._prices.has(key) || this._pendingFetch.has(key)) {
        continue;
      }
      this._pendingFetch.add(key);
      const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
      Promise.resolve()
        .then(() => this._fetch(`${base}/api/prices/${encodeURIComponent(key)}`, { headers }))
        .then((response) => (response.ok ? response.json() : null))
        .then((body) => {
          // The socket may have delivered something meanwhile; REST never overrides it.
          if (body && body.data && !this._prices.has(key)) {
            this._log('price from REST', key, body.data);
            this._accept(key, body.data, null, body.data.stale === true || !this._isOpen());
          }
        })
        .catch((error) => this._log('REST price failed', key, error))
        .finally(() => this._pendingFetch.delete(key));
    }
  }

  // ---- connection ---------------------------------------------------------------------------------

  connect() {
    if (this._closed || this._socket) {
      return;
    }
    this._clearRetry();
    let url = this.url;
    if (this.token) {
      url += (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(this.token);
    }
    this._log('connecting', this.url, 'attempt', this.attempt + 1);
    let socket;
    try {
      socket = new this._WebSocket(url);
    } catch (error) {
      this._setStatus(ConnectionStatus.error, String(error?.message ?? error));
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.onopen = () => this._onOpen(socket);
    socket.onmessage = (event) => this._onMessage(socket, event);
    socket.onerror = () => this._log('socket error');
    socket.onclose = (event) => this._onClose(socket, event);
  }

  /** Closes the socket for good; nothing reconnects after this. */
  close() {
    this._closed = true;
    this._clearRetry();
    if (this._resyncTimer) {
      this._clearTimeout(this._resyncTimer);
      this._resyncTimer = null;
    }
    if (this._persistTimer !== null) {
      this._clearTimeout(this._persistTimer);
      this._persistTimer = null;
      this._persist();
    }
    const socket = this._socket;
    this._socket = null;
    this._rejectRequests('connection_closed', 'the socket was closed before the daemon answered');
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      try {
        socket.close(1000, 'client closed');
      } catch {
        // already closing
      }
    }
    this._setStatus(ConnectionStatus.closed, '');
  }

  _isOpen() {
    return this._socket !== null && this._socket.readyState === 1;
  }

  _send(message) {
    if (this._isOpen()) {
      // The daemon keeps "timing" per connection; sent on every price subscribe, a new connection gets it too.
      const timed = this.timing && message.action === 'subscribe' && message.channel === undefined;
      this._socket.send(JSON.stringify(timed ? { ...message, timing: true } : message));
    }
    // Otherwise nothing is lost: every referenced key is sent again when the socket opens.
  }

  // A rate-limited change was not applied: once the daemon allows changes again, send everything still
  // referenced in one message (subscribing a key twice is harmless), so the page gets what it asked for.
  _resyncAfter(ms) {
    if (this._resyncTimer) {
      return;
    }
    this._resyncTimer = this._setTimeout(() => {
      this._resyncTimer = null;
      const keys = this.subscriptions;
      if (keys.length > 0) {
        this._log('resubscribe after rate limit', keys);
        this._send({ action: 'subscribe', instruments: keys });
      }
      if (this._topics.size > 0) {
        this._send({ action: 'subscribe', channel: 'topic', topics: [...this._topics.keys()] });
      }
      this._resubscribeBooks(false);
      for (const entry of this._candles.values()) {
        this._send(candlesMessage('subscribe', entry));
      }
      this._resubscribeVolume();
    }, Math.max(0, ms) + 50);
  }

  _onOpen(socket) {
    if (socket !== this._socket) {
      return;
    }
    this.attempt = 0;
    this._setSlow(null, ''); // a new connection starts at full rate
    this._pendingAdd.clear(); // everything referenced is sent just below;
    this._pendingRemove.clear(); // and this new session holds nothing else
    this._setStatus(ConnectionStatus.connected, '');
    const keys = this.subscriptions;
    if (keys.length > 0) {
      this._log('resubscribe', keys);
      this._send({ action: 'subscribe', instruments: keys });
    }
    if (this._topics.size > 0) {
      // A topic's seq starts again when the daemon restarts (topics have no epoch): after a reconnect the
      // first value is taken whatever its seq, so a restarted daemon's values are not all "older".
      for (const topic of this._topics.values()) {
        topic.seq = -1;
      }
      this._send({ action: 'subscribe', channel: 'topic', topics: [...this._topics.keys()] });
    }
    this._resubscribeBooks(true);
    for (const entry of this._candles.values()) {
      // Bars are versioned per daemon run: the first after a reconnect is taken whatever its seq, and the history
      // sent again replaces what was held, so bars closed while disconnected are not missing.
      entry.seq = -1;
      this._send(candlesMessage('subscribe', entry));
    }
    this._resubscribeVolume();
    if (this._alertWatchers > 0 || this._alertsWanted) {
      // A user's alerts may have fired meanwhile, and a connection's own alerts went with the old connection.
      this._refreshAlerts();
    }
    if (this.announcements.size > 0) {
      this.announcements.clear(); // the daemon sends those in force again on every connect
      this.announcementList = [];
      this._emit('announcement', { removed: true, all: true });
    }
  }

  _onMessage(socket, event) {
    if (socket !== this._socket) {
      return;
    }
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      this._log('ignoring a frame that is not JSON', event.data);
      return;
    }
    if (typeof message?.type !== 'string') {
      this._log('ignoring a frame without a type', message);
      return;
    }
    const handler = FRAME_HANDLERS[message.type];
    // A handler returns false for a malformed frame, which then reaches no listener.
    if (handler && handler.call(this, message) === false) {
      return;
    }
    if (!handler) {
      this._log('frame of type', message.type, 'has no built-in handler');
    }
    this._emitFrame(message);
  }

  _onClose(socket, event) {
    if (socket !== this._socket) {
      return;
    }
    this._socket = null;
    this._rejectRequests('connection_closed', 'the connection closed before the daemon answered; the change may or may not have been made');
    this._markAllStale();
    if (this._closed) {
      return;
    }
    const code = event?.code ?? 1006;
    const reason = event?.reason ?? '';
    this._log('closed', code, reason);
    if (REFUSED_CLOSE_CODES.has(code)) {
      this._scheduleReconnect(ConnectionStatus.error, `the daemon closed the connection: ${reason || 'code ' + code}`);
    } else {
      this._scheduleReconnect();
    }
  }

  _scheduleReconnect(status = ConnectionStatus.reconnecting, detail = '') {
    this.attempt += 1;
    const delayMs = backoffDelay(this.attempt, this._backoff, this._random);
    this._setStatus(status, detail || `retrying in ${Math.round(delayMs / 100) / 10} s`, delayMs);
    this._fetchMissing(this.subscriptions);
    this._clearRetry();
    this._retryTimer = this._setTimeout(() => {
      this._retryTimer = null;
      this.connect();
    }, delayMs);
  }

  _clearRetry() {
    if (this._retryTimer !== null) {
      this._clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
  }

  // ---- slow connection and latency --------------------------------------------------------------------

  /**
   * Turns the daemon's receive time on or off for this connection (and every later one). Sent as a price
   * subscribe of no instruments, which counts as one subscription change against the daemon's rate limit.
   */
  setTiming(on) {
    this.timing = on === true;
    if (this._isOpen()) {
      this._socket.send(JSON.stringify({ action: 'subscribe', instruments: [], timing: this.timing }));
    }
    if (!this.timing) {
      this.latency = null;
    }
  }

  _setSlow(slow, message) {
    if (slow === null && this.slow === null) {
      return;
    }
    this.slow = slow;
    this._log(slow ? 'slow connection' : 'full rate again', message);
    this._emit('slow', slow ? { slow: true, ...slow } : { slow: false, message });
  }

  _recordLatency(key, data) {
    const received = parseTimeMs(data.received_at);
    if (!Number.isFinite(received)) {
      return;
    }
    const traded = parseTimeMs(data.timestamp);
    const now = this._now();
    this.latency = Object.freeze({
      key,
      exchangeToDaemonMs: Number.isFinite(traded) ? received - traded : null,
      daemonToClientMs: now - received,
      at: now,
    });
    this._emit('latency', this.latency);
  }

  _setStatus(status, detail, delayMs) {
    const changed = status !== this.status || detail !== this.statusDetail;
    this.status = status;
    this.statusDetail = detail;
    if (changed) {
      this._log('status', status, detail);
      this._emit('status', { status, detail, attempt: this.attempt, delayMs });
    }
  }
}

// What the client itself does with each server frame type it knows, before onFrame listeners see it. The
// channels of DESIGN.md "Beyond prices" (depth, candles, notification, announcement, ...) add an entry here
// when the client grows state for them; until then their frames reach onFrame(type) listeners as they are.
const FRAME_HANDLERS = {
  price_update(message) {
    const data = message.data;
    if (typeof message.instrument_key !== 'string' || !data || typeof data.last_price !== 'number') {
      this._log('ignoring a malformed price_update', message);
      return false;
    }
    this._log('price', message.instrument_key, data.last_price, 'seq', data.seq);
    const feedDown = this.feed !== null && this.feed.status !== 'connected';
    this._accept(message.instrument_key, data, this.epoch, data.stale === true || feedDown);
    if (typeof data.received_at === 'string') {
      this._recordLatency(message.instrument_key, data);
    }
    return true;
  },
  warning(message) {
    if (message.code === 'slow_consumer') {
      const intervalMs = typeof message.interval_ms === 'number' ? message.interval_ms : null;
      this._setSlow({ message: message.message ?? '', intervalMs, since: this._now() }, message.message ?? '');
    }
    return true;
  },
  warning_cleared(message) {
    if (message.code === 'slow_consumer') {
      this._setSlow(null, message.message ?? '');
    }
    return true;
  },
  status(message) {
    if (typeof message.epoch === 'string') {
      this.epoch = message.epoch;
    }
    this.feed = { status: message.status, message: message.message ?? '', epoch: this.epoch };
    this._log('feed', message.status, message.message);
    if (message.status !== 'connected') {
      this._markAllStale();
    }
    this._emit('feed', this.feed);
    return true;
  },
  notification(message) {
    if (typeof message.id !== 'string') {
      this._log('ignoring a notification without an id', message);
      return false;
    }
    this._alertFired(message);
    this._handleNotification(message);
    return true;
  },
  announcement(message) {
    if (typeof message.id !== 'string') {
      return false;
    }
    this.announcements.set(message.id, message);
    this.announcementList = [...this.announcements.values()];
    this._emit('announcement', message);
    // The daemon sends nothing when one expires: the page takes it down itself at expires_at.
    const expires = Date.parse(message.expires_at ?? '');
    if (Number.isFinite(expires)) {
      this._setTimeout(() => {
        if (this.announcements.get(message.id) === message) {
          FRAME_HANDLERS.announcement_removed.call(this, { type: 'announcement_removed', id: message.id });
        }
      }, Math.max(0, expires - this._now()));
    }
    return true;
  },
  announcement_removed(message) {
    this.announcements.delete(message.id);
    this.announcementList = [...this.announcements.values()];
    this._emit('announcement', { id: message.id, removed: true });
    return true;
  },
  topic(message) {
    const topic = this._topics.get(message.topic);
    if (!topic || typeof message.seq !== 'number' || message.seq <= topic.seq) {
      return true; // not held (any more), or not newer than the value already here
    }
    topic.seq = message.seq;
    topic.data = message.data;
    for (const callback of [...topic.callbacks]) {
      try {
        callback(message.topic, message.data, message.seq);
      } catch (error) {
        this._console?.error?.(error);
      }
    }
    return true;
  },
  depth(message) {
    this._acceptBook('depth', message);
    return true;
  },
  book(message) {
    this._acceptBook('book', message);
    return true;
  },
  candles(message) {
    const entry = this._candles.get(`${message.interval} ${message.instrument_key}`);
    if (!entry || !Array.isArray(message.data)) {
      return true;
    }
    entry.bars = entry.history > 0 ? message.data.slice(-entry.history) : [];
    const last = entry.bars[entry.bars.length - 1];
    if (entry.forming && last && entry.forming.t <= last.t) {
      entry.forming = null;
    }
    this._candleChanged(entry, { type: 'history' });
    return true;
  },
  candle(message) {
    const entry = this._candles.get(`${message.interval} ${message.instrument_key}`);
    const bar = message.data;
    if (!entry || !bar || typeof bar.t !== 'string' || typeof message.seq !== 'number' || message.seq <= entry.seq) {
      return true; // not held (any more), malformed, or not newer than what is here
    }
    entry.seq = message.seq;
    const last = entry.bars[entry.bars.length - 1];
    if (bar.closed) {
      if (last && last.t === bar.t) {
        entry.bars = [...entry.bars.slice(0, -1), bar];
      } else if (!last || last.t < bar.t) {
        entry.bars = [...entry.bars, bar].slice(-1000);
      }
      if (entry.forming && entry.forming.t <= bar.t) {
        entry.forming = null;
      }
    } else if (!last || last.t < bar.t) {
      entry.forming = bar;
    }
    this._candleChanged(entry, { type: 'candle', bar });
    return true;
  },
  subscribed(message) {
    if (message.channel === 'candles') {
      this._emit('subscribed', { action: message.action, channel: 'candles', interval: message.interval, instruments: message.instruments ?? [], rejected: message.rejected ?? [] });
      return true;
    }
    if (message.channel === 'depth' || message.channel === 'book') {
      this._log(message.channel, message.instruments, 'rejected', message.rejected);
      this._emit('subscribed', { action: message.action, channel: message.channel, instruments: message.instruments ?? [], rejected: message.rejected ?? [] });
      return true;
    }
    if (message.channel === 'topic') {
      this._log('topics', message.topics, 'rejected', message.rejected);
      this._emit('subscribed', { action: message.action, channel: 'topic', topics: message.topics ?? [], rejected: message.rejected ?? [] });
      return true;
    }
    for (const key of message.instruments ?? []) {
      this._rejected.delete(key);
    }
    for (const item of message.rejected ?? []) {
      if (this._refs.has(item.instrument_key)) {
        this._rejected.set(item.instrument_key, item.code);
      }
    }
    this._log('subscribed', message.instruments, 'rejected', message.rejected);
    this._emit('subscribed', { action: message.action, instruments: message.instruments ?? [], rejected: message.rejected ?? [] });
    return true;
  },
  error(message) {
    this._log('server error', message.code, message.message, message.req ?? '');
    // An error that names a request (an alert_* message's "req") answers that request and no other.
    const request = this._takeRequest(message);
    request?.reject(new RequestError(message.code, message.message, message.req));
    this._emit('server-error', { code: message.code, message: message.message, instruments: message.instruments ?? [], req: message.req });
    if (message.code === 'rate_limited' && typeof message.req !== 'string') {
      this._resyncAfter(message.retry_after_ms ?? 1000); // a subscription change was refused, not an alert request
    }
    return true;
  },
  alert_created(message) {
    const alert = message.alert;
    if (!alert || typeof alert.id !== 'string') {
      return false;
    }
    this._alertsById.set(alert.id, alert);
    this._alertsChanged();
    this._answer(message, alert);
    return true;
  },
  alerts(message) {
    if (!Array.isArray(message.alerts)) {
      return false;
    }
    this._setAlerts(message.alerts);
    this._answer(message, this.alertList);
    return true;
  },
  alert_deleted(message) {
    if (this._alertsById.delete(message.id)) {
      this._alertsChanged();
    }
    this._answer(message, message.id);
    return true;
  },
  volume_alert(message) {
    if (typeof message.instrument_key !== 'string' || !message.data) {
      return false;
    }
    for (const entry of [...this._volume.entries]) {
      if (entry.all || entry.keys.has(message.instrument_key)) {
        try {
          entry.callback?.(message.instrument_key, message.data);
        } catch (error) {
          this._console?.error?.(error);
        }
      }
    }
    return true;
  },
};

// Reference-counted last-value entries (topics, books): { refs, seq, data, callbacks }. Takes a reference on each
// name, registers `callback` and calls it at once with a value already here; returns the names held for the first time.
function holdEntries(held, names, callback) {
  const added = [];
  for (const name of names) {
    let entry = held.get(name);
    if (!entry) {
      entry = { refs: 0, seq: -1, data: undefined, callbacks: new Set() };
      held.set(name, entry);
    }
    entry.refs += 1;
    if (entry.refs === 1) {
      added.push(name);
    }
    if (callback) {
      entry.callbacks.add(callback);
      if (entry.data !== undefined) {
        callback(name, entry.data, entry.seq);
      }
    }
  }
  return added;
}

// Drops the references holdEntries took; returns the names no longer held at all.
function releaseEntries(held, names, callback) {
  const gone = [];
  for (const name of names) {
    const entry = held.get(name);
    if (!entry) {
      continue;
    }
    if (callback) {
      entry.callbacks.delete(callback);
    }
    entry.refs -= 1;
    if (entry.refs <= 0) {
      held.delete(name);
      gone.push(name);
    }
  }
  return gone;
}

// A release function that acts only the first time it is called.
function once(release) {
  let released = false;
  return () => {
    if (!released) {
      released = true;
      release();
    }
  };
}

// 'book' for more than the 5 levels of 'depth'.
function candlesMessage(action, entry) {
  return { action, channel: 'candles', interval: entry.interval, history: entry.history, instruments: [entry.key] };
}

function depthChannel(options) {
  return options?.book === true || (options?.levels ?? 5) > 5 ? 'book' : 'depth';
}

function normalizeKeys(keys) {
  const list = typeof keys === 'string' ? [keys] : [...(keys ?? [])];
  return [...new Set(list.filter((key) => typeof key === 'string' && key.length > 0))];
}

let shared = null;

/** One PriceSocket per page, created on first use with the given options (later options are ignored). */
export function getPriceSocket(options) {
  if (!shared || shared.status === ConnectionStatus.closed) {
    shared = new PriceSocket(options);
  }
  return shared;
}
