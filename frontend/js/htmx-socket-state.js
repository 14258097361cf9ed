// The liveblog fragments page's one script (liveblog/README.md, "The fragments page's one script"):
// an htmx extension, "socket-state", enabled beside htmx's WebSocket extension by hx-ext="ws,socket-state".
// One ws-connect per page: the badge, the policy and the last close code below are the page's, not an element's.
// Load it after ws.min.js, whose htmx.createWebSocket it wraps.
// It gives that page what JsonSocket gives the JSON pages:
// - the connection badge, kept up to date from htmx-ext-ws's events: without a script, the page could
//   only listen to them with hx-on, which is eval, and the CSP refuses it;
// - the same reconnect policy: htmx-ext-ws's own starts its count over at every open, so a server
//   that accepts and then closes at once would get an attempt every second or so;
// - a reconnect after every close that is not final: htmx-ext-ws gives up after any code but 1006, 1011,
//   1012 and 1013, so daphne's 1000 at --websocket_timeout, a proxy's 1001 or a bare close (1005) would
//   leave the page "Disconnected" for good.
//
// An ES module, so that it imports the badge and the policy from socket.js rather than copy them. It
// imports them by a static path, not with import() from base.html's hashed href as the JSON pages do,
// so that it runs before htmx processes the page on DOMContentLoaded: a module with static imports
// always does, one awaiting import() may not, and would miss the first htmx:wsOpen. In production
// collectstatic rewrites those paths to the hashed copies (realtime_common.staticfiles).
import { elementsById } from './elements.js';
import { ReconnectPolicy, isFinalCloseCode, showSocketState } from './socket.js';

// The close codes htmx-ext-ws 2.0.4 tries again after; after any other it stops, and the extension takes over.
const RETRIED_CLOSE_CODES = [1006, 1011, 1012, 1013];

/** The badge's state after the htmx event `name` (`code`: a close's), when it showed `state`. */
export function socketStateAfter(name, { code, state }) {
  if (name === 'htmx:wsConnecting') return state === 'connecting' ? 'connecting' : 'reconnecting';
  if (name === 'htmx:wsOpen') return 'open';
  if (name === 'htmx:wsClose') return isFinalCloseCode(code) ? 'closed' : 'reconnecting';
  // Any other event (messages, swaps) leaves it, htmx:wsError too: a close always follows, and decides.
  return state;
}

const { badge } = elementsById({ badge: 'connection-state' });
const policy = new ReconnectPolicy();
let state = badge.dataset.socketState; // "connecting", as the page is rendered
let closeCode = null;

htmx.defineExtension('socket-state', {
  init() {
    // htmx-ext-ws asks for the delay before it triggers htmx:wsClose, and tells it only its own count:
    // the close's code is heard on the socket itself, by a listener added before htmx-ext-ws's onclose.
    const create = htmx.createWebSocket;
    if (!create) throw new Error('socket-state: load ws.min.js (htmx-ext-ws) before htmx-socket-state.js');
    htmx.createWebSocket = (url) => {
      const socket = create(url);
      socket.addEventListener('close', (event) => { closeCode = event.code; });
      return socket;
    };
    htmx.config.wsReconnectDelay = () => policy.nextDelay(closeCode);
  },
  onEvent(name, event) {
    if (name === 'htmx:wsOpen') policy.opened();
    if (name === 'htmx:wsClose') {
      policy.dropped();
      const { code } = event.detail.event;
      // A close htmx-ext-ws gives up after, but the server did not mean as final (4400-4499, e.g. the
      // 4404 of a deleted liveblog): try again, as JsonSocket does. reconnect() is htmx-ext-ws's own
      // connect, so the new socket gets its listeners and events like the first one. Not for an element
      // a swap took out of the page: htmx-ext-ws closed its socket on purpose.
      if (!RETRIED_CLOSE_CODES.includes(code) && !isFinalCloseCode(code) && event.detail.elt.isConnected) {
        setTimeout(() => event.detail.socketWrapper.reconnect(), policy.nextDelay(code));
      }
    }
    const next = socketStateAfter(name, { code: event.detail.event?.code, state });
    if (next !== state) showSocketState(badge, (state = next));
  },
});
