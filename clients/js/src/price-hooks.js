// price-hooks.js: the React hooks of @pricedaemon/client, on React's own store contract (useSyncExternalStore).
// React is passed in, so this file imports nothing but price-socket.js: '@pricedaemon/client/react' binds it to
// the app's 'react', and a page without a bundler can bind it to whatever React it loaded
// (the daemon serves this file at /price-hooks.js):
//
//   const { usePrice, usePrices, useConnectionStatus, usePriceWebSocket } = createPriceHooks(React);
//
// Every hook reads from one PriceSocket: the one of the nearest <PriceSocketProvider socket={...}>, else the
// page's shared getPriceSocket(). What a component renders depends only on the keys it shows: a hook is told
// about a price change only for its own keys (PriceSocket.onKey), and its snapshot is the same object until
// one of them changes, so a tick of another key re-renders nothing.
//
// Subscriptions belong to the component: taken in an effect, released in its cleanup (unmount, or a change of
// keys). The socket counts references per key and tells the daemon once per task (deferred), so React
// StrictMode's mount-unmount-mount sends a single subscribe, and a list of a hundred rows one message.

import { getPriceSocket } from './price-socket.js';

const SEPARATOR = '\u0000';
const ALL = '\u0000*'; // useVolumeAlerts(null): every instrument (no key list joins to this)
const NONE = Object.freeze([]);

function keyList(keys) {
  const list = typeof keys === 'string' ? [keys] : [...(keys ?? [])];
  return [...new Set(list.filter((key) => typeof key === 'string' && key.length > 0))];
}

export function createPriceHooks(React) {
  const { createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore } = React;
  if (typeof useSyncExternalStore !== 'function') {
    throw new Error('@pricedaemon/client: React 18 or later is required (useSyncExternalStore)');
  }

  const PriceSocketContext = createContext(null);

  /** Makes every hook below it use `socket` instead of the page's shared one. */
  function PriceSocketProvider({ socket, children }) {
    return createElement(PriceSocketContext.Provider, { value: socket }, children);
  }

  /** The PriceSocket the hooks of this component use. */
  function usePriceSocket() {
    return useContext(PriceSocketContext) ?? getPriceSocket();
  }

  // Holds one reference to each key for as long as the component is mounted with these keys.
  function useHeldKeys(socket, id) {
    useEffect(() => {
      if (id === '') {
        return undefined;
      }
      return socket.subscribe(id.split(SEPARATOR), { deferred: true });
    }, [socket, id]);
  }

  /** The last price of `key` (with `stale`), or undefined; re-renders only when that key's price changes. */
  function usePrice(key) {
    const socket = usePriceSocket();
    const id = typeof key === 'string' ? key : '';
    useHeldKeys(socket, id);
    const subscribe = useCallback((onChange) => (id === '' ? () => {} : socket.onKey(id, onChange)), [socket, id]);
    const snapshot = useCallback(() => (id === '' ? undefined : socket.priceSnapshot(id)), [socket, id]);
    return useSyncExternalStore(subscribe, snapshot, snapshot);
  }

  // The prices of a list of keys as one object, the same object until one of them changes.
  function usePricesById(socket, id) {
    const cache = useRef(null);
    const subscribe = useCallback((onChange) => {
      const offs = id === '' ? [] : id.split(SEPARATOR).map((key) => socket.onKey(key, onChange));
      return () => offs.forEach((off) => off());
    }, [socket, id]);
    const snapshot = useCallback(() => {
      const keys = id === '' ? [] : id.split(SEPARATOR);
      const views = keys.map((key) => socket.priceSnapshot(key));
      const cached = cache.current;
      if (cached && cached.socket === socket && cached.id === id && cached.views.every((view, i) => view === views[i])) {
        return cached.value;
      }
      const value = {};
      keys.forEach((key, i) => {
        if (views[i] !== undefined) {
          value[key] = views[i];
        }
      });
      cache.current = { socket, id, views, value };
      return value;
    }, [socket, id]);
    return useSyncExternalStore(subscribe, snapshot, snapshot);
  }

  /** key -> last price for each of `keys` that has one; re-renders only when one of these keys changes. */
  function usePrices(keys) {
    const socket = usePriceSocket();
    const id = keyList(keys).join(SEPARATOR);
    useHeldKeys(socket, id);
    return usePricesById(socket, id);
  }

  // A property of the socket that changes with one of its events: status, feed, slow, latency.
  function useSocketValue(event, property) {
    const socket = usePriceSocket();
    const subscribe = useCallback((onChange) => socket.on(event, onChange), [socket, event]);
    const snapshot = useCallback(() => socket[property], [socket, property]);
    return useSyncExternalStore(subscribe, snapshot, snapshot);
  }

  /** The socket's connection status: 'connecting' | 'connected' | 'reconnecting' | 'error' | 'closed'. */
  function useConnectionStatus() {
    return useSocketValue('status', 'status');
  }

  /** The daemon's last feed status frame ({ status, message, epoch }), or null before the first. */
  function useFeedStatus() {
    return useSocketValue('feed', 'feed');
  }

  /** The daemon's slow_consumer warning in force ({ message, intervalMs, since }), or null at full rate. */
  function useSlowConnection() {
    return useSocketValue('slow', 'slow');
  }

  /**
   * The last latency sample ({ key, exchangeToDaemonMs, daemonToClientMs, at }), or null: needs a socket made with
   * { timing: true }. Re-renders on every timed price; a page that shows it often may prefer socket.on('latency').
   */
  function useLatency() {
    return useSocketValue('latency', 'latency');
  }

  /**
   * The original guide's hook: { prices, connectionStatus, subscribe, unsubscribe } (plus statusDetail,
   * feedStatus and socket). `prices` holds the keys this component subscribed, so the component re-renders
   * when one of those changes, not on every tick of the socket. subscribe/unsubscribe count this component's
   * references; whatever it still holds is released when it unmounts.
   */
  function usePriceWebSocket() {
    const socket = usePriceSocket();
    const held = useRef(new Map()); // key -> references this component holds
    const [id, setId] = useState('');
    const connectionStatus = useConnectionStatus();
    const statusDetail = useSyncExternalStore(
      useCallback((onChange) => socket.on('status', onChange), [socket]),
      useCallback(() => socket.statusDetail, [socket]));
    const feedStatus = useFeedStatus();

    const publish = useCallback(() => setId([...held.current.keys()].sort().join(SEPARATOR)), []);

    useEffect(() => {
      const mine = held.current;
      return () => {
        const keys = [...mine.keys()];
        for (const [key, count] of mine) {
          for (let i = 0; i < count; i++) {
            socket.unsubscribe([key], { deferred: true });
          }
        }
        mine.clear();
        if (keys.length > 0) {
          setId(''); // StrictMode's remount starts from nothing held, as a real mount does
        }
      };
    }, [socket]);

    const subscribe = useCallback((keys) => {
      const list = keyList(keys);
      for (const key of list) {
        held.current.set(key, (held.current.get(key) ?? 0) + 1);
      }
      socket.subscribe(list, { deferred: true });
      publish();
    }, [socket, publish]);

    const unsubscribe = useCallback((keys) => {
      const mine = [];
      for (const key of keyList(keys)) {
        const count = held.current.get(key) ?? 0;
        if (count > 0) {
          mine.push(key);
          if (count === 1) {
            held.current.delete(key);
          } else {
            held.current.set(key, count - 1);
          }
        }
      }
      socket.unsubscribe(mine, { deferred: true });
      publish();
    }, [socket, publish]);

    const prices = usePricesById(socket, id);
    const onNotification = useCallback((handler) => socket.onNotification(handler), [socket]);
    const onAnnouncement = useCallback((callback) => socket.onAnnouncement(callback), [socket]);
    const subscribeTopic = useCallback((topics, callback) => socket.subscribeTopic(topics, callback), [socket]);
    return { prices, connectionStatus, statusDetail, feedStatus, subscribe, unsubscribe, socket, onNotification, onAnnouncement, subscribeTopic };
  }

  /** The last value of `topic` (e.g. 'leaderboard'), held while the component is mounted; re-renders on each new one. */
  function useTopic(topic) {
    const socket = usePriceSocket();
    const subscribe = useCallback((onChange) => (topic ? socket.subscribeTopic(topic, () => onChange()) : () => {}), [socket, topic]);
    const snapshot = useCallback(() => (topic ? socket.topic(topic) : undefined), [socket, topic]);
    return useSyncExternalStore(subscribe, snapshot, snapshot);
  }

  /**
   * The order book of `instrumentKey` (`{ bids, asks, timestamp, seq, source }`, levels `[price, quantity, orders]`),
   * held while the component is mounted; re-renders on each new one. `{ levels: 30 }` asks for the 30-level book.
   */
  function useDepth(instrumentKey, options) {
    const socket = usePriceSocket();
    const levels = options?.book === true ? 30 : (options?.levels ?? 5);
    const subscribe = useCallback(
      (onChange) => (instrumentKey ? socket.subscribeDepth(instrumentKey, () => onChange(), { levels }) : () => {}),
      [socket, instrumentKey, levels],
    );
    const snapshot = useCallback(() => (instrumentKey ? socket.depth(instrumentKey, { levels }) : undefined), [socket, instrumentKey, levels]);
    return useSyncExternalStore(subscribe, snapshot, snapshot);
  }

  /**
   * The bars of `key` at `interval` ('1m', '5m', '15m', '1h', '1d'), held while mounted: `{ bars, forming }` (closed
   * bars oldest first, the forming bar or null), or undefined until the history has come. Re-renders on every bar.
   */
  function useCandles(key, interval, history = 200) {
    const socket = usePriceSocket();
    const subscribe = useCallback(
      (onChange) => (key && interval ? socket.subscribeCandles(key, interval, { history }, () => onChange()) : () => {}),
      [socket, key, interval, history],
    );
    const snapshot = useCallback(() => (key && interval ? socket.candles(key, interval) : undefined), [socket, key, interval]);
    return useSyncExternalStore(subscribe, snapshot, snapshot);
  }

  /**
   * Calls `handler(notification)` for this user's notifications while the component is mounted; each is acked
   * once the handler returned (see PriceSocket.onNotification). The latest handler is used without resubscribing.
   */
  function useNotifications(handler) {
    const socket = usePriceSocket();
    const latest = useRef(handler);
    latest.current = handler;
    useEffect(() => socket.onNotification((notification) => latest.current(notification)), [socket]);
  }

  /** The announcements in force ({ id, level, message, expires_at }), newest last; re-renders when they change. */
  function useAnnouncements() {
    const socket = usePriceSocket();
    const subscribe = useCallback((onChange) => socket.onAnnouncement(() => onChange()), [socket]);
    const snapshot = useCallback(() => socket.announcementList, [socket]);
    return useSyncExternalStore(subscribe, snapshot, snapshot);
  }

  /**
   * The user's price alerts, kept current while the component is mounted: `{ alerts, loaded, error, createAlert,
   * deleteAlert, refresh }`. The list is loaded on mount (once per socket, however many components use it) and again
   * after every reconnect; creates, deletes and fired alerts (price_alert notifications) update it without asking
   * again. `error` is the RequestError of the last list that failed (e.g. alerts_unavailable), null after one that
   * worked. createAlert and deleteAlert return the socket's promises: each settles with its own answer.
   */
  function useAlerts() {
    const socket = usePriceSocket();
    useEffect(() => socket.watchAlerts(), [socket]);
    const subscribe = useCallback((onChange) => socket.on('alerts', onChange), [socket]);
    const snapshot = useCallback(() => socket.alertsView, [socket]);
    const view = useSyncExternalStore(subscribe, snapshot, snapshot);
    const createAlert = useCallback((alert, options) => socket.createAlert(alert, options), [socket]);
    const deleteAlert = useCallback((id, options) => socket.deleteAlert(id, options), [socket]);
    const refresh = useCallback((options) => socket.listAlerts(options), [socket]);
    return useMemo(() => ({ ...view, createAlert, deleteAlert, refresh }), [view, createAlert, deleteAlert, refresh]);
  }

  /**
   * The unusual-volume alerts of `keys` (null: every instrument; [] or undefined: none) heard while the component is
   * mounted, newest first, at most `limit` (20): `[{ instrument_key, volume_1m, baseline, ratio, timestamp }]`. The
   * same array until the next alert. Alerts are events: those before the mount are not replayed.
   */
  function useVolumeAlerts(keys, { limit = 20 } = {}) {
    const socket = usePriceSocket();
    const id = keys === null ? ALL : keyList(keys).join(SEPARATOR);
    const bound = Math.max(1, Math.floor(limit));
    // One store per (socket, keys): a change of keys starts from nothing, as those keys' alerts are new.
    const store = useMemo(() => ({ events: NONE }), [socket, id]);
    const subscribe = useCallback((onChange) => {
      if (id === '') {
        return () => {};
      }
      return socket.subscribeVolumeAlerts(id === ALL ? null : id.split(SEPARATOR), (key, data) => {
        store.events = [{ ...data, instrument_key: key }, ...store.events].slice(0, bound);
        onChange();
      });
    }, [socket, store, id, bound]);
    const snapshot = useCallback(() => store.events, [store]);
    return useSyncExternalStore(subscribe, snapshot, snapshot);
  }

  return {
    PriceSocketContext,
    PriceSocketProvider,
    usePriceSocket,
    usePrice,
    usePrices,
    useConnectionStatus,
    useFeedStatus,
    useSlowConnection,
    useLatency,
    usePriceWebSocket,
    useTopic,
    useDepth,
    useCandles,
    useNotifications,
    useAnnouncements,
    useAlerts,
    useVolumeAlerts,
  };
}
