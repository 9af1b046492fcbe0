// '@pricedaemon/client/react': the hooks of price-hooks.js bound to the app's own React.
//
//   import { usePrice, usePrices, useConnectionStatus, usePriceWebSocket } from '@pricedaemon/client/react';

import * as React from 'react';
import { createPriceHooks } from './price-hooks.js';

export { createPriceHooks } from './price-hooks.js';
export { getPriceSocket, PriceSocket, ConnectionStatus, RequestError } from './price-socket.js';

export const {
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
} = createPriceHooks(React);
