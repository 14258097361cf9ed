// The chat page: one socket for every room this tab is in. The protocol is in the
// repository README. Everything people wrote is set as text, never as HTML.
// The shared client, from its (hashed) URL in base.html: the CSP refuses an inline import map.
const { JsonSocket, ticketUrlProvider } = await import(document.getElementById('frontend-socket').href);
const { TypingThrottle, typingText } = await import(document.getElementById('frontend-typing').href);
const { elementsById } = await import(document.getElementById('frontend-elements').href);

const { chat, joined, noRooms, errorBox, roomTemplate, messageTemplate } = elementsById({
  chat: 'chat', joined: 'joined-rooms', noRooms: 'no-rooms', errorBox: 'chat-error',
  roomTemplate: 'room-template', messageTemplate: 'message-template',
});
const timeFormat = new Intl.DateTimeFormat([], { timeStyle: 'short' });

// The seq of the last event applied per room: a reconnect asks only for what came after.
const lastSeqs = new Map();
// When this page last told the server its user is typing, per room.
const typingThrottle = new TypingThrottle();
// ?join=<slug>, from the room list. Sent once, then taken out of the URL: the
// session remembers the room, and a reload after leaving it must not join again.
let joinFromUrl = new URLSearchParams(window.location.search).get('join');

function roomSection(slug) {
  return [...joined.querySelectorAll('section.room')].find((section) => section.dataset.room === slug);
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
    if (event.seq <= (lastSeqs.get(slug) ?? 0)) continue;
    lastSeqs.set(slug, event.seq);
    const shown = [...list.children].find((item) => item.dataset.messageId === String(event.id));
    if (event.type === 'message.deleted') shown?.remove();
    else if (shown) shown.replaceWith(renderMessage(event));
    else list.append(renderMessage(event));
  }
  list.scrollTop = list.scrollHeight;
}

function showMembers(slug, members) {
  const items = members.map((name) => Object.assign(document.createElement('li'), { textContent: name }));
  roomSection(slug)?.querySelector('.members').replaceChildren(...items);
}

// A presence frame holds either who joined and who left since the last one, or the
// whole list, which the server sends instead when this page may have missed a change.
function onPresence(frame) {
  const list = roomSection(frame.room)?.querySelector('.members');
  if (!list) return;
  if (frame.members) {
    showMembers(frame.room, frame.members);
    return;
  }
  const names = new Set([...list.children].map((item) => item.textContent));
  frame.left.forEach((name) => names.delete(name));
  frame.joined.forEach((name) => names.add(name));
  showMembers(frame.room, [...names].sort());
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
  showMembers(frame.room, frame.members);
  showTyping(frame.room, []); // the server sends the list after joined when anyone is typing
  if (frame.more) {
    // Not everything since this page's last event: start again from the newest.
    section.querySelector('.messages').replaceChildren();
    lastSeqs.delete(frame.room);
  }
  applyEvents(frame.room, frame.history);
  markJoined(frame.room, true);
}

function onLeft(frame) {
  roomSection(frame.room)?.remove();
  lastSeqs.delete(frame.room);
  markJoined(frame.room, false);
}

function showError({ code, detail }) {
  errorBox.textContent = detail;
  errorBox.dataset.code = code;
  errorBox.hidden = false;
}

const apply = {
  joined: onJoined,
  left: onLeft,
  message: (frame) => applyEvents(frame.room, [frame]),
  'message.deleted': (frame) => applyEvents(frame.room, [frame]),
  presence: onPresence,
  typing: (frame) => showTyping(frame.room, frame.users),
  error: showError,
};

// With the sockets on an origin of their own (data-ticket-url), where this page's cookie does
// not go, each connect first gets a single-use ticket from the page's own site (README).
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

socket.addEventListener('statechange', () => {
  if (socket.state === 'open' && joinFromUrl) {
    command({ command: 'join', room: joinFromUrl });
    joinFromUrl = null;
    window.history.replaceState(null, '', window.location.pathname);
  } else if (socket.state === 'closed') {
    // Only a final close code gets here, and the server sends one only when the session ended.
    document.getElementById('logged-out').hidden = false;
    chat.querySelectorAll('button, input').forEach((control) => { control.disabled = true; });
  }
});

chat.querySelector('.room-picker').addEventListener('click', (event) => {
  const button = event.target.closest('[data-join]');
  if (button) command({ command: 'join', room: button.dataset.join });
});

joined.addEventListener('click', (event) => {
  const button = event.target.closest('[data-leave]');
  if (button) command({ command: 'leave', room: button.closest('section.room').dataset.room });
});

// While the user types, "typing" at most every 2 s per room; a lost one only shows them a little late.
joined.addEventListener('input', (event) => {
  const input = event.target.closest('input[name="text"]');
  const room = input?.closest('section.room').dataset.room;
  if (room && input.value.trim() && typingThrottle.due(room)) socket.send({ command: 'typing', room });
});

joined.addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.target;
  const room = form.closest('section.room').dataset.room;
  if (command({ command: 'send', room, text: form.elements.text.value })) {
    form.reset();
  }
});
