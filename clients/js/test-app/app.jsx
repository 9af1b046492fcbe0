// The test app of the React hooks: real React and ReactDOM from npm, bundled by esbuild, loaded by the
// Chromium tests (PriceDaemon.Tests/Browser/ReactHooksTests.cs) and the measurement
// (clients/js/bench/measure-hooks.mjs) from the daemon's own origin. It renders nothing until told; the
// tests drive it through window.testApp.
import * as React from 'react';
import { StrictMode, useEffect } from 'react';
import { createRoot } from 'react-dom/client';
import { getPriceSocket } from '../src/price-socket.js';
import { PriceSocketProvider, useAlerts, usePrice, usePrices, usePriceWebSocket, useVolumeAlerts } from '../src/react.js';
import { createUsePriceWebSocket } from '../src/use-price-websocket.js';

// The page's shared socket, so the old hook (which always takes the shared one) reads the same prices; signed in
// when the page's address has ?token=.
const token = new URLSearchParams(location.search).get('token');
const socket = getPriceSocket({ storage: null, reconnectDelayMs: 200, token });
const useOldPriceWebSocket = createUsePriceWebSocket(React, {});

// What the page sees, for the tests to read.
const state = {
  renders: {}, // component id -> renders
  distinct: {}, // component id -> distinct price objects rendered
  last: {},
  sent: [], // every message this page sent the daemon
  acks: [], // every 'subscribed' frame, in order
  ticks: {}, // instrument key -> price events seen by the socket
  tickCount: 0,
  alertFrames: [], // the type (and req) of every alert answer and error, in the order they came
};
const hooks = {}; // what the alert hooks returned in the last render, for the tests to call

const send = socket._send.bind(socket);
socket._send = (message) => {
  state.sent.push(message);
  send(message);
};
socket.onFrame('subscribed', (frame) => state.acks.push(frame));
for (const type of ['alert_created', 'alerts', 'alert_deleted', 'error']) {
  socket.onFrame(type, (frame) => state.alertFrames.push({ type, req: frame.req, code: frame.code }));
}
socket.on('price', ({ key }) => {
  state.ticks[key] = (state.ticks[key] ?? 0) + 1;
  state.tickCount++;
});

function rendered(id, value) {
  state.renders[id] = (state.renders[id] ?? 0) + 1;
  if (state.last[id] !== value || state.distinct[id] === undefined) {
    state.distinct[id] = (state.distinct[id] ?? 0) + 1;
    state.last[id] = value;
  }
}

/** One instrument through usePrice. */
function Quote({ id, instrument }) {
  const price = usePrice(instrument);
  rendered(id, price);
  return <span data-id={id} data-price={price?.last_price ?? ''}>{price ? price.last_price.toFixed(2) : '—'}</span>;
}

/** A list through usePrices. */
function Watchlist({ id, keys }) {
  const prices = usePrices(keys);
  rendered(id, prices);
  return <ul data-id={id}>{keys.map((key) => <li key={key} data-price={prices[key]?.last_price ?? ''}>{key}</li>)}</ul>;
}

// The guide's page: subscribe in an effect, render `prices`.
function guidePage(useHook) {
  return function GuidePage({ id, keys }) {
    const { prices, connectionStatus, subscribe, unsubscribe } = useHook();
    useEffect(() => {
      subscribe(keys);
      return () => unsubscribe(keys);
    }, [keys, subscribe, unsubscribe]);
    rendered(id, prices);
    return (
      <table data-id={id} data-status={connectionStatus}>
        <tbody>{keys.map((key) => <tr key={key}><td>{key}</td><td>{prices[key]?.last_price ?? ''}</td></tr>)}</tbody>
      </table>
    );
  };
}
const NewGuidePage = guidePage(usePriceWebSocket);
const OldGuidePage = guidePage(useOldPriceWebSocket);

/** The scalable board: a row per key, each on usePrice. */
function QuoteBoard({ keys }) {
  return <div>{keys.map((key) => <Quote key={key} id={`row:${key}`} instrument={key} />)}</div>;
}

/** The user's alerts through useAlerts. */
function AlertList({ id }) {
  const { alerts, loaded, error, createAlert, deleteAlert } = useAlerts();
  Object.assign(hooks, { createAlert, deleteAlert });
  rendered(id, alerts);
  return (
    <ul data-id={id} data-loaded={String(loaded)} data-error={error?.code ?? ''}>
      {alerts.map((a) => <li key={a.id} data-alert-id={a.id} data-state={a.state} data-fired-price={a.fired_price ?? ''}>{a.note}</li>)}
    </ul>
  );
}

/** Unusual volume of some keys through useVolumeAlerts. */
function VolumeFeed({ id, keys }) {
  const bursts = useVolumeAlerts(keys, { limit: 3 });
  rendered(id, bursts);
  return <ol data-id={id}>{bursts.map((b) => <li key={`${b.instrument_key} ${b.timestamp}`} data-key={b.instrument_key} data-ratio={b.ratio}>{b.volume_1m}</li>)}</ol>;
}

const COMPONENTS = { Quote, Watchlist, NewGuidePage, OldGuidePage, QuoteBoard, AlertList, VolumeFeed };

let root = null;

window.testApp = {
  state,
  socket,
  hooks,
  /** Mounts [{ component, props }] (props.keys frozen so effects see stable arrays), optionally in StrictMode. */
  mount(items, { strict = false } = {}) {
    const children = items.map(({ component, props }, i) => {
      const Component = COMPONENTS[component];
      const frozen = props.keys ? { ...props, keys: Object.freeze([...props.keys]) } : props;
      return <Component key={i} {...frozen} />;
    });
    const tree = <PriceSocketProvider socket={socket}>{children}</PriceSocketProvider>;
    root = createRoot(document.getElementById('root'));
    root.render(strict ? <StrictMode>{tree}</StrictMode> : tree);
  },
  unmount() {
    root?.unmount();
    root = null;
  },
  devMode: process.env.NODE_ENV !== 'production',
};
