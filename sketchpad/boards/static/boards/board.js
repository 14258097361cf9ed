// The board page: draws with the pointer (mouse, pen or finger), sends each stroke
// in batches while it is being drawn, and draws everyone else's as they arrive.
// Points go over the wire normalised to 0..1 and widths in thousandths of the
// board's width, so a drawing looks the same on every screen.
// The shared client, from its (hashed) URL in base.html: the CSP refuses an inline import map.
const { JsonSocket } = await import(document.getElementById('frontend-socket').href);
const { CursorSender, RemoteCursors } = await import(document.getElementById('board-cursors').href);
const { elementsById } = await import(document.getElementById('frontend-elements').href);

const BATCH_MS = 30;
// The server's limits (boards/wire.py and boards/drawing.py).
const MAX_BATCH_POINTS = 256;
const MAX_STROKE_POINTS = 10000;
const BOARD_UNITS = 1000;

const { board, tools, canvas, undoButton, errorElement, cursorLayer } = elementsById({
  board: 'board', tools: 'tools', canvas: 'canvas', undoButton: 'undo', errorElement: 'board-error',
  cursorLayer: 'cursors',
});
const context = canvas.getContext('2d');
const cursors = new RemoteCursors(cursorLayer);
// For measurements only: the latency benchmark defines it before this module runs.
const probe = window.sketchpadProbe ?? (() => {});

// Every stroke on the board, in drawing order, by author and id; and this page's author id.
const strokes = new Map();
let you = null;
// The strokes this page is drawing, by pointer, with the points not sent yet.
const drawing = new Map();
let flushTimer = null;
let errorTimer = null;

const keyOf = (author, id) => `${author}/${id}`;

function newStrokeId() {
  // crypto.randomUUID() needs a secure context; this works on plain http too.
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** The value of the palette's radio button that is checked in the group `name` ("color" or "width"). */
function chosen(name) {
  return tools.querySelector(`input[name="${name}"]:checked`).value;
}

function toPixels([x, y]) {
  return [x * canvas.width, y * canvas.height];
}

/** Draws the stroke's points from index `from` on, joined to the one before. */
function paint(stroke, from = 0) {
  const { points } = stroke;
  if (from >= points.length) return;
  const lineWidth = Math.max(1, (stroke.width * canvas.width) / BOARD_UNITS);
  context.strokeStyle = context.fillStyle = stroke.color;
  context.lineWidth = lineWidth;
  context.lineCap = context.lineJoin = 'round';
  context.beginPath();
  if (points.length === 1) {
    context.arc(...toPixels(points[0]), lineWidth / 2, 0, 2 * Math.PI);
    context.fill();
    return;
  }
  context.moveTo(...toPixels(points[Math.max(0, from - 1)]));
  for (let i = Math.max(1, from); i < points.length; i++) context.lineTo(...toPixels(points[i]));
  context.stroke();
}

function redraw() {
  context.fillStyle = '#ffffff';
  context.fillRect(0, 0, canvas.width, canvas.height);
  for (const stroke of strokes.values()) paint(stroke);
  undoButton.disabled = !lastOwnStroke();
}

// One canvas pixel per device pixel, so lines stay sharp on high-density screens.
function resize() {
  const { width, height } = canvas.getBoundingClientRect();
  canvas.width = Math.round(width * devicePixelRatio);
  canvas.height = Math.round(height * devicePixelRatio);
  redraw();
}

// The window moved to a screen of another density, or was zoomed.
function watchPixelRatio() {
  matchMedia(`(resolution: ${devicePixelRatio}dppx)`).addEventListener(
    'change',
    () => {
      resize();
      watchPixelRatio();
    },
    { once: true },
  );
}

function pointFrom(event) {
  const rect = canvas.getBoundingClientRect();
  // Pointer capture reports moves beyond the edges: they draw along the edge.
  // Four decimals, as the server keeps: a tenth of a pixel on a 1000-pixel board.
  const normalise = (value) => Math.round(Math.min(1, Math.max(0, value)) * 10000) / 10000;
  return [normalise((event.clientX - rect.left) / rect.width), normalise((event.clientY - rect.top) / rect.height)];
}

// A stroke keeps its colour and width to its end, whatever is chosen meanwhile: the palette's at a
// pointerdown, the finished stroke's for its continuation past MAX_STROKE_POINTS (addPoint).
function begin(pointerId, point, { color, width } = { color: chosen('color'), width: Number(chosen('width')) }) {
  const stroke = {
    author: you,
    stroke: newStrokeId(),
    color,
    width,
    points: [],
    done: false,
  };
  strokes.set(keyOf(you, stroke.stroke), stroke);
  const current = { stroke, unsent: [] };
  drawing.set(pointerId, current);
  addPoint(pointerId, point);
  return current;
}

function addPoint(pointerId, point) {
  let current = drawing.get(pointerId);
  const last = current.stroke.points.at(-1);
  if (last && last[0] === point[0] && last[1] === point[1]) return;
  if (current.stroke.points.length >= MAX_STROKE_POINTS) {
    // As long as the server allows: carry on in a new stroke from the same place, in the same colour and width.
    finish(pointerId);
    current = begin(pointerId, last, current.stroke);
  }
  current.stroke.points.push(point);
  current.unsent.push(point);
  paint(current.stroke, current.stroke.points.length - 1);
  probe('captured', current.stroke.stroke, current.stroke.points.length);
  flushTimer ??= setTimeout(flush, BATCH_MS);
}

function sendUnsent({ stroke, unsent }, done) {
  const send = (points, last) =>
    socket.send({ type: 'draw', stroke: stroke.stroke, color: stroke.color, width: stroke.width, points, done: last });
  while (unsent.length > MAX_BATCH_POINTS) send(unsent.splice(0, MAX_BATCH_POINTS), false);
  if (unsent.length || done) send(unsent.splice(0), done);
}

// Every BATCH_MS while something is drawn: others see the stroke grow as it is drawn.
function flush() {
  flushTimer = null;
  for (const current of drawing.values()) sendUnsent(current, false);
}

function finish(pointerId) {
  const current = drawing.get(pointerId);
  if (!current) return;
  drawing.delete(pointerId);
  sendUnsent(current, true);
  current.stroke.done = true;
  undoButton.disabled = !lastOwnStroke();
}

function lastOwnStroke() {
  return [...strokes.values()].findLast((stroke) => stroke.author === you && stroke.done && !stroke.undoing);
}

function undo() {
  const stroke = lastOwnStroke();
  if (stroke && socket.send({ type: 'undo', stroke: stroke.stroke })) {
    // Gone when the server's "erase" comes back; a second click meanwhile undoes the one before.
    stroke.undoing = true;
    undoButton.disabled = !lastOwnStroke();
  }
}

function showError(detail) {
  errorElement.textContent = detail;
  errorElement.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => {
    errorElement.hidden = true;
  }, 5000);
}

const apply = {
  // On every connect, reconnects included: the board as stored replaces this page's.
  snapshot(frame) {
    you = frame.you;
    // Strokes this page was drawing went with the old connection; cursors show again as they move.
    drawing.clear();
    strokes.clear();
    cursors.clear();
    for (const stroke of frame.strokes) strokes.set(keyOf(stroke.author, stroke.stroke), { ...stroke, done: true });
    redraw();
    board.setAttribute('aria-busy', 'false');
  },
  draw(frame) {
    const key = keyOf(frame.author, frame.stroke);
    let stroke = strokes.get(key);
    if (stroke?.done) return; // in the snapshot already
    if (!stroke) {
      const { author, color, width } = frame;
      stroke = { author, stroke: frame.stroke, color, width, points: [], done: false };
      strokes.set(key, stroke);
    }
    const from = stroke.points.length;
    stroke.points.push(...frame.points);
    stroke.done = frame.done;
    paint(stroke, from);
    probe('drawn', frame.stroke, stroke.points.length);
  },
  erase(frame) {
    strokes.delete(keyOf(frame.author, frame.stroke));
    redraw();
  },
  // Strokes being drawn at that moment survive a clear, here as on the server.
  clear() {
    for (const [key, stroke] of strokes) if (stroke.done) strokes.delete(key);
    redraw();
  },
  cursor(frame) {
    // This author's other tabs: their pointer is this person's own.
    if (frame.author !== you) cursors.apply(frame);
  },
  error(frame) {
    showError(frame.detail);
  },
};

const socket = new JsonSocket(board.dataset.socketUrl, {
  statusElement: document.getElementById('connection-state'),
  onMessage(frame) {
    if (Object.hasOwn(apply, frame.type)) apply[frame.type](frame);
  },
});
socket.addEventListener('statechange', () => {
  if (socket.state !== 'open') {
    board.setAttribute('aria-busy', 'true');
    // Their removals cannot reach this page now.
    cursors.clear();
  }
});
const cursorSender = new CursorSender((point) =>
  socket.send({ type: 'cursor', x: point?.[0] ?? null, y: point?.[1] ?? null }),
);

canvas.addEventListener('pointerdown', (event) => {
  // The main button of a mouse; pens and fingers report 0 too.
  if (event.button !== 0 || socket.state !== 'open' || board.getAttribute('aria-busy') === 'true') return;
  // Moves outside the canvas still belong to this stroke.
  canvas.setPointerCapture(event.pointerId);
  begin(event.pointerId, pointFrom(event));
});
canvas.addEventListener('pointermove', (event) => {
  // One pointer's cursor: the mouse, or the first finger or pen on the board.
  if (event.isPrimary) cursorSender.move(pointFrom(event));
  if (!drawing.has(event.pointerId)) return;
  // Browsers send one move per frame; the coalesced events hold the full path of a fast pen.
  const moves = event.getCoalescedEvents?.() ?? [];
  for (const move of moves.length ? moves : [event]) addPoint(event.pointerId, pointFrom(move));
});
for (const type of ['pointerup', 'pointercancel']) canvas.addEventListener(type, (event) => finish(event.pointerId));
canvas.addEventListener('pointerleave', (event) => {
  if (event.isPrimary) cursorSender.leave();
});

// The palette shows what it holds: each colour's swatch, and each width's dot in the chosen colour. Set from the
// values in the HTML, the one list of them, through the CSSOM, which the Content-Security-Policy allows (a style
// attribute it refuses).
for (const input of tools.querySelectorAll('input[type="radio"]')) {
  input.style.setProperty(input.name === 'color' ? '--swatch' : '--stroke-width', input.value);
}
const inkShow = () => tools.style.setProperty('--ink', chosen('color'));
tools.addEventListener('change', inkShow);
inkShow();

undoButton.addEventListener('click', undo);
document.addEventListener('keydown', (event) => {
  // A text field has an undo of its own; the palette's radio buttons have none.
  const inField = event.target.closest('input:not([type="radio"]), textarea');
  if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key === 'z' && !inField) {
    event.preventDefault();
    undo();
  }
});
// Only the board's creator and staff are shown the button (the server checks too).
document.getElementById('clear')?.addEventListener('click', () => socket.send({ type: 'clear' }));

new ResizeObserver(resize).observe(canvas);
watchPixelRatio();
