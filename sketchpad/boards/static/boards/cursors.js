// Live cursors: this page's pointer, sent at most 20 times a second, and the other
// pages' pointers, drawn over the board with their author's name and colour and
// eased towards where they were last reported. Nothing of it is stored: a page
// that joins sees each cursor when it next moves.

// The server relays at most 25 a second (boards/cursors.py): 20 leaves room for the network's bunching.
const SEND_INTERVAL_MS = 50;
// How fast a drawn cursor closes the gap to its latest position: most of it by the next update.
const EASING_MS = 40;
const SETTLED = 0.0005;
// The server takes a cursor off after 10 s without a move. One not heard of for longer
// belongs to a page whose server died before it could say so: it is dropped here.
const STALE_MS = 15000;

/** This page's pointer, for `send(point)` ([x, y] from 0 to 1, or null: off the board),
 * which answers whether it went out. */
export class CursorSender {
  #send;
  #pending = null;
  #timer = null;
  #sentAt = -Infinity;
  #shown = false;

  constructor(send) {
    this.#send = send;
  }

  /** The pointer is at `point`: sent now, or with the latest point once the interval is over. */
  move(point) {
    this.#pending = point;
    if (this.#timer !== null) return;
    const wait = this.#sentAt + SEND_INTERVAL_MS - performance.now();
    if (wait <= 0) {
      this.#flush();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#flush();
    }, wait);
  }

  /** The pointer left the board: the others take its cursor off. */
  leave() {
    clearTimeout(this.#timer);
    this.#timer = this.#pending = null;
    if (this.#shown && this.#send(null)) this.#shown = false;
  }

  #flush() {
    if (this.#pending && this.#send(this.#pending)) {
      this.#sentAt = performance.now();
      this.#shown = true;
    }
    this.#pending = null;
  }
}

/** The other pages' cursors, as elements in `layer`, which lies over the board. */
export class RemoteCursors {
  #layer;
  // By the id of the socket each comes from: an author's tabs are one author, but two cursors.
  #cursors = new Map();
  #frame = null;
  #frameAt = 0;
  #staleTimer = null;

  constructor(layer) {
    this.#layer = layer;
  }

  /** A cursor frame: `x` and `y` from 0 to 1, or null when the cursor is gone. */
  apply({ id, name, color, x, y }) {
    if (x === null || y === null) {
      this.remove(id);
      return;
    }
    let cursor = this.#cursors.get(id);
    if (!cursor) {
      // It appears where it is, rather than flying in from a corner.
      cursor = { element: this.#element(name, color), x, y };
      this.#cursors.set(id, cursor);
      this.#layer.append(cursor.element);
      this.#place(cursor);
      this.#staleTimer ??= setInterval(() => this.#dropStale(), 1000);
    }
    Object.assign(cursor, { targetX: x, targetY: y, heardAt: performance.now() });
    if (this.#frame === null) {
      this.#frameAt = performance.now();
      this.#frame = requestAnimationFrame((now) => this.#ease(now));
    }
  }

  remove(id) {
    this.#cursors.get(id)?.element.remove();
    this.#cursors.delete(id);
    if (!this.#cursors.size) {
      clearInterval(this.#staleTimer);
      this.#staleTimer = null;
    }
  }

  /** All of them: a new snapshot, or the connection is gone. */
  clear() {
    for (const id of [...this.#cursors.keys()]) this.remove(id);
  }

  #element(name, color) {
    const element = document.createElement('div');
    element.className = 'cursor';
    // Through the CSSOM, which the Content-Security-Policy allows (a style attribute it would refuse).
    element.style.setProperty('--cursor-color', color);
    const arrow = document.createElement('span');
    arrow.className = 'cursor-arrow';
    const label = document.createElement('span');
    label.className = 'cursor-name';
    label.textContent = name;
    element.append(arrow, label);
    return element;
  }

  #place(cursor) {
    // Percentages of the layer: right at any size of the board, with no measuring.
    cursor.element.style.left = `${cursor.x * 100}%`;
    cursor.element.style.top = `${cursor.y * 100}%`;
  }

  #ease(now) {
    const step = 1 - Math.exp(-Math.max(0, now - this.#frameAt) / EASING_MS);
    this.#frameAt = now;
    let moving = false;
    for (const cursor of this.#cursors.values()) {
      const [dx, dy] = [cursor.targetX - cursor.x, cursor.targetY - cursor.y];
      if (Math.abs(dx) < SETTLED && Math.abs(dy) < SETTLED) {
        if (!dx && !dy) continue;
        [cursor.x, cursor.y] = [cursor.targetX, cursor.targetY];
      } else {
        cursor.x += dx * step;
        cursor.y += dy * step;
        moving = true;
      }
      this.#place(cursor);
    }
    this.#frame = moving ? requestAnimationFrame((next) => this.#ease(next)) : null;
  }

  #dropStale() {
    const now = performance.now();
    for (const [id, cursor] of this.#cursors) if (now - cursor.heardAt > STALE_MS) this.remove(id);
  }
}
