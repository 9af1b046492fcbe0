// Unit tests of clients/js/src/price-socket.js and the React hook, with node's built-in runner:
//   node --test PriceDaemon.Tests/js/
// The socket, timers, fetch, storage and randomness are injected fakes: no network, no sleeping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PriceSocket, RequestError, backoffDelay, parseTimeMs } from '../../clients/js/src/price-socket.js';
import { createUsePriceWebSocket } from '../../clients/js/src/use-price-websocket.js';
import { createPriceHooks } from '../../clients/js/src/price-hooks.js';

const RELIANCE = 'NSE_EQ|INE002A01018';
const TCS = 'NSE_EQ|INE467B01029';

class FakeSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
  }

  send(text) {
    assert.equal(this.readyState, 1, 'sent on a socket that is not open');
    this.sent.push(JSON.parse(text));
  }

  close(code, reason) {
    this.readyState = 3;
    this.closedWith = { code, reason };
  }

  open() {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** A clock that only moves when the test says so. */
class FakeClock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.nextId = 1;
  }

  setTimeout = (fn, ms) => {
    const id = this.nextId++;
    this.timers.set(id, { fn, at: this.now + ms });
    return id;
  };

  clearTimeout = (id) => {
    this.timers.delete(id);
  };

  advance(ms) {
    const until = this.now + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) {
        break;
      }
      this.timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = until;
  }

  /** Milliseconds until the next timer fires, or undefined. */
  get next() {
    const ats = [...this.timers.values()].map((t) => t.at - this.now);
    return ats.length ? Math.min(...ats) : undefined;
  }
}

class MemoryStorage {
  constructor(items = {}) {
    this.items = new Map(Object.entries(items));
  }

  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }

  setItem(key, value) {
    this.items.set(key, String(value));
  }
}

function harness(options = {}) {
  const sockets = [];
  const clock = new FakeClock();
  const fetches = [];
  const logs = [];
  const client = new PriceSocket({
    url: 'ws://daemon.test:8080/api/ws/prices',
    WebSocket: function (url) {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    random: () => 0.5, // no jitter unless a test asks for it
    storage: new MemoryStorage(),
    fetch: async (url, init) => {
      fetches.push({ url, init });
      return { ok: false, json: async () => null };
    },
    console: { log: (...args) => logs.push(args), error: (...args) => logs.push(args) },
    ...options,
  });
  const statuses = [];
  client.on('status', (s) => statuses.push(s.status));
  return { client, sockets, clock, fetches, logs, statuses, last: () => sockets[sockets.length - 1] };
}

function price(key, lastPrice, seq, extra = {}) {
  return { type: 'price_update', instrument_key: key, data: { last_price: lastPrice, timestamp: '2026-01-19T10:30:00.123Z', change_percent: 0.1, volume: 100, seq, source: 'simulated', ...extra } };
}

const status = (s, epoch = 'e1') => ({ type: 'status', status: s, message: `feed ${s}`, epoch });

// ---- backoff ------------------------------------------------------------------------------------------

test('backoffDelay starts at 3 s, doubles per failed attempt and stops at the cap', () => {
  const mid = () => 0.5;
  assert.deepEqual([1, 2, 3, 4, 5, 6, 20].map((n) => backoffDelay(n, {}, mid)), [3000, 6000, 12000, 24000, 30000, 30000, 30000]);
});

test('backoffDelay spreads by the jitter fraction and never exceeds the cap', () => {
  assert.equal(backoffDelay(1, {}, () => 0), 2400);
  assert.equal(backoffDelay(1, {}, () => 0.999999), 3600);
  assert.equal(backoffDelay(10, {}, () => 0.999999), 30000);
  assert.equal(backoffDelay(10, {}, () => 0), 24000);
  assert.equal(backoffDelay(2, { baseMs: 100, maxMs: 1000, factor: 3, jitter: 0 }), 300);
});

// ---- connection and reconnect ---------------------------------------------------------------------------

test('connects on creation and reports connecting then connected', () => {
  const h = harness();
  assert.equal(h.sockets.length, 1);
  assert.equal(h.sockets[0].url, 'ws://daemon.test:8080/api/ws/prices');
  assert.equal(h.client.status, 'connecting');
  h.last().open();
  assert.equal(h.client.status, 'connected');
  assert.deepEqual(h.statuses, ['connected']);
});

test('reconnects after the default 3 s, backs off while attempts fail, and resets after a success', () => {
  const h = harness();
  h.last().open();
  h.last().drop();
  assert.equal(h.client.status, 'reconnecting');
  assert.equal(h.clock.next, 3000);
  h.clock.advance(2999);
  assert.equal(h.sockets.length, 1, 'no attempt before the delay');
  h.clock.advance(1);
  assert.equal(h.sockets.length, 2);

  h.last().drop(); // the attempt fails
  assert.equal(h.clock.next, 6000);
  h.clock.advance(6000);
  h.last().drop();
  assert.equal(h.clock.next, 12000);
  h.clock.advance(12000);
  assert.equal(h.sockets.length, 4);

  h.last().open();
  assert.equal(h.client.status, 'connected');
  assert.equal(h.client.attempt, 0);
  h.last().drop();
  assert.equal(h.clock.next, 3000, 'a success resets the backoff');
  assert.deepEqual(h.statuses.filter((s, i, a) => s !== a[i - 1]), ['connected', 'reconnecting', 'connected', 'reconnecting']);
});

test('applies jitter to reconnect delays', () => {
  const h = harness({ random: () => 0 });
  h.last().drop();
  assert.equal(h.clock.next, 2400);
});

test('resubscribes every referenced instrument after a reconnect, in one message', () => {
  const h = harness();
  h.last().open();
  h.client.subscribe([RELIANCE]);
  h.client.subscribe([TCS, RELIANCE]);
  h.last().drop();
  h.clock.advance(3000);
  assert.deepEqual(h.last().sent, []);
  h.last().open();
  assert.deepEqual(h.last().sent, [{ action: 'subscribe', instruments: [RELIANCE, TCS] }]);
});

test('a refused connection (policy close) shows error with the reason and still retries', () => {
  const h = harness();
  h.last().open();
  h.last().drop(1008, 'invalid token');
  assert.equal(h.client.status, 'error');
  assert.match(h.client.statusDetail, /invalid token/);
  h.clock.advance(3000);
  assert.equal(h.sockets.length, 2);
});

test('close() stops for good: no reconnect timer, status closed', () => {
  const h = harness();
  h.last().open();
  h.client.close();
  assert.equal(h.client.status, 'closed');
  assert.deepEqual(h.sockets[0].closedWith, { code: 1000, reason: 'client closed' });
  h.clock.advance(60000);
  assert.equal(h.sockets.length, 1);
});

test('sends the token as ?token= on the socket URL and as a Bearer header on REST', async () => {
  const h = harness({ token: 'a.b c' });
  assert.equal(h.last().url, 'ws://daemon.test:8080/api/ws/prices?token=a.b%20c');
  h.client.subscribe([RELIANCE]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(h.fetches[0].init.headers.Authorization, 'Bearer a.b c');
});

// ---- reference counting -------------------------------------------------------------------------------

test('tells the daemon only about the first and the last reference of an instrument', () => {
  const h = harness();
  h.last().open();
  const socket = h.last();
  h.client.subscribe([RELIANCE, TCS]);
  h.client.subscribe([RELIANCE]);
  assert.deepEqual(socket.sent, [{ action: 'subscribe', instruments: [RELIANCE, TCS] }]);
  assert.equal(h.client.refCount(RELIANCE), 2);

  h.client.unsubscribe([RELIANCE]);
  assert.equal(socket.sent.length, 1, 'one reference is still held');
  h.client.unsubscribe([RELIANCE, TCS]);
  assert.deepEqual(socket.sent[1], { action: 'unsubscribe', instruments: [RELIANCE, TCS] });
  assert.deepEqual(h.client.subscriptions, []);

  h.client.unsubscribe([RELIANCE]);
  assert.equal(socket.sent.length, 2, 'releasing what is not held is a no-op');
});

test('the function subscribe returns releases its references once, however often it is called', () => {
  const h = harness();
  h.last().open();
  const first = h.client.subscribe([RELIANCE]);
  const second = h.client.subscribe([RELIANCE]);
  first();
  first();
  assert.equal(h.client.refCount(RELIANCE), 1);
  second();
  assert.equal(h.client.refCount(RELIANCE), 0);
  assert.deepEqual(h.last().sent.at(-1), { action: 'unsubscribe', instruments: [RELIANCE] });
});

test('subscriptions made while disconnected are sent when the socket opens', () => {
  const h = harness();
  h.client.subscribe([RELIANCE]);
  h.client.subscribe([TCS]);
  h.client.unsubscribe([TCS]);
  h.last().open();
  assert.deepEqual(h.last().sent, [{ action: 'subscribe', instruments: [RELIANCE] }]);
});

test('records instruments the daemon rejected', () => {
  const h = harness();
  h.last().open();
  h.client.subscribe(['BAD']);
  h.last().receive({ type: 'subscribed', instruments: [], rejected: [{ instrument_key: 'BAD', code: 'unknown_instrument' }] });
  assert.equal(h.client.rejected.get('BAD'), 'unknown_instrument');
});

// ---- prices -------------------------------------------------------------------------------------------

test('ignores a price whose seq is not newer within the same epoch', () => {
  const h = harness();
  const seen = [];
  h.client.on('price', (p) => seen.push([p.data.last_price, p.changed]));
  h.last().open();
  h.last().receive(status('connected', 'e1'));
  h.last().receive(price(RELIANCE, 100, 5));
  h.last().receive(price(RELIANCE, 99, 4));
  h.last().receive(price(RELIANCE, 101, 6));
  assert.equal(h.client.price(RELIANCE).last_price, 101);
  assert.deepEqual(seen, [[100, true], [101, true]]);

  h.last().receive(status('connected', 'e2')); // the daemon lost its state: seq starts again
  h.last().receive(price(RELIANCE, 50, 1));
  assert.equal(h.client.price(RELIANCE).last_price, 50);
});

test('marks cached prices stale when the connection drops and when the feed goes down', () => {
  const h = harness();
  h.last().open();
  h.last().receive(status('connected'));
  h.last().receive(price(RELIANCE, 100, 1));
  assert.equal(h.client.price(RELIANCE).stale, false);
  h.last().drop();
  assert.equal(h.client.price(RELIANCE).stale, true);
  assert.equal(h.client.price(RELIANCE).last_price, 100, 'the last price stays available');

  h.clock.advance(3000);
  h.last().open();
  h.last().receive(status('connected'));
  h.last().receive(price(RELIANCE, 100, 1)); // the snapshot of the same version is fresh again
  assert.equal(h.client.price(RELIANCE).stale, false);

  h.last().receive(status('disconnected'));
  assert.equal(h.client.feed.status, 'disconnected');
  assert.equal(h.client.price(RELIANCE).stale, true);
  h.last().receive(price(TCS, 3000, 1));
  assert.equal(h.client.price(TCS).stale, true, 'prices that arrive while the feed is down are stale');
});

test('keeps prices in storage and serves them, as stale, to the next page', () => {
  const storage = new MemoryStorage();
  const h = harness({ storage });
  h.last().open();
  h.last().receive(status('connected'));
  h.last().receive(price(RELIANCE, 123.45, 9));
  assert.equal(storage.getItem('price-socket:v1:prices'), null, 'writes are batched');
  h.clock.advance(1000);
  assert.ok(storage.getItem('price-socket:v1:prices'));

  const next = harness({ storage, connect: false });
  assert.deepEqual(next.client.price(RELIANCE), { ...price(RELIANCE, 123.45, 9).data, stale: true });
});

test('asks REST for an instrument the cache lacks while not connected', async () => {
  const h = harness({
    fetch: async (url) => {
      h.fetches.push(url);
      return { ok: true, json: async () => ({ instrument_key: RELIANCE, data: { last_price: 1451.5, seq: 3, stale: true } }) };
    },
  });
  h.fetches.length = 0;
  h.client.subscribe([RELIANCE]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(h.fetches, ['http://daemon.test:8080/api/prices/NSE_EQ%7CINE002A01018']);
  assert.equal(h.client.price(RELIANCE).last_price, 1451.5);
  assert.equal(h.client.price(RELIANCE).stale, true);

  h.client.unsubscribe([RELIANCE]);
  h.client.subscribe([RELIANCE]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(h.fetches.length, 1, 'a cached instrument is not fetched again');
});

test('logs to the console only when localStorage.ws_debug is "true"', () => {
  const quiet = harness();
  quiet.last().open();
  assert.equal(quiet.logs.length, 0);

  const loud = harness({ storage: new MemoryStorage({ ws_debug: 'true' }) });
  loud.last().open();
  loud.client.subscribe([RELIANCE]);
  assert.ok(loud.logs.some((args) => args.includes('subscribe')));
  assert.ok(loud.logs.some((args) => args.includes('status')));
});

test('ignores frames that are not JSON or of unknown type', () => {
  const h = harness();
  h.last().open();
  h.last().onmessage({ data: 'not json' });
  h.last().receive({ type: 'batch', things: [] });
  assert.equal(h.client.status, 'connected');
});

// ---- the React hook -----------------------------------------------------------------------------------

/** Just enough of React to mount, re-render and unmount one hook: state, refs, callbacks and effects. */
function fakeReact() {
  let current = null;
  const React = {
    useState(initial) {
      const c = current;
      const i = c.index++;
      if (!(i in c.states)) {
        c.states[i] = typeof initial === 'function' ? initial() : initial;
      }
      return [c.states[i], (next) => {
        c.states[i] = typeof next === 'function' ? next(c.states[i]) : next;
      }];
    },
    useRef(initial) {
      const c = current;
      const i = c.index++;
      if (!(i in c.states)) {
        c.states[i] = { current: initial };
      }
      return c.states[i];
    },
    useCallback(fn) {
      return fn;
    },
    useEffect(effect) {
      const c = current;
      const i = c.index++;
      if (!(i in c.states)) {
        c.states[i] = true;
        c.cleanups.push(effect());
      }
    },
  };
  const mount = (hook) => {
    const component = { states: {}, cleanups: [], index: 0 };
    const render = () => {
      component.index = 0;
      current = component;
      component.result = hook();
      return component.result;
    };
    render();
    return { render, unmount: () => component.cleanups.forEach((cleanup) => cleanup?.()) };
  };
  return { React, mount };
}

test('usePriceWebSocket shares one socket and counts each component\'s references on its own', () => {
  const sockets = [];
  const { React, mount } = fakeReact();
  const usePriceWebSocket = createUsePriceWebSocket(React, {
    url: 'ws://daemon.test/api/ws/prices',
    storage: null,
    WebSocket: function (url) {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    fetch: null,
  });
  const a = mount(usePriceWebSocket);
  const b = mount(usePriceWebSocket);
  assert.equal(sockets.length, 1, 'one socket for the page');
  sockets[0].open();
  const socket = a.render().socket;
  assert.equal(a.render().connectionStatus, 'connected');

  a.render().subscribe([RELIANCE, TCS]);
  b.render().subscribe([RELIANCE]);
  assert.equal(socket.refCount(RELIANCE), 2);

  a.render().unsubscribe([RELIANCE]);
  a.render().unsubscribe([RELIANCE]); // a second release from A must not take B's reference
  assert.equal(socket.refCount(RELIANCE), 1);

  sockets[0].receive(price(RELIANCE, 1451.5, 1));
  assert.equal(b.render().prices[RELIANCE].last_price, 1451.5);

  a.unmount(); // releases TCS, which A still held
  assert.equal(socket.refCount(TCS), 0);
  b.unmount();
  assert.deepEqual(socket.subscriptions, []);
  assert.deepEqual(sockets[0].sent.at(-1), { action: 'unsubscribe', instruments: [RELIANCE] });
  socket.close();
});

test('a rate-limited change is sent again, with everything referenced, once the daemon allows it', () => {
  const { client, clock, last } = harness();
  last().open();
  client.subscribe([RELIANCE]);
  client.subscribe([TCS]);
  const socket = last();
  const before = socket.sent.length;
  socket.receive({ type: 'error', code: 'rate_limited', message: 'slow down', retry_after_ms: 2000 });
  clock.advance(1999);
  assert.equal(socket.sent.length, before, 'nothing is sent before the daemon allows it');
  clock.advance(100);
  assert.deepEqual(socket.sent.at(-1), { action: 'subscribe', instruments: [RELIANCE, TCS] });
  client.close();
});

// ---- the store the React hooks read (onKey, priceSnapshot), deferred subscriptions, frame dispatch ------

test('deferred subscribe and release in one task send nothing; mounts in one task send one subscribe', async () => {
  const { client, last } = harness();
  last().open();
  const release = client.subscribe([RELIANCE], { deferred: true });
  release();
  client.subscribe([RELIANCE], { deferred: true }); // StrictMode's second mount
  client.subscribe([TCS], { deferred: true });
  assert.deepEqual(last().sent, [], 'sent before the end of the task');
  await Promise.resolve();
  assert.deepEqual(last().sent, [{ action: 'subscribe', instruments: [RELIANCE, TCS] }]);
  assert.equal(client.refCount(RELIANCE), 1);
});

test('a deferred release of the last reference sends one unsubscribe at the end of the task', async () => {
  const { client, last } = harness();
  last().open();
  const a = client.subscribe([RELIANCE, TCS], { deferred: true });
  await Promise.resolve();
  const b = client.subscribe([RELIANCE], { deferred: true });
  a();
  await Promise.resolve();
  assert.deepEqual(last().sent.slice(1), [{ action: 'unsubscribe', instruments: [TCS] }]);
  b();
  await Promise.resolve();
  assert.deepEqual(last().sent.slice(2), [{ action: 'unsubscribe', instruments: [RELIANCE] }]);
});

test('priceSnapshot is the same object until that key changes, and onKey hears only its own key', () => {
  const { client, last } = harness({ notify: 'sync' });
  client.subscribe([RELIANCE, TCS]);
  last().open();
  last().receive(status('connected'));
  let heard = 0;
  client.onKey(RELIANCE, () => heard++);
  last().receive(price(RELIANCE, 2450, 1));
  const first = client.priceSnapshot(RELIANCE);
  assert.equal(first.last_price, 2450);
  last().receive(price(TCS, 3500, 1));
  assert.equal(client.priceSnapshot(RELIANCE), first, 'another key changed this snapshot');
  assert.equal(heard, 1);
  last().receive(price(RELIANCE, 2451, 2));
  assert.notEqual(client.priceSnapshot(RELIANCE), first);
  assert.equal(client.priceSnapshot(RELIANCE).last_price, 2451);
  assert.equal(heard, 2);
});

test('with animation frames, onKey listeners hear of a key once per frame however often it ticked', () => {
  const frames = [];
  const { client, last } = harness({ requestAnimationFrame: (fn) => frames.push(fn) });
  client.subscribe([RELIANCE]);
  last().open();
  let heard = 0;
  client.onKey(RELIANCE, () => heard++);
  last().receive(price(RELIANCE, 2450, 1));
  last().receive(price(RELIANCE, 2451, 2));
  last().receive(price(RELIANCE, 2452, 3));
  assert.equal(heard, 0);
  assert.equal(frames.length, 1);
  frames.shift()();
  assert.equal(heard, 1);
  assert.equal(client.priceSnapshot(RELIANCE).last_price, 2452);
});

test('onFrame hears frames by type, including types the client has no handler for, and not malformed ones', () => {
  const { client, last } = harness();
  client.subscribe([RELIANCE]);
  last().open();
  const seen = [];
  client.onFrame('price_update', (f) => seen.push(f.type + ':' + f.data.last_price));
  client.onFrame('announcement', (f) => seen.push(f.type + ':' + f.message));
  last().receive(price(RELIANCE, 2450, 1));
  last().receive({ type: 'price_update', instrument_key: RELIANCE, data: { last_price: 'x' } });
  last().receive({ type: 'announcement', id: 'a1', level: 'warning', message: 'maintenance at 18:00' });
  assert.deepEqual(seen, ['price_update:2450', 'announcement:maintenance at 18:00']);
});

// ---- pushes: notifications, announcements, topics ------------------------------------------------------------

const notification = (id, extra = {}) => ({ type: 'notification', id, kind: 'trade', created_at: '2026-12-01T10:00:00.000Z', data: { qty: 5 }, ...extra });
const tick = () => new Promise((resolve) => setImmediate(resolve));

test('a notification is acked once every handler has returned; a replay of several is acked in one message', async () => {
  const { client, last } = harness();
  last().open();
  const seen = [];
  client.onNotification((n) => seen.push(['a', n.id]));
  const slow = client.onNotification(async (n) => {
    await tick();
    seen.push(['b', n.id]);
  });
  last().receive(notification('trade-1'));
  assert.deepEqual(last().sent, [], 'not acked while a handler is still running');
  await tick();
  await tick();
  assert.deepEqual(seen, [['a', 'trade-1'], ['b', 'trade-1']]);
  assert.deepEqual(last().sent, [{ action: 'ack', ids: ['trade-1'] }]);

  slow();
  last().receive(notification('trade-2', { replayed: true }));
  last().receive(notification('trade-3', { replayed: true }));
  await tick();
  assert.deepEqual(last().sent.slice(1), [{ action: 'ack', ids: ['trade-2', 'trade-3'] }]);
});

test('a handler that throws leaves the notification unacked, and a page without handlers acks nothing', async () => {
  const { client, last } = harness();
  last().open();
  last().receive(notification('unhandled'));
  await tick();
  assert.deepEqual(last().sent, [], 'no handler: the daemon keeps it for a page that will show it');
  const stop = client.onNotification(() => {
    throw new Error('render failed');
  });
  last().receive(notification('failed'));
  await tick();
  assert.deepEqual(last().sent, []);
  stop();
  client.onNotification(() => {});
  last().receive(notification('failed', { replayed: true }));
  await tick();
  assert.deepEqual(last().sent, [{ action: 'ack', ids: ['failed'] }], 'delivered again later, handled, acked');
});

test('a notification handled already is acked again without calling handlers (its ack was lost)', async () => {
  const { client, last, sockets, clock } = harness();
  last().open();
  const seen = [];
  client.onNotification((n) => seen.push(n.id));
  last().receive(notification('trade-7'));
  await tick();
  last().drop();
  clock.advance(clock.next);
  sockets[1].open();
  sockets[1].receive(notification('trade-7', { replayed: true }));
  await tick();
  assert.deepEqual(seen, ['trade-7'], 'shown once');
  assert.deepEqual(sockets[1].sent, [{ action: 'ack', ids: ['trade-7'] }]);
});

test('announcements are held while in force and withdrawn on announcement_removed; a reconnect starts afresh', () => {
  const { client, last, sockets, clock } = harness();
  last().open();
  const events = [];
  client.onAnnouncement((a) => events.push(a));
  last().receive({ type: 'announcement', id: 'maint', level: 'warning', message: 'Maintenance at 18:00', expires_at: '2026-12-01T18:00:00.000Z' });
  assert.deepEqual([...client.announcements.keys()], ['maint']);
  last().receive({ type: 'announcement_removed', id: 'maint' });
  assert.equal(client.announcements.size, 0);
  assert.deepEqual(events.map((e) => [e.id, e.removed === true]), [['maint', false], ['maint', true]]);
  last().receive({ type: 'announcement', id: 'again', level: 'info', message: 'x' });
  last().drop();
  clock.advance(5_000); // the reconnect (3 s)
  sockets[1].open();
  assert.equal(client.announcements.size, 0, 'the daemon sends those in force on every connect');
});

test('topics are reference counted, resubscribed after a reconnect, and only a newer value reaches callbacks', () => {
  const { client, last, sockets, clock } = harness();
  last().open();
  const values = [];
  const release = client.subscribeTopic('leaderboard', (topic, data, seq) => values.push([topic, data.top, seq]));
  const second = client.subscribeTopic(['leaderboard']);
  assert.deepEqual(last().sent, [{ action: 'subscribe', channel: 'topic', topics: ['leaderboard'] }], 'the first reference only');
  last().receive({ type: 'topic', topic: 'leaderboard', seq: 3, data: { top: 'asha' } });
  last().receive({ type: 'topic', topic: 'leaderboard', seq: 2, data: { top: 'old' } });
  last().receive({ type: 'topic', topic: 'other', seq: 9, data: { top: 'not held' } });
  assert.deepEqual(values, [['leaderboard', 'asha', 3]]);
  assert.deepEqual(client.topic('leaderboard'), { top: 'asha' });

  const late = [];
  client.subscribeTopic('leaderboard', (topic, data) => late.push(data.top));
  assert.deepEqual(late, ['asha'], 'a later callback starts with the value already here');

  last().drop();
  clock.advance(clock.next);
  sockets[1].open();
  assert.deepEqual(sockets[1].sent, [{ action: 'subscribe', channel: 'topic', topics: ['leaderboard'] }]);
  release();
  second();
  assert.deepEqual(sockets[1].sent.slice(1), [], 'one reference is still held');
});

test('after a reconnect a topic takes the first value whatever its seq (a restarted daemon counts from 1)', () => {
  const { client, last, sockets, clock } = harness();
  last().open();
  const values = [];
  client.subscribeTopic('leaderboard', (topic, data, seq) => values.push(seq));
  last().receive({ type: 'topic', topic: 'leaderboard', seq: 500, data: {} });
  last().drop();
  clock.advance(clock.next);
  sockets[1].open();
  sockets[1].receive({ type: 'topic', topic: 'leaderboard', seq: 1, data: {} });
  sockets[1].receive({ type: 'topic', topic: 'leaderboard', seq: 2, data: {} });
  assert.deepEqual(values, [500, 1, 2]);
});

test('a rate-limited change resends the topics held too, not only the instruments', () => {
  const { client, last, clock } = harness();
  last().open();
  client.subscribeTopic('leaderboard');
  last().receive({ type: 'error', code: 'rate_limited', message: 'slow down', retry_after_ms: 1000 });
  clock.advance(1100);
  assert.deepEqual(last().sent.slice(1), [{ action: 'subscribe', channel: 'topic', topics: ['leaderboard'] }]);
});

test('the same notification arriving again while its async handler runs is handled once and acked once', async () => {
  const { client, last } = harness();
  last().open();
  let calls = 0;
  let finish;
  client.onNotification(() => {
    calls += 1;
    return new Promise((resolve) => {
      finish = resolve;
    });
  });
  last().receive(notification('trade-9'));
  last().receive(notification('trade-9', { replayed: true }));
  await tick();
  finish();
  await tick();
  await tick();
  assert.equal(calls, 1);
  assert.deepEqual(last().sent, [{ action: 'ack', ids: ['trade-9'] }]);
});

test('an announcement comes down at its expires_at on the page clock', () => {
  let now = Date.parse('2026-12-01T10:00:00.000Z');
  const { client, last, clock } = harness({ now: () => now });
  last().open();
  last().receive({ type: 'announcement', id: 'maint', level: 'info', message: 'm', expires_at: '2026-12-01T10:05:00.000Z' });
  assert.equal(client.announcements.size, 1);
  now += 5 * 60_000;
  clock.advance(5 * 60_000);
  assert.equal(client.announcements.size, 0);
});

test('subscribeDepth holds depth or book per key, keeps the newest book, and resubscribes after a reconnect', () => {
  const { client, last, sockets, clock } = harness();
  last().open();
  const books = [];
  const release = client.subscribeDepth('NSE_EQ|A', (key, data, seq) => books.push([key, data.bids[0][0], seq]));
  const book = client.subscribeDepth(['NSE_EQ|A'], null, { levels: 30 });
  assert.deepEqual(last().sent, [
    { action: 'subscribe', channel: 'depth', instruments: ['NSE_EQ|A'] },
    { action: 'subscribe', channel: 'book', instruments: ['NSE_EQ|A'] },
  ]);
  last().receive({ type: 'subscribed', action: 'subscribe', channel: 'depth', instruments: ['NSE_EQ|A'], rejected: [] });
  const frame = (seq, bid) => ({ type: 'depth', instrument_key: 'NSE_EQ|A', data: { bids: [[bid, 10, 1]], asks: [[bid + 0.05, 5, 1]], timestamp: 't', seq, source: 'live' } });
  last().receive(frame(3, 100));
  last().receive(frame(2, 99)); // older: ignored
  last().receive({ ...frame(9, 1), instrument_key: 'NSE_EQ|B' }); // not held
  last().receive({ type: 'book', instrument_key: 'NSE_EQ|A', data: { bids: [[100, 1, 1], [99.95, 2, 1]], asks: [], timestamp: 't', seq: 3, source: 'live' } });
  assert.deepEqual(books, [['NSE_EQ|A', 100, 3]]);
  assert.equal(client.depth('NSE_EQ|A').bids[0][0], 100);
  assert.equal(client.depth('NSE_EQ|A', { levels: 30 }).bids.length, 2);
  assert.deepEqual(client.subscriptions, [], 'depth is not a price subscription');

  last().drop();
  clock.advance(clock.next);
  sockets[1].open();
  assert.deepEqual(sockets[1].sent, [
    { action: 'subscribe', channel: 'depth', instruments: ['NSE_EQ|A'] },
    { action: 'subscribe', channel: 'book', instruments: ['NSE_EQ|A'] },
  ]);
  sockets[1].receive(frame(1, 101)); // a restarted daemon counts from 1 again
  assert.deepEqual(books.at(-1), ['NSE_EQ|A', 101, 1]);

  release();
  book();
  assert.deepEqual(sockets[1].sent.slice(2), [
    { action: 'unsubscribe', channel: 'depth', instruments: ['NSE_EQ|A'] },
    { action: 'unsubscribe', channel: 'book', instruments: ['NSE_EQ|A'] },
  ]);
});

test('subscribeCandles: history, then forming and closed bars in order; resubscribed with fresh history after a reconnect', () => {
  const { client, last, sockets, clock } = harness();
  last().open();
  const events = [];
  const release = client.subscribeCandles(RELIANCE, '1m', { history: 50 }, (e) => events.push([e.type, e.bar?.t ?? null, e.bars.length, e.forming?.t ?? null]));
  const again = client.subscribeCandles(RELIANCE, '1m', { history: 50 });
  assert.deepEqual(last().sent, [{ action: 'subscribe', channel: 'candles', interval: '1m', history: 50, instruments: [RELIANCE] }], 'the first reference only');
  const bar = (t, c, closed) => ({ t, o: 1, h: 2, l: 0.5, c, v: 10, ...(closed === undefined ? {} : { closed }) });
  last().receive({ type: 'candles', instrument_key: RELIANCE, interval: '1m', data: [bar('2026-11-30T03:45:00Z', 1)] });
  last().receive({ type: 'candle', instrument_key: RELIANCE, interval: '1m', seq: 1, data: bar('2026-11-30T03:46:00Z', 1.5, false) });
  last().receive({ type: 'candle', instrument_key: RELIANCE, interval: '1m', seq: 1, data: bar('2026-11-30T03:46:00Z', 9, false) });
  last().receive({ type: 'candle', instrument_key: RELIANCE, interval: '5m', seq: 7, data: bar('2026-11-30T03:45:00Z', 9, false) });
  last().receive({ type: 'candle', instrument_key: RELIANCE, interval: '1m', seq: 2, data: bar('2026-11-30T03:46:00Z', 1.7, true) });
  assert.deepEqual(events, [
    ['history', null, 1, null],
    ['candle', '2026-11-30T03:46:00Z', 1, '2026-11-30T03:46:00Z'],
    ['candle', '2026-11-30T03:46:00Z', 2, null],
  ], 'an older seq and another interval are ignored; the closed bar joins the history and is no longer forming');
  assert.equal(client.candles(RELIANCE, '1m').bars[1].c, 1.7);

  last().drop();
  clock.advance(clock.next);
  sockets[1].open();
  assert.deepEqual(sockets[1].sent, [{ action: 'subscribe', channel: 'candles', interval: '1m', history: 50, instruments: [RELIANCE] }]);
  sockets[1].receive({ type: 'candle', instrument_key: RELIANCE, interval: '1m', seq: 1, data: bar('2026-11-30T03:47:00Z', 2, false) });
  assert.equal(client.candles(RELIANCE, '1m').forming.t, '2026-11-30T03:47:00Z', 'a restarted daemon counts seq from 1 again');
  release();
  again();
  assert.deepEqual(sockets[1].sent.slice(1), [{ action: 'unsubscribe', channel: 'candles', interval: '1m', instruments: [RELIANCE] }]);
});

test('createAlert resolves with the stored alert, a refusal rejects with the daemon code, and the list follows fires', async () => {
  const { client, last } = harness();
  last().open();
  const created = client.createAlert({ instrument_key: RELIANCE, condition: 'above', price: 1500, note: 'tp' });
  assert.deepEqual(last().sent.at(-1), { action: 'alert_create', instrument_key: RELIANCE, condition: 'above', price: 1500, note: 'tp', req: 'r1' });
  const alert = { id: 'al-1', instrument_key: RELIANCE, condition: 'above', price: 1500, repeat: false, note: 'tp', owner: 'user', state: 'armed', fire_count: 0 };
  last().receive({ type: 'alert_created', alert, req: 'r1' });
  assert.equal((await created).id, 'al-1');
  assert.deepEqual(client.alertList.map((a) => a.state), ['armed']);

  const refused = client.createAlert({ instrument_key: RELIANCE, condition: 'below', price: 1 });
  last().receive({ type: 'error', code: 'alert_limit', message: 'at most 1', req: 'r2' });
  await assert.rejects(refused, (error) => error instanceof RequestError && error.code === 'alert_limit' && error.req === 'r2');

  last().receive({ type: 'notification', id: 'al-1-1', kind: 'price_alert', created_at: '', data: { alert_id: 'al-1', fire_count: 1, last_price: 1500.5, fired_at: 't' } });
  assert.deepEqual(client.alertList.map((a) => [a.state, a.fired_price]), [['fired', 1500.5]]);

  const deleted = client.deleteAlert('al-1');
  assert.deepEqual(last().sent.at(-1), { action: 'alert_delete', id: 'al-1', req: 'r3' });
  last().receive({ type: 'alert_deleted', id: 'al-1', req: 'r3' });
  assert.equal(await deleted, 'al-1');
  assert.deepEqual(client.alertList, []);
});

test('concurrent alert requests are matched by the echoed req, not by the order of the answers', async () => {
  const { client, last, clock } = harness();
  last().open();
  const first = client.createAlert({ instrument_key: RELIANCE, condition: 'above', price: 1500 });
  const second = client.createAlert({ instrument_key: RELIANCE, condition: 'below', price: 1000 });
  const listing = client.listAlerts();
  assert.deepEqual(last().sent.map((m) => m.req), ['r1', 'r2', 'r3']);
  // What the daemon does: the second create is refused at once (the limit), the first answered once stored; an error of
  // a price subscribe (no req) in between answers no request; nor does a rate limit of an alert request resync prices.
  last().receive({ type: 'error', code: 'unknown_instrument', message: 'unknown', instruments: ['X|1'] });
  last().receive({ type: 'error', code: 'alert_limit', message: 'at most 1', req: 'r2' });
  last().receive({ type: 'alerts', alerts: [], req: 'r3' });
  last().receive({ type: 'alert_created', alert: { id: 'al-1', instrument_key: RELIANCE, condition: 'above', price: 1500, state: 'armed', fire_count: 0 }, req: 'r1' });
  const [a, b, c] = await Promise.allSettled([first, second, listing]);
  assert.equal(a.status, 'fulfilled');
  assert.equal(a.value.price, 1500, 'the first call got its own alert');
  assert.equal(b.status, 'rejected');
  assert.equal(b.reason.code, 'alert_limit', 'the second call got its own refusal');
  assert.deepEqual(c.value, [], 'the list as it was when the daemon answered');
  assert.deepEqual(client.alertList.map((x) => x.id), ['al-1'], 'the create that came after the list is in it');

  const limited = client.deleteAlert('al-1');
  last().receive({ type: 'error', code: 'rate_limited', message: 'too many', retry_after_ms: 100, req: 'r4' });
  await assert.rejects(limited, (error) => error.code === 'rate_limited');
  assert.equal(clock.next, undefined, 'an alert rate limit does not resend the price subscriptions');
});

test('an alert request rejects after the timeout; its late answer still updates the list', async () => {
  const { client, last, clock } = harness({ requestTimeoutMs: 5000 });
  last().open();
  const slow = client.createAlert({ instrument_key: RELIANCE, condition: 'above', price: 1500 });
  const patient = client.listAlerts({ timeoutMs: 0 });
  clock.advance(4999);
  const early = await Promise.race([slow.then(() => 'settled', () => 'settled'), Promise.resolve('waiting')]);
  assert.equal(early, 'waiting');
  clock.advance(1);
  await assert.rejects(slow, (error) => error.code === 'timeout' && error.req === 'r1');
  last().receive({ type: 'alert_created', alert: { id: 'al-1', state: 'armed', fire_count: 0 }, req: 'r1' });
  assert.deepEqual(client.alertList.map((a) => a.id), ['al-1']);
  clock.advance(60_000);
  last().receive({ type: 'alerts', alerts: [{ id: 'al-1', state: 'armed', fire_count: 0 }], req: 'r2' });
  assert.equal((await patient).length, 1, 'timeoutMs: 0 waits as long as the connection lasts');
});

test('alert requests in flight reject when the socket drops or is closed; a request while disconnected rejects at once', async () => {
  const { client, last, clock } = harness();
  last().open();
  const heard = [];
  client.subscribeVolumeAlerts([RELIANCE], (key, data) => heard.push([key, data.ratio]));
  const listing = client.listAlerts();
  const creating = client.createAlert({ instrument_key: RELIANCE, condition: 'above', price: 1500 });
  last().drop();
  await assert.rejects(listing, (error) => error.code === 'connection_closed');
  await assert.rejects(creating, (error) => error.code === 'connection_closed' && /may or may not/.test(error.message));
  await assert.rejects(client.deleteAlert('al-1'), (error) => error.code === 'not_connected');
  assert.equal(clock.next, 3000, 'only the reconnect is waiting: the requests\' timers are gone');

  clock.advance(3000);
  last().open();
  // The volume channel is asked for again, and the list too (the page listed its alerts once).
  assert.deepEqual(last().sent, [
    { action: 'subscribe', channel: 'volume_alerts', instruments: [RELIANCE] },
    { action: 'alert_list', req: 'r3' },
  ]);
  last().receive({ type: 'volume_alert', instrument_key: RELIANCE, data: { volume_1m: 50, baseline: 10, ratio: 5, timestamp: '' } });
  last().receive({ type: 'volume_alert', instrument_key: TCS, data: { volume_1m: 50, baseline: 10, ratio: 5, timestamp: '' } });
  assert.deepEqual(heard, [[RELIANCE, 5]]);

  const pending = client.createAlert({ instrument_key: RELIANCE, condition: 'above', price: 1500 });
  client.close();
  await assert.rejects(pending, (error) => error.code === 'connection_closed');
});

test('volume alert subscriptions are counted per key and told to the daemon once per task, as a difference', async () => {
  const { client, last } = harness();
  last().open();
  const task = () => new Promise((resolve) => setImmediate(resolve));
  const one = client.subscribeVolumeAlerts([RELIANCE], () => {});
  const two = client.subscribeVolumeAlerts([RELIANCE, TCS], () => {});
  assert.deepEqual(last().sent, [], 'sent at the end of the task');
  await task();
  assert.deepEqual(last().sent.splice(0), [{ action: 'subscribe', channel: 'volume_alerts', instruments: [RELIANCE, TCS] }]);

  const all = client.subscribeVolumeAlerts(null, () => {});
  await task();
  assert.deepEqual(last().sent.splice(0), [{ action: 'subscribe', channel: 'volume_alerts', instruments: ['*'] }]);
  one();
  one();
  await task();
  assert.deepEqual(last().sent.splice(0), [], 'RELIANCE is still held by the second subscriber');

  all();
  await task();
  // All released while keys are held: the daemon's "all" goes, with the keys, which are asked for again.
  assert.deepEqual(last().sent.splice(0), [
    { action: 'unsubscribe', channel: 'volume_alerts' },
    { action: 'subscribe', channel: 'volume_alerts', instruments: [RELIANCE, TCS] },
  ]);

  // StrictMode's mount, unmount and mount again, in one task: nothing changes for the daemon.
  client.subscribeVolumeAlerts([TCS], () => {})();
  const again = client.subscribeVolumeAlerts([TCS], () => {});
  two();
  await task();
  assert.deepEqual(last().sent.splice(0), [{ action: 'unsubscribe', channel: 'volume_alerts', instruments: [RELIANCE] }]);
  again();
  await task();
  assert.deepEqual(last().sent.splice(0), [{ action: 'unsubscribe', channel: 'volume_alerts', instruments: [TCS] }]);
});

test('watchAlerts lists once however often it is held, and again after a reconnect', async () => {
  const { client, last, clock } = harness();
  const views = [];
  client.on('alerts', () => views.push(client.alertsView));
  const release = client.watchAlerts();
  last().open();
  const again = client.watchAlerts(); // StrictMode's second mount, before the answer
  assert.deepEqual(last().sent, [{ action: 'alert_list', req: 'r1' }]);
  last().receive({ type: 'error', code: 'alerts_unavailable', message: 'alerts are off', req: 'r1' });
  await Promise.resolve();
  assert.equal(client.alertsView.error.code, 'alerts_unavailable');
  assert.equal(client.alertsView.loaded, false);
  release();
  last().drop();
  clock.advance(3000);
  last().open();
  assert.deepEqual(last().sent, [{ action: 'alert_list', req: 'r2' }]);
  last().receive({ type: 'alerts', alerts: [{ id: 'al-9', state: 'armed', fire_count: 0 }], req: 'r2' });
  assert.deepEqual(client.alertsView, { alerts: client.alertList, loaded: true, error: null });
  assert.ok(Object.isFrozen(client.alertsView));
  assert.notEqual(views[0], views.at(-1), 'a new snapshot on every change');
  again();
});

// ---- slow connection and latency ------------------------------------------------------------------------

test('a slow_consumer warning sets slow and emits it; warning_cleared and a new connection clear it', () => {
  const h = harness();
  const events = [];
  h.client.on('slow', (e) => events.push(e));
  h.last().open();
  assert.equal(h.client.slow, null);
  h.last().receive({ type: 'warning', code: 'slow_consumer', message: 'not keeping up', interval_ms: 1000 });
  assert.equal(h.client.slow.intervalMs, 1000);
  assert.equal(h.client.slow.message, 'not keeping up');
  h.last().receive({ type: 'warning_cleared', code: 'slow_consumer', message: 'full rate' });
  assert.equal(h.client.slow, null);
  h.last().receive({ type: 'warning', code: 'slow_consumer', message: 'again', interval_ms: 500 });
  h.last().drop();
  h.clock.advance(3000);
  h.last().open();
  assert.equal(h.client.slow, null, 'a new connection starts at full rate');
  assert.deepEqual(events.map((e) => [e.slow, e.message]), [[true, 'not keeping up'], [false, 'full rate'], [true, 'again'], [false, '']]);
  h.last().receive({ type: 'warning', code: 'something_else', message: 'x' });
  assert.equal(h.client.slow, null, 'only slow_consumer is a slow connection');
});

test('with timing on, every price subscribe asks for it (after a reconnect too) and latency is computed per price', () => {
  const base = Date.parse('2026-01-19T10:30:00.000Z');
  const h = harness({ timing: true, now: () => base + 250 });
  const samples = [];
  h.client.on('latency', (sample) => samples.push(sample));
  h.last().open();
  h.client.subscribe([RELIANCE]);
  assert.deepEqual(h.last().sent, [{ action: 'subscribe', instruments: [RELIANCE], timing: true }]);
  h.client.subscribeTopic('leaderboard');
  assert.equal(h.last().sent[1].timing, undefined, 'topics have no timing');

  h.last().receive(price(RELIANCE, 1500, 1, { timestamp: '2026-01-19T10:30:00.100Z', received_at: '2026-01-19T10:30:00.112500Z' }));
  assert.deepEqual(samples, [{ key: RELIANCE, exchangeToDaemonMs: 12.5, daemonToClientMs: 137.5, at: base + 250 }]);
  assert.equal(h.client.latency, samples[0]);
  assert.equal(h.client.price(RELIANCE).received_at, '2026-01-19T10:30:00.112500Z');
  h.last().receive(price(RELIANCE, 1501, 2));
  assert.equal(samples.length, 1, 'a frame without received_at is no sample');

  h.last().drop();
  h.clock.advance(3000);
  h.last().open();
  assert.deepEqual(h.last().sent[0], { action: 'subscribe', instruments: [RELIANCE], timing: true });
});

test('setTiming tells the daemon at once, and without timing nothing asks for it', () => {
  const h = harness();
  h.last().open();
  h.client.subscribe([RELIANCE]);
  assert.deepEqual(h.last().sent, [{ action: 'subscribe', instruments: [RELIANCE] }]);
  h.client.setTiming(true);
  assert.deepEqual(h.last().sent[1], { action: 'subscribe', instruments: [], timing: true });
  h.client.setTiming(false);
  assert.deepEqual(h.last().sent[2], { action: 'subscribe', instruments: [], timing: false });
  assert.equal(h.client.latency, null);
});

test('parseTimeMs keeps microseconds and reads the daemon\'s millisecond timestamps', () => {
  // A double holds epoch milliseconds to about 0.25 µs: close enough, not exact.
  assert.ok(Math.abs(parseTimeMs('2026-01-19T10:30:00.123456Z') - Date.parse('2026-01-19T10:30:00.000Z') - 123.456) < 0.001);
  assert.equal(parseTimeMs('2026-01-19T10:30:00.123Z'), Date.parse('2026-01-19T10:30:00.123Z'));
  assert.equal(parseTimeMs('2026-01-19T10:30:00Z'), Date.parse('2026-01-19T10:30:00Z'));
  assert.ok(Number.isNaN(parseTimeMs('not a time')));
  assert.ok(Number.isNaN(parseTimeMs(undefined)));
});

test('useSlowConnection and useLatency read the socket, and their store hears each change', () => {
  const base = Date.parse('2026-01-19T10:30:00.000Z');
  const h = harness({ timing: true, now: () => base + 20 });
  let changes = 0;
  // Just enough React for two store hooks: the context gives this socket; the store subscribes and reads.
  const react = {
    createContext: () => ({ Provider: null }),
    createElement: () => null,
    useCallback: (fn) => fn,
    useContext: () => h.client,
    useEffect: () => {},
    useRef: (value) => ({ current: value }),
    useState: (value) => [value, () => {}],
    useSyncExternalStore: (subscribe, snapshot) => {
      subscribe(() => changes++);
      return snapshot();
    },
  };
  const { useSlowConnection, useLatency } = createPriceHooks(react);
  assert.equal(useSlowConnection(), null);
  assert.equal(useLatency(), null);
  h.last().open();
  h.last().receive({ type: 'warning', code: 'slow_consumer', message: 'behind', interval_ms: 1000 });
  h.last().receive(price(RELIANCE, 1500, 1, { timestamp: '2026-01-19T10:30:00.000Z', received_at: '2026-01-19T10:30:00.005000Z' }));
  assert.equal(changes, 2);
  assert.equal(useSlowConnection().intervalMs, 1000);
  assert.deepEqual({ ...useLatency() }, { key: RELIANCE, exchangeToDaemonMs: 5, daemonToClientMs: 15, at: base + 20 });
});
