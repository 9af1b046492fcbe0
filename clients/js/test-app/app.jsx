// The test app of the React hooks: real React and ReactDOM from npm, bundled by esbuild, loaded by the
// Chromium tests (PriceDaemon.Tests/Browser/ReactHooksTests.cs) and the measurement
// (clients/js/bench/measure-hooks.mjs) from the daemon's own origin. It renders nothing until told; the
// tests drive it through window.testApp.
import * as React from 'react';
import { StrictMode, useEffect } from 'react';
import { createRoot } from 'react-dom/client';
import { getPriceSocket } from '../src/price-socket.js';
import { PriceSocketProvider, usePrice, usePrices, usePriceWebSocket } from '../src/react.js';
import { createUsePriceWebSocket } from '../src/use-price-websocket.js';

// The page's shared socket, so the old hook (which always takes the shared one) reads the same prices.
const socket = getPriceSocket({ storage: null, reconnectDelayMs: 200 });
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
};

const send = socket._send.bind(socket);
socket._send = (message) => {
  state.sent.push(message);
  send(message);
};
socket.onFrame('subscribed', (frame) => state.acks.push(frame));
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

const COMPONENTS = { Quote, Watchlist, NewGuidePage, OldGuidePage, QuoteBoard };

let root = null;

window.testApp = {
  state,
  socket,
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
