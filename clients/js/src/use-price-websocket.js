// use-price-websocket.js: the usePriceWebSocket React hook, built on price-socket.js.
//
// React is passed in rather than imported, so this file needs no bundler and no import map, and works with
// whatever React the app already has:
//
//   import React from 'react';
//   import { createUsePriceWebSocket } from './use-price-websocket.js';
//   export const usePriceWebSocket = createUsePriceWebSocket(React, { url: 'wss://prices.example/api/ws/prices' });
//
//   const { prices, connectionStatus, feedStatus, subscribe, unsubscribe } = usePriceWebSocket();
//
// All components share one socket. Each component's subscriptions are counted on its own: what it still
// holds when it unmounts is released for it, and unsubscribe() never releases another component's keys.

import { getPriceSocket } from './price-socket.js';

export function createUsePriceWebSocket(React, options = {}) {
  const { useCallback, useEffect, useRef, useState } = React;

  return function usePriceWebSocket() {
    const socket = getPriceSocket(options);
    const [prices, setPrices] = useState(() => socket.prices());
    const [connectionStatus, setConnectionStatus] = useState(socket.status);
    const [statusDetail, setStatusDetail] = useState(socket.statusDetail);
    const [feedStatus, setFeedStatus] = useState(socket.feed);
    const held = useRef(new Map()); // key -> references this component holds

    useEffect(() => {
      const offs = [
        socket.on('price', ({ key, data }) => setPrices((previous) => ({ ...previous, [key]: data }))),
        socket.on('status', ({ status, detail }) => {
          setConnectionStatus(status);
          setStatusDetail(detail);
        }),
        socket.on('feed', (feed) => setFeedStatus(feed)),
      ];
      const mine = held.current;
      return () => {
        offs.forEach((off) => off());
        for (const [key, count] of mine) {
          for (let i = 0; i < count; i++) {
            socket.unsubscribe([key]);
          }
        }
        mine.clear();
      };
    }, [socket]);

    const subscribe = useCallback((keys) => {
      const list = [...new Set(typeof keys === 'string' ? [keys] : keys)];
      for (const key of list) {
        held.current.set(key, (held.current.get(key) ?? 0) + 1);
      }
      socket.subscribe(list);
    }, [socket]);

    const unsubscribe = useCallback((keys) => {
      const mine = [];
      for (const key of new Set(typeof keys === 'string' ? [keys] : keys)) {
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
      socket.unsubscribe(mine);
    }, [socket]);

    return { prices, connectionStatus, statusDetail, feedStatus, subscribe, unsubscribe, socket };
  };
}
