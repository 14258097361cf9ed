// Who is typing, for a chat page: the line it shows, and when to tell the server again.
// No DOM and no socket here, so that Node tests it (tests/typing.test.mjs).

// The server lists a user for 5 s after their last "typing": one every 2 s keeps them listed.
export const TYPING_INTERVAL_MS = 2000;

// The line for the users the server listed (sorted, the page's own user left out): '' for
// nobody, "alice is typing…", "alice and bob are typing…", "alice, bob and carol are typing…",
// then "alice, bob and 2 others are typing…". Pages set it as text, never as HTML.
export function typingText(users) {
  if (users.length === 0) return '';
  if (users.length === 1) return `${users[0]} is typing…`;
  if (users.length <= 3) return `${users.slice(0, -1).join(', ')} and ${users.at(-1)} are typing…`;
  return `${users[0]}, ${users[1]} and ${users.length - 2} others are typing…`;
}

// Per room, whether a keystroke should send "typing" now: at most one every `interval` ms.
// On a monotonic clock: with Date.now(), setting the system clock back would stop the notices
// until it caught up with the last one sent.
export class TypingThrottle {
  constructor({ interval = TYPING_INTERVAL_MS, now = () => performance.now() } = {}) {
    this.interval = interval;
    this.now = now;
    this.sent = new Map(); // room -> when "typing" was last sent
  }

  due(room) {
    const now = this.now();
    if (now - (this.sent.get(room) ?? -Infinity) < this.interval) return false;
    this.sent.set(room, now);
    return true;
  }
}
