// The liveblog fragments page's one script (liveblog/README.md, "The fragments page's one script"):
// an htmx extension, "socket-state", enabled beside htmx's WebSocket extension by hx-ext="ws,socket-state".
// It gives that page what JsonSocket gives the JSON pages:
// - the connection badge, kept up to date from htmx-ext-ws's events: without a script, the page could
//   only listen to them with hx-on, which is eval, and the CSP refuses it;
// - the same reconnect policy: htmx-ext-ws's own starts its count over at every open, so a server
//   that accepts and then closes at once would get an attempt every second or so.
//
// An ES module, so that it imports the badge and the policy from socket.js rather than copy them. It
// imports them by a static path, not with import() from base.html's hashed href as the JSON pages do,
// so that it runs before htmx processes the page on DOMContentLoaded: a module with static imports
// always does, one awaiting import() may not, and would miss the first htmx:wsOpen. In production
// collectstatic rewrites those paths to the hashed copies (realtime_common.staticfiles).
import { elementsById } from './elements.js';
import { ReconnectPolicy, showSocketState } from './socket.js';

// The close codes htmx-ext-ws 2.0.4 tries again after; after any other it stops for good.
const RETRIED_CLOSE_CODES = [1006, 1011, 1012, 1013];

/** The badge's state after the htmx event `name` (`code`: a close's), when it showed `state`. */
export function socketStateAfter(name, { code, state }) {
  if (name === 'htmx:wsConnecting') return state === 'connecting' ? 'connecting' : 'reconnecting';
  if (name === 'htmx:wsOpen') return 'open';
  if (name === 'htmx:wsClose') return RETRIED_CLOSE_CODES.includes(code) ? 'reconnecting' : 'closed';
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
    htmx.createWebSocket = (url) => {
      const socket = create(url);
      socket.addEventListener('close', (event) => { closeCode = event.code; });
      return socket;
    };
    htmx.config.wsReconnectDelay = () => policy.nextDelay(closeCode);
  },
  onEvent(name, event) {
    if (name === 'htmx:wsOpen') policy.opened();
    if (name === 'htmx:wsClose') policy.dropped();
    const next = socketStateAfter(name, { code: event.detail.event?.code, state });
    if (next !== state) showSocketState(badge, (state = next));
  },
});
