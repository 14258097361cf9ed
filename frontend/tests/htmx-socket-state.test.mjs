import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { acceptAndClose, assertNextAttemptAt, assertStormProof } from './storm.mjs';

// The page the extension runs on, for Node: the badge, and htmx with its WebSocket extension
// played by `connect` below. Each test loads the extension afresh (its own badge, policy and count).
let sockets;
let badge;
let extension;
let socketStateAfter;
// The close codes htmx-ext-ws 2.0.4 reconnects after (its onclose).
const RETRIED = [1006, 1011, 1012, 1013];

class FakeWebSocket extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    sockets.push(this);
  }

  open() {
    this.dispatchEvent(new Event('open'));
  }

  serverClose(code) {
    this.dispatchEvent(Object.assign(new Event('close'), { code }));
  }
}

const last = () => sockets.at(-1);

// The ws-connect element htmx triggers its events on (htmx adds it to each event's detail as elt):
// in the page, unless a test takes it out.
let element;

function trigger(name, detail) {
  extension.onEvent(name, { detail: { ...detail, elt: element } });
}

// What htmx-ext-ws 2.0.4 does for a ws-connect element, in its order (its wrapper's init): it creates
// the socket with htmx.createWebSocket, triggers htmx:wsConnecting, then listens (it sets onopen and
// onclose). On a close it asks htmx.config.wsReconnectDelay for the delay first, with its count (0
// after any open), and only then triggers htmx:wsClose, with the wrapper, whose reconnect() is init.
const socketWrapper = { reconnect: connect };
function connect() {
  const socket = globalThis.htmx.createWebSocket('wss://example.test/ws/liveblog/x/fragments/');
  trigger('htmx:wsConnecting', { event: { type: 'connecting' } });
  socket.addEventListener('open', (event) => trigger('htmx:wsOpen', { event, socketWrapper }));
  socket.addEventListener('close', (event) => {
    if (RETRIED.includes(event.code)) setTimeout(connect, globalThis.htmx.config.wsReconnectDelay(0));
    trigger('htmx:wsClose', { event, socketWrapper });
  });
}

let loads = 0;
async function load() {
  badge = { dataset: { socketState: 'connecting' }, textContent: 'Connecting…' };
  globalThis.document = { getElementById: (id) => (id === 'connection-state' ? badge : null) };
  globalThis.htmx = {
    config: { wsReconnectDelay: 'full-jitter' },
    createWebSocket: (url) => new FakeWebSocket(url),
    defineExtension(name, definition) {
      assert.equal(name, 'socket-state');
      definition.init();
      extension = definition;
    },
  };
  ({ socketStateAfter } = await import(`../js/htmx-socket-state.js?${++loads}`));
  connect();
}

beforeEach(async () => {
  sockets = [];
  element = { isConnected: true };
  mock.timers.enable({ apis: ['setTimeout'] });
  await load();
});

afterEach(() => {
  mock.timers.reset();
  delete globalThis.document;
  delete globalThis.htmx;
});

describe('socketStateAfter', () => {
  it('says reconnecting, not connecting, for any attempt but the first', () => {
    assert.equal(socketStateAfter('htmx:wsConnecting', { state: 'connecting' }), 'connecting');
    assert.equal(socketStateAfter('htmx:wsConnecting', { state: 'reconnecting' }), 'reconnecting');
    assert.equal(socketStateAfter('htmx:wsConnecting', { state: 'open' }), 'reconnecting');
  });

  it('leaves the state to the close that follows an error, and to messages', () => {
    assert.equal(socketStateAfter('htmx:wsError', { state: 'open' }), 'open');
    assert.equal(socketStateAfter('htmx:wsAfterMessage', { state: 'open' }), 'open');
  });
});

describe('the socket-state extension', () => {
  it('shows connecting → open → reconnecting → open on the badge, in the JSON page\'s words', () => {
    const seen = [];
    const watch = () => seen.push([badge.dataset.socketState, badge.textContent]);
    last().open();
    watch();
    last().serverClose(1006);
    watch();
    mock.timers.tick(500);
    watch();
    last().open();
    watch();
    assert.deepEqual(seen, [
      ['open', 'Live'],
      ['reconnecting', 'Reconnecting…'],
      ['reconnecting', 'Reconnecting…'], // the new attempt, not yet open
      ['open', 'Live'],
    ]);
    assert.ok(badge.title, 'explains the state in a tooltip');
  });

  it('shows the final state after a close with 4404 (the liveblog deleted), and tries no more', () => {
    last().open();
    last().serverClose(4404);
    assert.equal(badge.dataset.socketState, 'closed');
    assert.equal(badge.textContent, 'Disconnected');
    mock.timers.tick(10 * 60 * 1000);
    assert.equal(sockets.length, 1);
  });

  // daphne's 1000 at --websocket_timeout, a proxy's 1001, a close with no code (1005): htmx-ext-ws gives up.
  for (const code of [1000, 1001, 1005]) {
    it(`reconnects after a close with ${code}, which htmx-ext-ws does not retry, after the policy's delay`, (t) => {
      t.mock.method(Math, 'random', () => 1); // the longest first delay: 500 ms
      last().open();
      last().serverClose(code);
      assert.equal(badge.dataset.socketState, 'reconnecting');
      assert.equal(badge.textContent, 'Reconnecting…');
      mock.timers.tick(499);
      assert.equal(sockets.length, 1, 'not before the delay');
      mock.timers.tick(1);
      assert.equal(sockets.length, 2, 'one attempt at 500 ms');
      last().open();
      assert.equal(badge.dataset.socketState, 'open');
    });
  }

  it('leaves closed the socket of an element a swap took out of the page', () => {
    last().open();
    element.isConnected = false;
    last().serverClose(1005); // htmx-ext-ws closing it, with no code
    mock.timers.tick(10 * 60 * 1000);
    assert.equal(sockets.length, 1);
  });

  it('throws a clear error when ws.min.js was not loaded first', async () => {
    delete globalThis.htmx.createWebSocket;
    await assert.rejects(import(`../js/htmx-socket-state.js?${++loads}`), /load ws\.min\.js/);
  });

  for (const code of [...RETRIED, 1000, 1001, 1005]) {
    it(`gives a server that accepts then closes with ${code} ≤ 9 attempts in a minute, then ≤ 1 per 15 s`, (t) => {
      t.mock.method(Math, 'random', () => 0); // every delay the shortest it can draw: the server's worst case
      const attempts = acceptAndClose({ sockets, code, ms: 10 * 60 * 1000, tick: (ms) => mock.timers.tick(ms) });
      assertStormProof(attempts);
    });
  }

  it('starts the backoff over once a connection stayed open 30 s, and not before', (t) => {
    t.mock.method(Math, 'random', () => 1); // every delay the longest: 500, 1000, 2000...
    for (const delay of [500, 1000, 2000]) {
      last().open();
      mock.timers.tick(29999);
      last().serverClose(1011);
      assertNextAttemptAt({ sockets, delay, tick: (ms) => mock.timers.tick(ms) });
    }
    last().open();
    mock.timers.tick(30000);
    last().serverClose(1011);
    mock.timers.tick(500);
    assert.equal(sockets.length, 5, 'back to the first delay');
  });

  it('comes back within a random 0.5–5 s after a deploy (1012)', (t) => {
    t.mock.method(Math, 'random', () => 0.5); // the restart's spread: 500 + 0.5 × 4500 ms
    last().open();
    mock.timers.tick(30000);
    last().serverClose(1012);
    mock.timers.tick(2749);
    assert.equal(sockets.length, 1, 'spread out: not at once');
    mock.timers.tick(1);
    assert.equal(sockets.length, 2);
  });
});
