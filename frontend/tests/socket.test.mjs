import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';

import { JsonSocket, backoffDelay, isFinalCloseCode, ticketUrlProvider } from '../js/socket.js';

// Stands in for the browser WebSocket: records what the client does and lets
// a test play the server's part. Like browsers, a failed attempt fires
// "error" and then "close" with 1006.
let sockets = [];

class FakeWebSocket {
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closedByClient = false;
    sockets.push(this);
  }

  send(frame) {
    this.sent.push(frame);
  }

  close() {
    this.closedByClient = true;
  }

  open() {
    this.onopen?.({ type: 'open' });
  }

  receive(data) {
    this.onmessage?.({ type: 'message', data });
  }

  serverClose(code = 1006) {
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

function fakeWindow(href = 'https://example.test/liveblog/') {
  const window = new EventTarget();
  window.location = new URL(href);
  return window;
}

function connect({ url = 'wss://example.test/ws/', ...options } = {}) {
  return new JsonSocket(url, { WebSocket: FakeWebSocket, backoff: noJitter, ...options });
}

beforeEach(() => {
  sockets = [];
  mock.timers.enable({ apis: ['setTimeout'] });
});

afterEach(() => {
  mock.timers.reset();
});

describe('backoffDelay', () => {
  it('scales the jitter window by random()', () => {
    assert.equal(backoffDelay(2, { random: () => 0.5 }), 1000);
    assert.equal(backoffDelay(3, { random: () => 0.25 }), 1000);
  });

  it('doubles the ceiling with each attempt', () => {
    const delays = [0, 1, 2, 3, 4].map((attempt) => backoffDelay(attempt, { random: () => 1 }));
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000]);
  });

  it('never goes above maxMs, even for huge attempt counts', () => {
    assert.equal(backoffDelay(5, { random: () => 1 }), 15000);
    assert.equal(backoffDelay(5000, { random: () => 1 }), 15000);
    assert.equal(backoffDelay(3, { maxMs: 3000, random: () => 1 }), 3000);
  });

  it('never goes below half of baseMs', () => {
    assert.equal(backoffDelay(0, { random: () => 0 }), 250);
    assert.equal(backoffDelay(10, { random: () => 0 }), 250);
    assert.equal(backoffDelay(4, { baseMs: 100, random: () => 0 }), 50);
  });

  it('stays within [floor, ceiling] with the real Math.random', () => {
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(2);
      assert.ok(delay >= 250 && delay <= 2000, `delay ${delay} out of range`);
    }
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
    assert.deepEqual(fetch.mock.calls[0].arguments, [
      '/ws-ticket/',
      { method: 'POST', headers: { 'X-CSRFToken': 'token' }, credentials: 'same-origin' },
    ]);
  });

  it('answers null when logged out and throws on other failures', async () => {
    for (const status of [401, 403]) {
      assert.equal(await ticketUrlProvider('/ws-ticket/', { fetch: fakeFetch(status, {}) })(), null);
    }
    await assert.rejects(ticketUrlProvider('/ws-ticket/', { fetch: fakeFetch(502, {}) })(), /HTTP 502/);
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

  it('grows the reconnect delay on each failure and resets it after opening', () => {
    const socket = connect();
    const states = [];
    socket.addEventListener('statechange', () => states.push(socket.state));
    for (const delay of [500, 1000, 2000]) {
      last().fail();
      const count = sockets.length;
      mock.timers.tick(delay - 1);
      assert.equal(sockets.length, count, `no attempt before ${delay}ms`);
      mock.timers.tick(1);
      assert.equal(sockets.length, count + 1, `an attempt at ${delay}ms`);
    }

    last().open();
    last().serverClose();
    mock.timers.tick(500);
    assert.equal(sockets.length, 5, 'back to the first delay');
    assert.deepEqual(states, ['reconnecting', 'open', 'reconnecting'], 'repeated failures are one change');
  });

  it('stops for good on a final close code', () => {
    const statusElement = { dataset: {}, textContent: '' };
    const socket = connect({ statusElement });
    last().open();
    last().serverClose(4401);

    assert.equal(socket.state, 'closed');
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

  it('stops listening to the window after close()', () => {
    const window = fakeWindow();
    const socket = connect({ url: '/ws/', window });
    const remove = mock.method(window, 'removeEventListener');
    socket.close();

    assert.deepEqual(remove.mock.calls.map((call) => call.arguments[0]).sort(), ['offline', 'online']);
    window.dispatchEvent(new Event('online'));
    window.dispatchEvent(new Event('offline'));
    mock.timers.tick(10 * 60 * 1000);
    assert.equal(sockets.length, 1);
    assert.equal(socket.state, 'closed');
  });
});
