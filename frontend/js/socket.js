// Reconnecting JSON WebSocket client shared by the demo sites.

const STATUS = {
  connecting: { label: 'Connecting…', title: 'Connecting to the server' },
  open: { label: 'Live', title: 'Receiving updates as they happen' },
  reconnecting: { label: 'Reconnecting…', title: 'Connection lost; retrying automatically' },
  closed: { label: 'Disconnected', title: 'Not receiving updates; reload the page to try again' },
};

/**
 * Milliseconds to wait before reconnect attempt number `attempt` (0-based).
 * Full jitter spreads out clients that all dropped at once (a server
 * restart), so they don't come back as a thundering herd; the floor stops an
 * unlucky random() near 0 from turning into a tight reconnect loop.
 */
export function backoffDelay(attempt, { baseMs = 500, maxMs = 15000, random = Math.random } = {}) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.max(baseMs / 2, random() * ceiling);
}

/** 4400–4499: the server refused this client for good (e.g. logged out); retrying can't help. */
export function isFinalCloseCode(code) {
  return code >= 4400 && code <= 4499;
}

/**
 * A URL provider for a JsonSocket on another origin than its page (a socket domain), where
 * the page's cookies do not go: before each attempt it POSTs to `ticketUrl` on the page's own
 * site (with the session cookie and `csrfToken`) and answers the URL of the single-use ticket
 * it gets. A 401 or 403 (logged out) answers null, which stops the socket, as a final close
 * code does; any other failure throws, and the socket tries again with backoff.
 */
export function ticketUrlProvider(ticketUrl, { csrfToken, fetch = globalThis.fetch } = {}) {
  return async () => {
    const response = await fetch(ticketUrl, {
      method: 'POST',
      headers: { 'X-CSRFToken': csrfToken },
      credentials: 'same-origin',
    });
    if (response.status === 401 || response.status === 403) return null;
    if (!response.ok) throw new Error(`no ticket: HTTP ${response.status}`);
    return (await response.json()).url;
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
 */
export class JsonSocket extends EventTarget {
  #url;
  #options;
  #window;
  #ws = null;
  #timer = null;
  #attempt = 0;
  #state = null;
  #asking = 0; // counts the calls of a URL provider: an answer to any but the latest is dropped

  /**
   * @param {string | (() => Promise<string | null>)} url  absolute ws(s):// URL, or a path
   *   resolved against the page; or an async function called before every attempt for the
   *   URL to use (e.g. `ticketUrlProvider`), whose null stops the socket for good
   * @param {object} [options]
   * @param {(data: any) => void} [options.onMessage]
   * @param {() => object | null | undefined} [options.resume]  query parameters for
   *   each attempt, so a reconnect can ask the server only for what was missed
   * @param {HTMLElement} [options.statusElement]  shows the state to the user
   * @param {typeof WebSocket} [options.WebSocket]  injectable for tests and Node
   * @param {(code: number) => boolean} [options.isFinal]  close codes not worth retrying
   * @param {(attempt: number) => number} [options.backoff]  reconnect delay in ms
   * @param {Window} [options.window]  gives location and online/offline events
   */
  constructor(url, {
    onMessage,
    resume,
    statusElement,
    WebSocket = globalThis.WebSocket,
    isFinal = isFinalCloseCode,
    backoff = backoffDelay,
    window = globalThis.window,
  } = {}) {
    super();
    this.#url = url;
    this.#options = { onMessage, resume, statusElement, WebSocket, isFinal, backoff };
    this.#window = window;
    window?.addEventListener('offline', this.#onOffline);
    window?.addEventListener('online', this.#onOnline);
    this.#setState('connecting');
    this.#connect();
  }

  get state() {
    return this.#state;
  }

  /** Sends `data` as JSON. Returns false rather than queueing when not open: only the caller knows if it is still worth sending later. */
  send(data) {
    if (this.#state !== 'open') return false;
    this.#ws.send(JSON.stringify(data));
    return true;
  }

  /** Drops the current connection and connects again now, e.g. to resync after missing messages. */
  reconnect() {
    if (this.#state === 'closed') return;
    this.#drop();
    this.#attempt = 0;
    this.#setState('reconnecting');
    this.#connect();
  }

  /** Stops for good: no reconnects, no pending timers, no window listeners. */
  close() {
    if (this.#state === 'closed') return;
    this.#drop();
    this.#window?.removeEventListener('offline', this.#onOffline);
    this.#window?.removeEventListener('online', this.#onOnline);
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
          if (url == null) this.close();
          else this.#open(url);
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
    const ws = new WebSocket(buildUrl(url, resume?.(), location));
    ws.onopen = () => {
      this.#attempt = 0;
      this.#setState('open');
    };
    ws.onmessage = (event) => this.#receive(event.data);
    // Browsers always follow "error" with "close", so a socket that fails
    // before opening is handled here too and grows the backoff like any drop.
    ws.onclose = (event) => {
      this.#ws = null;
      if (this.#options.isFinal(event.code)) this.close();
      else this.#scheduleReconnect();
    };
    this.#ws = ws;
  }

  #scheduleReconnect() {
    this.#setState('reconnecting');
    const delay = this.#options.backoff(this.#attempt++);
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  // Detach handlers first so the old socket's late close event can't schedule a second reconnect.
  #drop() {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#asking++;
    if (!this.#ws) return;
    this.#ws.onopen = this.#ws.onmessage = this.#ws.onclose = null;
    this.#ws.close();
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
    this.#options.onMessage?.(data);
    this.dispatchEvent(new CustomEvent('message', { detail: data }));
  }

  #setState(state) {
    if (state === this.#state) return;
    this.#state = state;
    const element = this.#options.statusElement;
    if (element) {
      element.dataset.socketState = state;
      element.textContent = STATUS[state].label;
      element.title = STATUS[state].title;
    }
    this.dispatchEvent(new Event('statechange'));
  }

  // A dead network often surfaces only after a long TCP timeout; the browser knows sooner.
  // Keep retrying with backoff rather than wait for "online": the browser's view is only a hint.
  #onOffline = () => {
    this.#drop();
    this.#scheduleReconnect();
  };

  #onOnline = () => this.reconnect();
}
