import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { acceptAndClose, assertNextAttemptAt, assertStormProof } from './storm.mjs';

import {
  CLOSE_LOGGED_OUT, JsonSocket, backoffDelay, isFinalCloseCode, restartDelay, ticketUrlProvider,
} from '../js/socket.js';

// Stands in for the browser WebSocket: records what the client does and lets
// a test play the server's part. Like browsers, a failed attempt fires
// "error" and then "close" with 1006, and readyState follows along.
let sockets = [];

class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closedByClient = false;
    this.readyState = FakeWebSocket.CONNECTING;
    sockets.push(this);
  }

  send(frame) {
    this.sent.push(frame);
  }

  close() {
    this.closedByClient = true;
    this.readyState = FakeWebSocket.CLOSING;
  }

  open() {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.({ type: 'open' });
  }

  receive(data) {
    this.onmessage?.({ type: 'message', data });
  }

  serverClose(code = 1006) {
    this.readyState = FakeWebSocket.CLOSED;
    this.onclose?.({ type: 'close', code });
  }

  fail() {
    this.onerror?.({ type: 'error' });
    this.serverClose(1006);
  }
}

const last = () => sockets.at(-1);

// random() = 1 makes every delay the ceiling: 500, 1000, 2000, ...
const noJitter = (attempt) => backoffDelay(attempt, { random: () => 1 });
// random() = 0: the shortest delays each can draw, the worst case for the server.
const shortest = (attempt) => backoffDelay(attempt, { random: () => 0 });
const shortestRestart = () => restartDelay({ random: () => 0 });

function fakeWindow(href = 'https://example.test/liveblog/') {
  const window = new EventTarget();
  window.location = new URL(href);
  return window;
}

function fakeDocument() {
  const document = new EventTarget();
  document.visibilityState = 'visible';
  return document;
}

function connect({ url = 'wss://example.test/ws/', ...options } = {}) {
  return new JsonSocket(url, { WebSocket: FakeWebSocket, backoff: noJitter, restart: shortestRestart, ...options });
}

beforeEach(() => {
  sockets = [];
  mock.timers.enable({ apis: ['setTimeout'] });
});

afterEach(() => {
  mock.timers.reset();
});

describe('backoffDelay', () => {
  it('draws from the upper half of the ceiling', () => {
    assert.equal(backoffDelay(2, { random: () => 0.5 }), 1500);
    assert.equal(backoffDelay(3, { random: () => 0 }), 2000);
  });

  it('doubles the ceiling with each attempt', () => {
    const delays = [0, 1, 2, 3, 4].map((attempt) => backoffDelay(attempt, { random: () => 1 }));
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000]);
  });

  it('never goes above maxMs, even for huge attempt counts', () => {
    assert.equal(backoffDelay(6, { random: () => 1 }), 30000);
    assert.equal(backoffDelay(5000, { random: () => 1 }), 30000);
    assert.equal(backoffDelay(3, { maxMs: 3000, random: () => 1 }), 3000);
  });

  it('never goes below half the ceiling: the floor grows to 15 s', () => {
    assert.equal(backoffDelay(0, { random: () => 0 }), 250);
    assert.equal(backoffDelay(4, { random: () => 0 }), 4000);
    assert.equal(backoffDelay(10, { random: () => 0 }), 15000);
    assert.equal(backoffDelay(4, { baseMs: 100, random: () => 0 }), 800);
  });

  it('stays within [floor, ceiling] with the real Math.random', () => {
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(2);
      assert.ok(delay >= 1000 && delay <= 2000, `delay ${delay} out of range`);
    }
  });
});

describe('restartDelay', () => {
  it('spreads pages over 0.5–5 s', () => {
    assert.deepEqual([0, 0.5, 1].map((r) => restartDelay({ random: () => r })), [500, 2750, 5000]);
  });
});

describe('isFinalCloseCode', () => {
  it('treats exactly 4400–4499 as final', () => {
    assert.deepEqual(
      [1000, 1006, 4000, 4399, 4400, 4403, 4499, 4500].map(isFinalCloseCode),
      [false, false, false, false, true, true, true, false],
    );
  });
});

describe('JsonSocket URL', () => {
  it('resolves a relative path against the page, https to wss', () => {
    connect({ url: '/ws/liveblog/x/', window: fakeWindow('https://example.test/liveblog/x/') });
    assert.equal(last().url, 'wss://example.test/ws/liveblog/x/');
  });

  it('resolves a relative path against the page, http to ws', () => {
    connect({ url: '/ws/chat/', window: fakeWindow('http://localhost:8000/chat/') });
    assert.equal(last().url, 'ws://localhost:8000/ws/chat/');
  });

  it('uses an absolute URL as is and merges resume params into its query', () => {
    connect({ url: 'ws://other.test/ws/?room=1', resume: () => ({ since: 42, cursor: null, after: undefined }) });
    assert.equal(last().url, 'ws://other.test/ws/?room=1&since=42');
  });

  it('asks resume() again before every attempt', () => {
    let since = 0;
    const resume = mock.fn(() => (since ? { since } : null));
    connect({ url: '/ws/liveblog/x/', resume, window: fakeWindow() });
    assert.equal(last().url, 'wss://example.test/ws/liveblog/x/');

    last().open();
    since = 42;
    last().serverClose();
    mock.timers.tick(500);
    assert.equal(last().url, 'wss://example.test/ws/liveblog/x/?since=42');

    since = 57;
    last().fail();
    mock.timers.tick(1000);
    assert.equal(last().url, 'wss://example.test/ws/liveblog/x/?since=57');
    assert.equal(resume.mock.callCount(), 3);
  });
});

// Lets a URL provider's promise settle (the mocked timers leave setImmediate alone).
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('JsonSocket URL provider', () => {
  it('asks before every attempt and opens the URL it answers, with the resume params', async () => {
    const tickets = ['t1', 't2'];
    const url = mock.fn(async () => `ws://sockets.test/ws/chat/?ticket=${tickets.shift()}`);
    const socket = connect({ url, resume: () => ({ since: 'lobby:4' }) });
    assert.equal(socket.state, 'connecting');
    await settle();
    assert.equal(last().url, 'ws://sockets.test/ws/chat/?ticket=t1&since=lobby%3A4');

    last().open();
    last().serverClose(1012);
    mock.timers.tick(500);
    await settle();
    assert.equal(last().url, 'ws://sockets.test/ws/chat/?ticket=t2&since=lobby%3A4');
    assert.equal(url.mock.callCount(), 2);
  });

  it('tries again with backoff when the provider fails', async (t) => {
    t.mock.method(console, 'warn', () => {});
    let fail = true;
    const url = async () => {
      if (fail) throw new Error('offline');
      return 'ws://sockets.test/ws/';
    };
    const socket = connect({ url });
    await settle();
    assert.equal(socket.state, 'reconnecting');
    assert.equal(sockets.length, 0);

    fail = false;
    mock.timers.tick(500);
    await settle();
    assert.equal(last().url, 'ws://sockets.test/ws/');
  });

  it('stops for good when the provider answers null (logged out)', async () => {
    const url = mock.fn(async () => null);
    const socket = connect({ url });
    await settle();
    assert.equal(socket.state, 'closed');
    mock.timers.tick(10 * 60 * 1000);
    await settle();
    assert.equal(url.mock.callCount(), 1);
    assert.equal(sockets.length, 0);
  });

  it('stops for good with the final close code the provider answers', async () => {
    const url = mock.fn(async () => 4401);
    const socket = connect({ url });
    await settle();
    assert.equal(socket.state, 'closed');
    assert.equal(socket.closeCode, 4401);
    mock.timers.tick(10 * 60 * 1000);
    await settle();
    assert.equal(url.mock.callCount(), 1);
    assert.equal(sockets.length, 0);
  });

  it('tries again with backoff when the provider answers a close code that is not final', async (t) => {
    const warn = t.mock.method(console, 'warn', () => {});
    const answers = [1011, 'ws://sockets.test/ws/'];
    const url = mock.fn(async () => answers.shift());
    const socket = connect({ url });
    await settle();
    assert.equal(socket.state, 'reconnecting');
    assert.equal(socket.closeCode, null);
    assert.equal(sockets.length, 0);
    assert.match(String(warn.mock.calls[0].arguments[0]), /1011, not a final close code/);

    mock.timers.tick(500);
    await settle();
    assert.equal(url.mock.callCount(), 2);
    assert.equal(last().url, 'ws://sockets.test/ws/');
  });

  it('stops for good on a close code the isFinal option makes final', async () => {
    const socket = connect({ url: async () => 4000, isFinal: (code) => code === 4000 });
    await settle();
    assert.equal(socket.state, 'closed');
    assert.equal(socket.closeCode, 4000);
  });

  it('drops an answer that comes after close() or reconnect()', async () => {
    const answers = [];
    const url = () => new Promise((resolve) => answers.push(resolve));
    const socket = connect({ url });
    await settle();
    socket.reconnect();
    await settle();
    answers[0]('ws://sockets.test/ws/?ticket=stale');
    answers[1]('ws://sockets.test/ws/?ticket=fresh');
    await settle();
    assert.deepEqual(sockets.map((ws) => ws.url), ['ws://sockets.test/ws/?ticket=fresh']);

    socket.reconnect();
    await settle();
    socket.close();
    answers[2]('ws://sockets.test/ws/?ticket=late');
    await settle();
    assert.equal(sockets.length, 1);
    assert.equal(socket.state, 'closed');
  });
});

describe('ticketUrlProvider', () => {
  function fakeFetch(status, body) {
    return mock.fn(async () => ({ status, ok: status >= 200 && status < 300, json: async () => body }));
  }

  it('POSTs with the CSRF token and the page\'s cookies and answers the ticket\'s URL', async () => {
    const fetch = fakeFetch(200, { ticket: 'x', url: 'ws://sockets.test/ws/chat/?ticket=x', expires_in: 30 });
    const url = await ticketUrlProvider('/ws-ticket/', { csrfToken: 'token', fetch })();
    assert.equal(url, 'ws://sockets.test/ws/chat/?ticket=x');
    const [ticketUrl, { signal, ...init }] = fetch.mock.calls[0].arguments;
    assert.equal(ticketUrl, '/ws-ticket/');
    assert.deepEqual(init, { method: 'POST', headers: { 'X-CSRFToken': 'token' }, credentials: 'same-origin' });
    assert.ok(signal instanceof AbortSignal);
  });

  // Like the browser's fetch on a server that never answers: it rejects only when aborted.
  function hangingFetch() {
    return mock.fn((url, { signal }) => new Promise((resolve, reject) => {
      signal?.addEventListener('abort', () => reject(signal.reason));
    }));
  }

  it('gives up on a request with no answer after 10 s', async () => {
    const fetch = hangingFetch();
    const asked = ticketUrlProvider('/ws-ticket/', { fetch })();
    mock.timers.tick(9999);
    assert.equal(fetch.mock.calls[0].arguments[1].signal.aborted, false);
    mock.timers.tick(1);
    await assert.rejects(asked, /no answer in 10000 ms/);
  });

  it('makes a socket try again with backoff when the request hangs', async (t) => {
    t.mock.method(console, 'warn', () => {});
    const fetch = hangingFetch();
    const socket = connect({ url: ticketUrlProvider('/ws-ticket/', { fetch }) });
    await settle();
    mock.timers.tick(10000);
    await settle();
    assert.equal(socket.state, 'reconnecting');
    mock.timers.tick(500);
    await settle();
    assert.equal(fetch.mock.callCount(), 2);
    assert.equal(sockets.length, 0);
  });

  it('answers 4401 when logged out, null when refused otherwise, and throws on other failures', async () => {
    assert.equal(await ticketUrlProvider('/ws-ticket/', { fetch: fakeFetch(401, {}) })(), CLOSE_LOGGED_OUT);
    assert.equal(CLOSE_LOGGED_OUT, 4401);
    assert.equal(await ticketUrlProvider('/ws-ticket/', { fetch: fakeFetch(403, {}) })(), null);
    await assert.rejects(ticketUrlProvider('/ws-ticket/', { fetch: fakeFetch(502, {}) })(), /HTTP 502/);
  });

  it('stops a socket whose user logged out with closeCode 4401, and a refused one with null', async () => {
    for (const [status, closeCode] of [[401, 4401], [403, null]]) {
      const socket = connect({ url: ticketUrlProvider('/ws-ticket/', { fetch: fakeFetch(status, {}) }) });
      await settle();
      assert.equal(socket.state, 'closed');
      assert.equal(socket.closeCode, closeCode, 'the page can tell a logout from a refusal');
      assert.equal(sockets.length, 0);
    }
  });
});

describe('JsonSocket state', () => {
  it('goes connecting → open → reconnecting → open and shows it on the status element', () => {
    const statusElement = { dataset: {}, textContent: '' };
    const socket = connect({ statusElement });
    const seen = [];
    socket.addEventListener('statechange', () => seen.push([socket.state, statusElement.textContent]));

    assert.equal(socket.state, 'connecting');
    assert.equal(statusElement.dataset.socketState, 'connecting');
    assert.equal(statusElement.textContent, 'Connecting…');

    last().open();
    assert.equal(statusElement.dataset.socketState, 'open');
    last().serverClose(1011);
    assert.equal(statusElement.dataset.socketState, 'reconnecting');
    mock.timers.tick(500);
    last().open();

    assert.deepEqual(seen, [['open', 'Live'], ['reconnecting', 'Reconnecting…'], ['open', 'Live']]);
    assert.ok(statusElement.title, 'explains the state in a tooltip');
  });

  it('grows the reconnect delay on each failure and resets it once a connection stayed open 30 s', () => {
    const socket = connect();
    const states = [];
    socket.addEventListener('statechange', () => states.push(socket.state));
    for (const delay of [500, 1000, 2000]) {
      last().fail();
      assertNextAttemptAt({ sockets, delay, tick: (ms) => mock.timers.tick(ms) });
    }

    last().open();
    mock.timers.tick(30000);
    last().serverClose();
    mock.timers.tick(500);
    assert.equal(sockets.length, 5, 'back to the first delay');
    assert.deepEqual(states, ['reconnecting', 'open', 'reconnecting'], 'repeated failures are one change');
  });

  it('keeps growing the delay over connections that close before 30 s', () => {
    connect();
    for (const delay of [500, 1000, 2000, 4000]) {
      last().open();
      mock.timers.tick(29999);
      last().serverClose(1011);
      assertNextAttemptAt({ sockets, delay, tick: (ms) => mock.timers.tick(ms) });
    }
  });

  for (const code of [1013, 1011, 1006, 1012]) {
    it(`gives a server that accepts then closes with ${code} ≤ 9 attempts in a minute, then ≤ 1 per 15 s`, () => {
      connect({ backoff: shortest });
      const attempts = acceptAndClose({ sockets, code, ms: 10 * 60 * 1000, tick: (ms) => mock.timers.tick(ms) });
      assertStormProof(attempts);
    });
  }

  it('comes back within a random 0.5–5 s after a deploy (1012), not after a long backoff', () => {
    const spreads = [3000];
    connect({ restart: () => spreads.shift() });
    for (let i = 0; i < 5; i++) {
      last().fail();
      mock.timers.tick(60000);
    }
    last().open();
    mock.timers.tick(30000);
    last().serverClose(1012);
    const count = sockets.length;
    mock.timers.tick(2999);
    assert.equal(sockets.length, count, 'spread out: not at once');
    mock.timers.tick(1);
    assert.equal(sockets.length, count + 1, 'soon: at the drawn spread, however long the backoff was before');
  });

  it('waits the backoff instead after a 1012 when it is longer: a restart loop backs off too', () => {
    connect({ restart: () => 500 });
    for (let i = 0; i < 4; i++) {
      last().fail();
      mock.timers.tick(60000);
    }
    last().open();
    last().serverClose(1012);
    const count = sockets.length;
    mock.timers.tick(7999); // backoff(4), the fifth delay
    assert.equal(sockets.length, count);
    mock.timers.tick(1);
    assert.equal(sockets.length, count + 1);
  });

  it('tries again with backoff when opening throws (a URL the browser refuses)', (t) => {
    t.mock.method(console, 'warn', () => {});
    let refuse = 2;
    class PickyWebSocket extends FakeWebSocket {
      constructor(url) {
        if (refuse-- > 0) throw new SyntaxError(`The URL '${url}' is invalid.`);
        super(url);
      }
    }
    const socket = connect({ WebSocket: PickyWebSocket });
    assert.equal(socket.state, 'reconnecting');
    mock.timers.tick(499);
    assert.equal(sockets.length, 0);
    mock.timers.tick(1);
    assert.equal(sockets.length, 0, 'the second attempt threw too');
    mock.timers.tick(999);
    assert.equal(sockets.length, 0);
    mock.timers.tick(1);
    assert.equal(sockets.length, 1, 'the third comes after a longer one');
  });

  it('tries again with backoff when a URL provider answers a URL that is no URL', async (t) => {
    t.mock.method(console, 'warn', () => {});
    const urls = ['ws://[bad', 'ws://sockets.test/ws/'];
    const socket = connect({ url: async () => urls.shift() });
    await settle();
    assert.equal(socket.state, 'reconnecting');
    assert.equal(sockets.length, 0);
    mock.timers.tick(500);
    await settle();
    assert.equal(last().url, 'ws://sockets.test/ws/');
  });

  it('stops for good on a final close code', () => {
    const statusElement = { dataset: {}, textContent: '' };
    const socket = connect({ statusElement });
    last().open();
    last().serverClose(4401);

    assert.equal(socket.state, 'closed');
    assert.equal(socket.closeCode, 4401, 'the page can say why');
    assert.equal(statusElement.textContent, 'Disconnected');
    mock.timers.tick(10 * 60 * 1000);
    assert.equal(sockets.length, 1);
  });

  it('lets the caller decide which close codes are final', () => {
    const socket = connect({ isFinal: (code) => code === 1008 });
    last().serverClose(4401);
    assert.equal(socket.state, 'reconnecting');
    mock.timers.tick(500);
    last().serverClose(1008);
    assert.equal(socket.state, 'closed');
  });

  it('close() cancels a pending reconnect', () => {
    const socket = connect();
    last().fail();
    socket.close();

    assert.equal(socket.state, 'closed');
    assert.equal(socket.closeCode, null, 'no close code stopped it');
    mock.timers.tick(10 * 60 * 1000);
    assert.equal(sockets.length, 1);
  });

  it('close() closes an open socket and ignores its late close event', () => {
    const socket = connect();
    const ws = last();
    ws.open();
    socket.close();

    assert.ok(ws.closedByClient);
    ws.serverClose(1000);
    mock.timers.tick(10 * 60 * 1000);
    assert.equal(socket.state, 'closed');
    assert.equal(sockets.length, 1);
  });

  it('reconnect() replaces the current socket right away', () => {
    let since = 1;
    const socket = connect({ resume: () => ({ since }) });
    const old = last();
    old.open();
    since = 9;
    socket.reconnect();

    assert.ok(old.closedByClient);
    assert.equal(sockets.length, 2);
    assert.equal(last().url, 'wss://example.test/ws/?since=9');
    assert.equal(socket.state, 'reconnecting');

    old.serverClose(1000);
    mock.timers.tick(10 * 60 * 1000);
    assert.equal(sockets.length, 2, 'the old socket schedules nothing');
  });
});

describe('JsonSocket messages', () => {
  it('passes parsed JSON to onMessage and as a message event', () => {
    const onMessage = mock.fn();
    const socket = connect({ onMessage });
    const events = [];
    socket.addEventListener('message', (event) => events.push(event.detail));
    last().open();
    last().receive('{"type":"post","id":3}');

    assert.deepEqual(onMessage.mock.calls[0].arguments, [{ type: 'post', id: 3 }]);
    assert.deepEqual(events, [{ type: 'post', id: 3 }]);
  });

  it('ignores non-JSON text with a warning', (t) => {
    const warn = t.mock.method(console, 'warn', () => {});
    const onMessage = mock.fn();
    connect({ onMessage });
    last().open();

    assert.doesNotThrow(() => last().receive('not json {'));
    assert.equal(onMessage.mock.callCount(), 0);
    assert.equal(warn.mock.callCount(), 1);

    last().receive('[1]');
    assert.equal(onMessage.mock.callCount(), 1, 'later messages still arrive');
  });

  it('send() returns false until open, then sends JSON', () => {
    const socket = connect();
    assert.equal(socket.send({ type: 'ping' }), false);

    last().open();
    assert.equal(socket.send({ type: 'ping', n: 1 }), true);
    assert.deepEqual(last().sent, ['{"type":"ping","n":1}']);

    last().serverClose();
    assert.equal(socket.send({ type: 'ping' }), false);
    assert.equal(last().sent.length, 1);
  });

  it('send() returns false while the connection is closing, before its close event', () => {
    const socket = connect();
    last().open();
    last().readyState = FakeWebSocket.CLOSING; // the server's close frame came in
    assert.equal(socket.state, 'open');
    assert.equal(socket.send({ command: 'send', text: 'hi' }), false);
    assert.deepEqual(last().sent, []);
  });
});

describe('JsonSocket online/offline', () => {
  it('drops the socket when offline and reconnects at once when online', () => {
    const window = fakeWindow();
    const socket = connect({ url: '/ws/', window });
    const ws = last();
    ws.open();

    window.dispatchEvent(new Event('offline'));
    assert.ok(ws.closedByClient);
    assert.equal(socket.state, 'reconnecting');

    // Fail a few times so the backoff is long, then come back online.
    mock.timers.tick(500);
    last().fail();
    mock.timers.tick(1000);
    last().fail();
    const count = sockets.length;
    window.dispatchEvent(new Event('online'));
    assert.equal(sockets.length, count + 1, 'no waiting for the backoff');

    last().fail();
    mock.timers.tick(500);
    assert.equal(sockets.length, count + 2, 'backoff starts over');
  });

  it('stops listening to the window and the document after close()', () => {
    const window = fakeWindow();
    const document = fakeDocument();
    const socket = connect({ url: '/ws/', window, document });
    const remove = mock.method(window, 'removeEventListener');
    const removeFromDocument = mock.method(document, 'removeEventListener');
    socket.close();

    assert.deepEqual(remove.mock.calls.map((call) => call.arguments[0]).sort(), ['offline', 'online']);
    assert.deepEqual(removeFromDocument.mock.calls.map((call) => call.arguments[0]), ['visibilitychange']);
    window.dispatchEvent(new Event('online'));
    window.dispatchEvent(new Event('offline'));
    document.dispatchEvent(new Event('visibilitychange'));
    mock.timers.tick(10 * 60 * 1000);
    assert.equal(sockets.length, 1);
    assert.equal(socket.state, 'closed');
  });
});

describe('JsonSocket visibility', () => {
  function show(document, visibilityState) {
    document.visibilityState = visibilityState;
    document.dispatchEvent(new Event('visibilitychange'));
  }

  it('reconnects at once, backoff reset, when the page becomes visible while waiting to reconnect', () => {
    const document = fakeDocument();
    connect({ document });
    for (const delay of [500, 1000, 2000, 4000]) {
      last().fail();
      mock.timers.tick(delay);
    }
    last().fail(); // the next attempt is 8 s away
    show(document, 'hidden');
    assert.equal(sockets.length, 5, 'nothing while hidden');
    show(document, 'visible');
    assert.equal(sockets.length, 6, 'no waiting for the backoff');
    show(document, 'visible');
    assert.equal(sockets.length, 6, 'an attempt under way is left to finish');

    last().fail();
    mock.timers.tick(500);
    assert.equal(sockets.length, 7, 'backoff starts over');

    last().open();
    show(document, 'hidden');
    show(document, 'visible');
    assert.equal(sockets.length, 7, 'an open connection is left alone');
  });
});

describe('JsonSocket heartbeat', () => {
  it('pings after 15 s without a frame, and drops and reconnects 20 s after an unanswered ping', (t) => {
    t.mock.method(console, 'warn', () => {});
    const socket = connect();
    const ws = last();
    ws.open();
    mock.timers.tick(14999);
    assert.deepEqual(ws.sent, []);
    mock.timers.tick(1);
    assert.deepEqual(ws.sent, ['{"type":"ping"}']);

    mock.timers.tick(19999);
    assert.equal(socket.state, 'open');
    mock.timers.tick(1);
    assert.ok(ws.closedByClient, 'a dead connection is noticed within 35 s (≤ 45 s)');
    assert.equal(socket.state, 'reconnecting');
    mock.timers.tick(500);
    assert.equal(sockets.length, 2);
  });

  it('counts any frame as a sign of life, and keeps the pong from onMessage', () => {
    const onMessage = mock.fn();
    const socket = connect({ onMessage });
    const ws = last();
    ws.open();
    mock.timers.tick(10000);
    ws.receive('{"type":"post"}');
    mock.timers.tick(14999);
    assert.deepEqual(ws.sent, [], 'the frame postponed the ping');
    mock.timers.tick(1);
    assert.equal(ws.sent.length, 1);
    mock.timers.tick(19000);
    ws.receive('{"type":"pong"}');
    mock.timers.tick(14999);
    assert.equal(ws.sent.length, 1);
    mock.timers.tick(1);
    assert.equal(ws.sent.length, 2, 'the next ping, 15 s after the pong');
    assert.equal(socket.state, 'open');
    assert.ok(!ws.closedByClient);
    assert.deepEqual(onMessage.mock.calls.map((call) => call.arguments[0]), [{ type: 'post' }]);
  });

  it('takes its frame and timings as options, and ping: null turns it off', (t) => {
    t.mock.method(console, 'warn', () => {});
    const socket = connect({ ping: { command: 'ping' }, pingAfterMs: 1000, pongTimeoutMs: 500 });
    last().open();
    mock.timers.tick(1000);
    assert.deepEqual(last().sent, ['{"command":"ping"}']);
    mock.timers.tick(500);
    assert.equal(socket.state, 'reconnecting');

    const quiet = connect({ ping: null });
    last().open();
    mock.timers.tick(10 * 60 * 1000);
    assert.deepEqual(last().sent, []);
    assert.equal(quiet.state, 'open');
  });

  it('keeps one heartbeat, for the current connection, and none after close()', () => {
    const socket = connect();
    const first = last();
    first.open();
    mock.timers.tick(10000);
    first.serverClose(1006);
    mock.timers.tick(500);
    const second = last();
    second.open();
    mock.timers.tick(15000);
    assert.deepEqual(first.sent, []);
    assert.deepEqual(second.sent, ['{"type":"ping"}']);
    socket.close();
    mock.timers.tick(10 * 60 * 1000);
    assert.equal(second.sent.length, 1);
    assert.equal(sockets.length, 2);
  });
});
