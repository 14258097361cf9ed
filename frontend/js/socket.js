// Reconnecting JSON WebSocket client shared by the demo sites.

const STATUS = {
  connecting: { label: 'Connecting…', title: 'Connecting to the server' },
  open: { label: 'Live', title: 'Receiving updates as they happen' },
  reconnecting: { label: 'Reconnecting…', title: 'Connection lost; retrying automatically' },
  closed: { label: 'Disconnected', title: 'Not receiving updates; reload the page to try again' },
};

// WebSocket.OPEN: the same number in browsers and in every library that mimics them.
const OPEN = 1;
// "Service restart": the server is going away on purpose (a deploy) and another one takes over.
export const CLOSE_SERVICE_RESTART = 1012;
// The final close code of a socket whose user is not logged in (these sites' 4xxx codes mirror HTTP's 4xx).
export const CLOSE_LOGGED_OUT = 4401;

/**
 * Milliseconds to wait before reconnect attempt number `attempt` (0-based):
 * a random delay in the upper half of a ceiling that doubles with each attempt,
 * from 500 ms up to `maxMs` (30 s). The random half spreads out clients that all
 * dropped at once, so they don't come back as a thundering herd; the fixed half
 * is a floor that grows too, so even the unluckiest draws back off: a server
 * that keeps failing gets at most 9 attempts from a page in the first minute,
 * then at most one every 15 s.
 */
export function backoffDelay(attempt, { baseMs = 500, maxMs = 30000, random = Math.random } = {}) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return ceiling / 2 + (random() * ceiling) / 2;
}

/**
 * Milliseconds to wait after a close with 1012 (a deploy): a random spread, 0.5–5 s
 * by default, so every page of a restarted process comes back soon but not all at
 * the same moment.
 */
export function restartDelay({ minMs = 500, maxMs = 5000, random = Math.random } = {}) {
  return minMs + random() * (maxMs - minMs);
}

/**
 * When to try again after a connection dropped: every page's policy, JsonSocket's and the
 * fragments page's htmx extension's (frontend/js/htmx-socket-state.js). Each attempt waits
 * `backoff(attempt)`, and the attempt count starts over only once a connection has stayed open
 * for `stableMs` (30 s), so a server that accepts and closes at once (too many sockets, a
 * consumer that fails) gets fewer and fewer attempts, not one every 500 ms. A close with 1012
 * (a deploy) waits `restart()` instead (0.5–5 s), unless the backoff is longer.
 */
export class ReconnectPolicy {
  #options;
  #attempt = 0;
  #stableTimer = null;

  /**
   * @param {object} [options]
   * @param {(attempt: number) => number} [options.backoff]  reconnect delay in ms
   * @param {() => number} [options.restart]  reconnect delay in ms after a close with 1012
   * @param {number} [options.stableMs]  how long a connection stays open before the backoff starts over
   */
  constructor({ backoff = backoffDelay, restart = restartDelay, stableMs = 30000 } = {}) {
    this.#options = { backoff, restart, stableMs };
  }

  /** A connection opened: if it stays open `stableMs`, the next drop is a new incident. */
  opened() {
    this.#stableTimer = setTimeout(() => { this.#attempt = 0; }, this.#options.stableMs);
  }

  /** The connection is gone (closed, given up, or dropped by the page): it did not stay open. */
  dropped() {
    clearTimeout(this.#stableTimer);
  }

  /** Milliseconds to wait before the next attempt, after a close with `code` (none when there was no close). */
  nextDelay(code) {
    const delay = this.#options.backoff(this.#attempt++);
    // A deploy: come back soon, spread out. Never sooner than the backoff, so that a
    // server restarting in a loop still gets fewer and fewer attempts.
    return code === CLOSE_SERVICE_RESTART ? Math.max(delay, this.#options.restart()) : delay;
  }

  /** Whatever made the last attempts fail may be gone (the network or the page is back): start over. */
  reset() {
    this.#attempt = 0;
  }
}

/** Shows a socket's `state` ("connecting", "open", "reconnecting" or "closed") on the page's badge `element`. */
export function showSocketState(element, state) {
  element.dataset.socketState = state;
  element.textContent = STATUS[state].label;
  element.title = STATUS[state].title;
}

/** 4400–4499: the server refused this client for good (e.g. logged out); retrying can't help. */
export function isFinalCloseCode(code) {
  return code >= 4400 && code <= 4499;
}

/**
 * A URL provider for a JsonSocket on another origin than its page (a socket domain), where
 * the page's cookies do not go: before each attempt it POSTs to `ticketUrl` on the page's own
 * site (with the session cookie and `csrfToken`) and answers the URL of the single-use ticket
 * it gets. Refused for good, it stops the socket, as a final close code does: a 401 (logged
 * out) answers CLOSE_LOGGED_OUT (4401), which the socket's `closeCode` then reports, as if the
 * server had closed it so; a 403 (e.g. a stale page's CSRF token) answers null. Any other failure
 * throws, and the socket tries again with backoff. So does a request with no answer within
 * `timeoutMs` (10 s): a hung request would hang the socket.
 */
export function ticketUrlProvider(ticketUrl, { csrfToken, fetch = globalThis.fetch, timeoutMs = 10000 } = {}) {
  return async () => {
    const request = new AbortController();
    const timer = setTimeout(() => request.abort(new Error(`no ticket: no answer in ${timeoutMs} ms`)), timeoutMs);
    try {
      const response = await fetch(ticketUrl, {
        method: 'POST',
        headers: { 'X-CSRFToken': csrfToken },
        credentials: 'same-origin',
        signal: request.signal,
      });
      if (response.status === 401) return CLOSE_LOGGED_OUT;
      if (response.status === 403) return null;
      if (!response.ok) throw new Error(`no ticket: HTTP ${response.status}`);
      return (await response.json()).url;
    } finally {
      clearTimeout(timer);
    }
  };
}

function buildUrl(url, params, location) {
  const resolved = new URL(url, location?.href);
  // A relative path inherits the page's http(s) scheme; the socket needs the matching ws(s).
  if (resolved.protocol === 'http:') resolved.protocol = 'ws:';
  if (resolved.protocol === 'https:') resolved.protocol = 'wss:';
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value != null) resolved.searchParams.set(key, String(value));
  }
  return resolved.href;
}

/**
 * A WebSocket that speaks JSON and keeps itself connected.
 *
 * `state` is "connecting", "open", "reconnecting" or "closed" (final); each
 * change dispatches a "statechange" Event. Parsed messages go to
 * `onMessage(data)` and are also dispatched as "message" CustomEvents.
 *
 * Reconnecting never makes an incident worse: each attempt waits as a ReconnectPolicy
 * made of `backoff`, `restart` and `stableMs` says.
 * The browser's `online`, and the page becoming visible while waiting to reconnect,
 * start over and connect at once: whatever made the attempts fail may be gone.
 *
 * Heartbeat: after `pingAfterMs` (15 s) without a frame from the server, it sends
 * `ping` ({"type": "ping"}, which every consumer of these sites answers with
 * {"type": "pong"}); after `pongTimeoutMs` (20 s) more without a frame, it drops the
 * connection and reconnects. A connection that died without a close (a network
 * change, a laptop that slept) is noticed within 35 s of the last frame.
 */
export class JsonSocket extends EventTarget {
  #url;
  #options;
  #window;
  #document;
  #pingText;
  #ws = null;
  #timer = null; // the wait before the next attempt
  #heartbeatTimer = null; // sends the ping after a silence, then gives the connection up
  #policy;
  #state = null;
  #closeCode = null;
  #asking = 0; // counts the calls of a URL provider: an answer to any but the latest is dropped

  /**
   * @param {string | (() => Promise<string | null>)} url  absolute ws(s):// URL, or a path
   *   resolved against the page; or an async function called before every attempt for the
   *   URL to use (e.g. `ticketUrlProvider`), which may instead stop the socket for good: with
   *   null, or with a final close code (a number `isFinal` accepts, e.g. 4401) that `closeCode`
   *   then reports; any other number is a failed attempt, tried again with backoff
   * @param {object} [options]
   * @param {(data: any) => void} [options.onMessage]
   * @param {() => object | null | undefined} [options.resume]  query parameters for
   *   each attempt, so a reconnect can ask the server only for what was missed
   * @param {HTMLElement} [options.statusElement]  shows the state to the user
   * @param {typeof WebSocket} [options.WebSocket]  injectable for tests and Node
   * @param {(code: number) => boolean} [options.isFinal]  close codes not worth retrying
   * @param {(attempt: number) => number} [options.backoff]  reconnect delay in ms
   * @param {() => number} [options.restart]  reconnect delay in ms after a close with 1012
   * @param {number} [options.stableMs]  how long a connection stays open before the backoff starts over
   * @param {object | null} [options.ping]  the heartbeat frame; null sends none
   * @param {number} [options.pingAfterMs]  silence from the server before a ping
   * @param {number} [options.pongTimeoutMs]  silence after the ping before the connection is given up
   * @param {Window} [options.window]  gives location and online/offline events
   * @param {Document} [options.document]  gives visibilitychange events
   */
  constructor(url, {
    onMessage,
    resume,
    statusElement,
    WebSocket = globalThis.WebSocket,
    isFinal = isFinalCloseCode,
    backoff = backoffDelay,
    restart = restartDelay,
    stableMs = 30000,
    ping = { type: 'ping' },
    pingAfterMs = 15000,
    pongTimeoutMs = 20000,
    window = globalThis.window,
    document = globalThis.document,
  } = {}) {
    super();
    this.#url = url;
    this.#options = { onMessage, resume, statusElement, WebSocket, isFinal, pingAfterMs, pongTimeoutMs };
    this.#policy = new ReconnectPolicy({ backoff, restart, stableMs });
    this.#pingText = ping == null ? null : JSON.stringify(ping);
    this.#window = window;
    this.#document = document;
    window?.addEventListener('offline', this.#onOffline);
    window?.addEventListener('online', this.#onOnline);
    document?.addEventListener('visibilitychange', this.#onVisibilityChange);
    this.#setState('connecting');
    this.#connect();
  }

  get state() {
    return this.#state;
  }

  /**
   * Once closed: the final close code that stopped the socket (e.g. 4401), the server's or one
   * a URL provider answered, so the page can say what happened; null when it was stopped by
   * close() or a URL provider's null.
   */
  get closeCode() {
    return this.#closeCode;
  }

  /**
   * Sends `data` as JSON. Returns false rather than queueing when the connection is not open,
   * closing included: only the caller knows if it is still worth sending later.
   */
  send(data) {
    if (this.#ws?.readyState !== OPEN) return false;
    this.#ws.send(JSON.stringify(data));
    return true;
  }

  /**
   * Drops the current connection and connects again now, e.g. to resync after missing messages.
   * The backoff goes on from where it was: only a connection that stays open resets it.
   */
  reconnect() {
    if (this.#state === 'closed') return;
    this.#drop();
    this.#setState('reconnecting');
    this.#connect();
  }

  /** Stops for good: no reconnects, no pending timers, no window or document listeners. */
  close() {
    if (this.#state === 'closed') return;
    this.#drop();
    this.#window?.removeEventListener('offline', this.#onOffline);
    this.#window?.removeEventListener('online', this.#onOnline);
    this.#document?.removeEventListener('visibilitychange', this.#onVisibilityChange);
    this.#setState('closed');
  }

  #connect() {
    if (typeof this.#url !== 'function') {
      this.#open(this.#url);
      return;
    }
    const asking = ++this.#asking;
    // A drop, close() or reconnect() meanwhile makes this answer stale.
    const current = () => asking === this.#asking;
    Promise.resolve()
      .then(() => this.#url())
      .then(
        (url) => {
          if (!current()) return;
          if (url == null || (typeof url === 'number' && this.#options.isFinal(url))) {
            this.#closeCode = url ?? null;
            this.close();
          } else if (typeof url === 'number') {
            // A close code that is not final (a provider's bug, or a code the page retries):
            // a failed attempt, like a server's close with it, not a reason to stop for good.
            console.warn(`JsonSocket: the URL provider answered ${url}, not a final close code; retrying`);
            this.#scheduleReconnect(url);
          } else this.#open(url);
        },
        (error) => {
          if (!current()) return;
          console.warn('JsonSocket: no URL to connect to:', error);
          this.#scheduleReconnect();
        },
      );
  }

  #open(url) {
    const { WebSocket, resume } = this.#options;
    const location = this.#window?.location ?? globalThis.location;
    let ws;
    try {
      ws = new WebSocket(buildUrl(url, resume?.(), location));
    } catch (error) {
      // A URL the browser refuses (SyntaxError) fails at once, with no close event to follow.
      console.warn('JsonSocket: cannot open the socket:', error);
      this.#scheduleReconnect();
      return;
    }
    ws.onopen = () => {
      this.#setState('open');
      this.#policy.opened();
      this.#heard();
    };
    ws.onmessage = (event) => {
      this.#heard();
      this.#receive(event.data);
    };
    // Browsers always follow "error" with "close", so a socket that fails
    // before opening is handled here too and grows the backoff like any drop.
    ws.onclose = (event) => {
      this.#detach();
      if (this.#options.isFinal(event.code)) {
        this.#closeCode = event.code;
        this.close();
      } else this.#scheduleReconnect(event.code);
    };
    this.#ws = ws;
  }

  #scheduleReconnect(code) {
    this.#setState('reconnecting');
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#connect();
    }, this.#policy.nextDelay(code));
  }

  // Any frame shows the connection is alive: wait for the next silence.
  #heard() {
    if (this.#pingText == null) return;
    clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = setTimeout(this.#ping, this.#options.pingAfterMs);
  }

  #ping = () => {
    this.#ws.send(this.#pingText);
    this.#heartbeatTimer = setTimeout(this.#giveUp, this.#options.pongTimeoutMs);
  };

  // Nothing came back: the connection died without a close, which the browser may notice only after minutes.
  #giveUp = () => {
    console.warn('JsonSocket: no answer to the ping; reconnecting');
    this.#drop();
    this.#scheduleReconnect();
  };

  // Detach handlers first so the old socket's late close event can't schedule a second reconnect.
  #drop() {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#asking++;
    const ws = this.#ws;
    this.#detach();
    ws?.close();
  }

  #detach() {
    this.#policy.dropped();
    clearTimeout(this.#heartbeatTimer);
    if (this.#ws) this.#ws.onopen = this.#ws.onmessage = this.#ws.onclose = null;
    this.#ws = null;
  }

  #receive(text) {
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      console.warn('JsonSocket: ignoring a message that is not JSON:', text);
      return;
    }
    if (data?.type === 'pong') return; // the heartbeat's answer: #heard() was all it was for
    this.#options.onMessage?.(data);
    this.dispatchEvent(new CustomEvent('message', { detail: data }));
  }

  #setState(state) {
    if (state === this.#state) return;
    this.#state = state;
    if (this.#options.statusElement) showSocketState(this.#options.statusElement, state);
    this.dispatchEvent(new Event('statechange'));
  }

  // The network or the page is back: whatever made the last attempts fail may be gone.
  #reconnectAfresh() {
    this.#policy.reset();
    this.reconnect();
  }

  // A dead network often surfaces only after a long TCP timeout; the browser knows sooner.
  // Keep retrying with backoff rather than wait for "online": the browser's view is only a hint.
  #onOffline = () => {
    this.#drop();
    this.#scheduleReconnect();
  };

  #onOnline = () => this.#reconnectAfresh();

  // The user is back (a tab brought to the front, a laptop woken up): don't make them wait out
  // a long backoff. An attempt already under way is left to finish.
  #onVisibilityChange = () => {
    if (this.#document.visibilityState === 'visible' && this.#timer !== null) this.#reconnectAfresh();
  };
}
