// The chat page: one socket for every room this tab is in. The protocol is in the
// chat's README (chat/README.md). Everything people wrote is set as text, never as HTML.
// The shared client, from its (hashed) URL in base.html: the CSP refuses an inline import map.
const { CLOSE_LOGGED_OUT, JsonSocket, ticketUrlProvider } = await import(document.getElementById('frontend-socket').href);
const { TypingThrottle, typingText } = await import(document.getElementById('frontend-typing').href);
const { elementsById } = await import(document.getElementById('frontend-elements').href);

const { chat, joined, noRooms, errorBox, roomTemplate, messageTemplate } = elementsById({
  chat: 'chat', joined: 'joined-rooms', noRooms: 'no-rooms', errorBox: 'chat-error',
  roomTemplate: 'room-template', messageTemplate: 'message-template',
});
const timeFormat = new Intl.DateTimeFormat([], { timeStyle: 'short' });
// The page kept sending past its frame rate (realtime_common/consumers.py).
const CLOSE_FLOODING = 4429;

// The seq of the last event applied per room: a reconnect asks only for what came after.
const lastSeqs = new Map();
// This page's messages the server has not answered yet, by the client_id the page gave
// each (chat/README.md: send): shown greyed as "sending…", and sent again after every reconnect
// until their own message frame, or a refusal naming them, comes. The server stores a
// client_id once, so a resend of one that did get there is no second message.
const pending = new Map(); // client_id → { room, text, item }
// Pending messages waiting for their turn to go (again), oldest first: after a reconnect, all of
// them. They go one at a time, RESEND_INTERVAL_MS apart: a little slower than the server takes a
// user's messages (CHAT_RATE_LIMIT_MESSAGES per CHAT_RATE_LIMIT_SECONDS: 10 per 10 s), and far
// within a socket's frame rate (20 a second, bursts of 40). So a long queue (written offline) is
// neither given back as too many nor refused as a flood. A new message waits behind them.
const sendQueue = new Set(); // client_ids
const RESEND_INTERVAL_MS = 1200;
let sendTimer = null; // the wait for the next turn
// Who is in each joined room, as this page lists them: a long room comes a page of names at a time
// (chat/README.md: CHAT_MEMBERS_LISTED, 100), the count of everyone with each. The page lists every
// member up to `through`, the last name of the last page the server sent, or everyone (null) once a
// page said none come after it.
const memberLists = new Map(); // slug → { names: Set, through, count }
// When this page last told the server its user is typing, per room.
const typingThrottle = new TypingThrottle();
// ?join=<slug>, from the room list. Sent once, then taken out of the URL: the
// session remembers the room, and a reload after leaving it must not join again.
let joinFromUrl = new URLSearchParams(window.location.search).get('join');

function roomSection(slug) {
  return [...joined.querySelectorAll('section.room')].find((section) => section.dataset.room === slug);
}

// 128 random bits, in [0-9a-f] (the protocol allows [A-Za-z0-9_-]). Not crypto.randomUUID():
// that needs a secure context, and a copy of this page may be served over plain http.
function newClientId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function renderMessage(message) {
  const item = messageTemplate.content.firstElementChild.cloneNode(true);
  item.dataset.messageId = message.id;
  item.querySelector('.message-user').textContent = message.user;
  item.querySelector('.message-text').textContent = message.text;
  const time = item.querySelector('time');
  time.dateTime = message.created;
  time.textContent = timeFormat.format(new Date(message.created));
  return item;
}

// A room's events in seq order, each once: around a join, history and live
// events may overlap, and the seq tells which this page has applied already.
function applyEvents(slug, events) {
  const list = roomSection(slug)?.querySelector('.messages');
  if (!list) return;
  for (const event of events) {
    // Stored: no longer pending, whatever its seq (a resend is answered with a frame this page may have).
    if (event.type === 'message' && event.user === chat.dataset.username) settle(event.client_id);
    if (event.seq <= (lastSeqs.get(slug) ?? 0)) continue;
    lastSeqs.set(slug, event.seq);
    const shown = [...list.children].find((item) => item.dataset.messageId === String(event.id));
    if (event.type === 'message.deleted') shown?.remove();
    else if (shown) shown.replaceWith(renderMessage(event));
    else list.insertBefore(renderMessage(event), list.querySelector('.message-pending')); // pending ones stay last
  }
  list.scrollTop = list.scrollHeight;
}

// A message of this page's user, greyed as "sending…" until the server answers; its text as text.
function renderPending(text) {
  const item = messageTemplate.content.firstElementChild.cloneNode(true);
  item.classList.add('message-pending');
  item.querySelector('.message-user').textContent = chat.dataset.username;
  item.querySelector('.message-text').textContent = text;
  item.querySelector('time').replaceWith(Object.assign(document.createElement('span'), {
    className: 'message-state', textContent: 'sending…',
  }));
  return item;
}

function settle(clientId) {
  pending.get(clientId)?.item.remove();
  pending.delete(clientId);
  sendQueue.delete(clientId);
}

// True when it went out; false (not connected) leaves it pending, for the next 'open'.
function sendPending(clientId) {
  const { room, text } = pending.get(clientId);
  return socket.send({ command: 'send', room, text, client_id: clientId });
}

// The first queued message now, the next one a turn later. Not connected: it stays first, and
// the next 'open' starts the queue again.
function sendNext() {
  sendTimer = null;
  const [clientId] = sendQueue;
  if (clientId === undefined || !sendPending(clientId)) return;
  sendQueue.delete(clientId);
  sendTimer = setTimeout(sendNext, RESEND_INTERVAL_MS);
}

// Every pending message into the queue (those in it keep their place), sent from the next turn
// on: now, or `later` (the server just said to slow down) a whole turn from now.
function sendAllPending({ later = false } = {}) {
  pending.forEach((_, clientId) => sendQueue.add(clientId));
  if (sendTimer === null) sendTimer = setTimeout(sendNext, later ? RESEND_INTERVAL_MS : 0);
}

// Text the server can store, which the page's user cannot see the difference of: a lone surrogate
// (half an emoji, from a bad paste) becomes U+FFFD, and NUL goes. A frame holding either is refused
// (bad_json) before the server reads which message it is, so the message would stay pending.
// A browser without toWellFormed() (before 2023) sends the text as it is.
function storableText(text) {
  return (text.toWellFormed?.() ?? text).replaceAll('\0', '');
}

// Names in the server's order, by code point (Python's sorted, and Redis's UTF-8 bytes), which pages
// of names follow. Not JS's < or sort(), which compare UTF-16 units: a name from U+10000 up (a
// surrogate pair, from 0xD800) would go before one of U+E000-U+FFFF (e.g. "𠮷" before "﨑"), where the
// server puts it after. Up to the first code point that differs, one index walks both names.
function compareNames(a, b) {
  for (let i = 0; i < a.length && i < b.length; ) {
    const x = a.codePointAt(i);
    const y = b.codePointAt(i);
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

function showMembers(slug) {
  const section = roomSection(slug);
  const list = memberLists.get(slug);
  if (!section || !list) return;
  const items = [...list.names].sort(compareNames).map((name) => Object.assign(document.createElement('li'), { textContent: name }));
  section.querySelector('.members').replaceChildren(...items);
  section.querySelector('.members-count').textContent = `(${list.count.toLocaleString()})`;
  const unlisted = list.count - list.names.size;
  const more = section.querySelector('[data-members-more]');
  more.hidden = unlisted <= 0;
  more.textContent = `${unlisted.toLocaleString()} more`;
}

// The first page of a room's members (in joined, or after a change this page may have missed): it replaces the list.
function listMembers(slug, members, count) {
  memberLists.set(slug, { names: new Set(members), through: members.length < count ? members.at(-1) : null, count });
  showMembers(slug);
}

// A presence frame holds either who joined and who left since the last one, or the first page of
// members, which the server sends instead when this page may have missed a change.
function onPresence(frame) {
  const list = memberLists.get(frame.room);
  if (!list) return;
  if (frame.members) {
    listMembers(frame.room, frame.members, frame.count);
    return;
  }
  frame.left.forEach((name) => list.names.delete(name));
  // A name past the last one listed is counted, not listed: it comes with the page of names that reaches it.
  frame.joined.filter((name) => list.through === null || compareNames(name, list.through) <= 0).forEach((name) => list.names.add(name));
  list.count = frame.count;
  showMembers(frame.room);
}

// The next page of names, asked for with "N more". One answering another list (a whole list came
// since, or the same page was asked for twice) is dropped: the list goes on from its own `through`.
function onMembersPage(frame) {
  const list = memberLists.get(frame.room);
  if (!list || frame.after !== list.through) return;
  frame.members.forEach((name) => list.names.add(name));
  list.through = frame.more ? frame.members.at(-1) : null;
  list.count = frame.count;
  showMembers(frame.room);
}

// Who is typing in the room, but this page's user: the server sends the whole list whenever it changes.
function showTyping(slug, users) {
  const line = roomSection(slug)?.querySelector('.typing');
  if (!line) return;
  line.textContent = typingText(users);
  line.hidden = users.length === 0;
}

function markJoined(slug, isJoined) {
  const button = [...chat.querySelectorAll('[data-join]')].find((candidate) => candidate.dataset.join === slug);
  if (button) {
    button.disabled = isJoined;
    button.textContent = isJoined ? 'Joined' : 'Join';
  }
  // A room shown but not joined (the server could not take a new socket back into it) keeps its
  // messages, says so and offers to join it again; a leave would only be refused as not_joined.
  const section = roomSection(slug);
  if (section) {
    section.querySelector('.room-away').hidden = isJoined;
    section.querySelector('[data-leave]').hidden = !isJoined;
  }
  noRooms.hidden = joined.querySelector('section.room') !== null;
}

function onJoined(frame) {
  let section = roomSection(frame.room);
  if (!section) {
    section = roomTemplate.content.firstElementChild.cloneNode(true);
    section.dataset.room = frame.room;
    joined.append(section);
  }
  section.querySelector('.room-title').textContent = frame.title;
  section.setAttribute('aria-label', frame.title);
  listMembers(frame.room, frame.members, frame.count);
  showTyping(frame.room, []); // the server sends the list after joined when anyone is typing
  if (frame.more) {
    // Not everything since this page's last event: start again from the newest, still pending ones last.
    const list = section.querySelector('.messages');
    list.replaceChildren(...list.querySelectorAll('.message-pending'));
    lastSeqs.delete(frame.room);
  }
  applyEvents(frame.room, frame.history);
  markJoined(frame.room, true);
}

function onLeft(frame) {
  roomSection(frame.room)?.remove();
  lastSeqs.delete(frame.room);
  memberLists.delete(frame.room);
  markJoined(frame.room, false);
}

function showError({ code, detail }) {
  errorBox.textContent = detail;
  errorBox.dataset.code = code;
  errorBox.hidden = false;
}

// The server refused one of this page's messages (too many, bad text, a room not joined,
// a fault): it goes back into its room's input, before anything typed since, with the reason.
function giveBack({ code, detail, client_id: clientId }) {
  const { room, text } = pending.get(clientId);
  settle(clientId);
  const input = roomSection(room)?.querySelector('input[name="text"]');
  if (input) input.value = [text, input.value].filter(Boolean).join(' ');
  // No input (the room was left meanwhile): the text is in the error, not lost.
  showError({ code, detail: input ? detail : `${detail} Not sent: ${text}` });
}

function onError(frame) {
  if (pending.has(frame.client_id)) {
    giveBack(frame);
    return;
  }
  // A room named, and no message: on connect, the server could not put this socket back into
  // the room (chat/README.md: the handshake). The session keeps it, but this socket is not in it.
  if (frame.room && frame.client_id == null) markJoined(frame.room, false);
  // No message named: a frame refused before the server read it (the socket's frame rate), which
  // may have been one of the pending messages. They all go again, from the next turn: a resend
  // of one stored already stores nothing, and is answered with its message frame.
  if (frame.code === 'rate_limited' && frame.client_id == null) sendAllPending({ later: true });
  showError(frame);
}

const apply = {
  joined: onJoined,
  left: onLeft,
  message: (frame) => applyEvents(frame.room, [frame]),
  'message.deleted': (frame) => applyEvents(frame.room, [frame]),
  presence: onPresence,
  members: onMembersPage,
  typing: (frame) => showTyping(frame.room, frame.users),
  error: onError,
};

// With the sockets on an origin of their own (data-ticket-url), where this page's cookie does
// not go, each connect first gets a single-use ticket from the page's own site (chat/README.md).
const { ticketUrl, csrfToken } = chat.dataset;
const socket = new JsonSocket(ticketUrl ? ticketUrlProvider(ticketUrl, { csrfToken }) : chat.dataset.socketUrl, {
  // The server puts a new socket back into the session's rooms by itself;
  // since=<room>:<seq>,... tells it which events this page has applied already.
  resume: () => ({ since: [...lastSeqs].map(([slug, seq]) => `${slug}:${seq}`).join(',') || null }),
  statusElement: document.getElementById('connection-state'),
  onMessage: (frame) => apply[frame.type]?.(frame),
});

function command(data) {
  errorBox.hidden = true;
  const sent = socket.send(data);
  if (!sent) showError({ code: 'not_connected', detail: 'Not connected right now; try again in a moment.' });
  return sent;
}

// Why the socket stopped for good, in words: the server's final close code (4400-4499, chat/README.md),
// or none when the site refused this page a socket ticket (403: e.g. the page's CSRF token is
// stale). A ticket refused for want of a login (401) stops the socket with 4401, as a logout does.
function endedText(code) {
  if (code === null) return 'The site refused this page a connection. Reload the page.';
  if (code === CLOSE_FLOODING) {
    return 'This page sent too much too fast, so the server closed its connection. Reload the page to carry on.';
  }
  return `The server closed this page's connection for good (code ${code}). Reload the page.`;
}

function showEnded(code) {
  if (code === CLOSE_LOGGED_OUT) {
    document.getElementById('logged-out').hidden = false;
    return;
  }
  const ended = document.getElementById('chat-ended');
  ended.textContent = endedText(code);
  ended.hidden = false;
}

socket.addEventListener('statechange', () => {
  if (socket.state === 'open') {
    // The server handles these after it put the new socket back into the session's rooms:
    // each is stored now, or (it got there before the connection dropped) answered with its frame.
    sendAllPending();
  }
  if (socket.state === 'open' && joinFromUrl) {
    command({ command: 'join', room: joinFromUrl });
    joinFromUrl = null;
    window.history.replaceState(null, '', window.location.pathname);
  } else if (socket.state === 'closed') {
    showEnded(socket.closeCode);
    chat.querySelectorAll('button, input').forEach((control) => { control.disabled = true; });
  }
});

chat.querySelector('.room-picker').addEventListener('click', (event) => {
  const button = event.target.closest('[data-join]');
  if (button) command({ command: 'join', room: button.dataset.join });
});

joined.addEventListener('click', (event) => {
  const room = event.target.closest('section.room')?.dataset.room;
  if (event.target.closest('[data-leave]')) command({ command: 'leave', room });
  // With the seq of its last event shown: the server sends only what this page lacks.
  else if (event.target.closest('[data-join-again]')) command({ command: 'join', room, since: lastSeqs.get(room) });
  else if (event.target.closest('[data-members-more]')) command({ command: 'members', room, after: memberLists.get(room).through });
});

// While the user types, "typing" at most every 2 s per room; a lost one only shows them a little late.
joined.addEventListener('input', (event) => {
  const input = event.target.closest('input[name="text"]');
  const room = input?.closest('section.room').dataset.room;
  if (room && input.value.trim() && typingThrottle.due(room)) socket.send({ command: 'typing', room });
});

// Shown as pending at once, and the input cleared: from here the message is kept until the
// server answers it, across reconnects (never lost, never sent twice).
joined.addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.target;
  const room = form.closest('section.room').dataset.room;
  const text = storableText(form.elements.text.value);
  const clientId = newClientId();
  const item = renderPending(text);
  pending.set(clientId, { room, text, item });
  const list = form.closest('section.room').querySelector('.messages');
  list.append(item);
  list.scrollTop = list.scrollHeight;
  form.reset();
  errorBox.hidden = true;
  // At once, unless older messages wait for their turn: then after them, in the order written.
  if (sendQueue.size === 0) sendPending(clientId);
  else sendQueue.add(clientId);
});

// "Never lost" holds across a reload or a closed tab too: while a message is pending, the browser
// asks first. returnValue is for browsers from before preventDefault() was enough (Chrome 119).
window.addEventListener('beforeunload', (event) => {
  if (pending.size === 0) return;
  event.preventDefault();
  event.returnValue = true;
});
