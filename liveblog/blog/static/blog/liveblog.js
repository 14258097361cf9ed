// Keeps the page's list of posts in step with the liveblog, over a JsonSocket.
// Post HTML comes from the server already escaped (see blog/wire.py); every other
// value is set as text.
// The shared client, from its (hashed) URL in base.html: the CSP refuses an inline import map.
const { JsonSocket } = await import(document.getElementById('frontend-socket').href);

const list = document.getElementById('posts');
const emptyNote = document.getElementById('no-posts');
const template = document.getElementById('post-template');
const timeFormat = new Intl.DateTimeFormat([], { dateStyle: 'medium', timeStyle: 'short' });
// The seq of the last event this page shows; the socket resumes after it.
let seq = Number(list.dataset.seq);

function decorate(article) {
  const { created, updated } = article.dataset;
  article.querySelector('time').textContent = timeFormat.format(new Date(created));
  // created and updated are stamped microseconds apart on insert; an edit is later than that.
  article.querySelector('.edited').hidden = new Date(updated) - new Date(created) < 1000;
  return article;
}

function render(post) {
  const article = template.content.firstElementChild.cloneNode(true);
  article.id = `post-${post.id}`;
  Object.assign(article.dataset, { postId: post.id, created: post.created, updated: post.updated });
  article.querySelector('.post-body').innerHTML = post.html;
  article.querySelector('time').dateTime = post.created;
  return decorate(article);
}

function showEmptyNote() {
  emptyNote.hidden = list.childElementCount > 0;
}

// Newest first. ISO 8601 times in UTC compare correctly as strings.
function upsert(post) {
  const article = render(post);
  const existing = document.getElementById(article.id);
  if (existing) {
    existing.replaceWith(article);
  } else {
    const older = [...list.children].find((other) => other.dataset.created < post.created);
    list.insertBefore(article, older ?? null);
  }
  showEmptyNote();
}

function remove(post) {
  document.getElementById(`post-${post.id}`)?.remove();
  showEmptyNote();
}

const apply = { 'post.created': upsert, 'post.updated': upsert, 'post.deleted': remove };

// The liveblog itself was deleted: nothing is left to follow, and its socket would only be refused.
function showGone() {
  socket.close();
  list.replaceChildren();
  emptyNote.hidden = true;
  document.getElementById('liveblog-gone').hidden = false;
}

// The server could not replay what this page missed, or the liveblog was deleted: load the whole list again.
let resyncing = null;
async function resync() {
  const response = await fetch(list.dataset.snapshotUrl, { headers: { Accept: 'application/json' } });
  if (response.status === 404) {
    showGone();
    return;
  }
  if (!response.ok) throw new Error(`snapshot: HTTP ${response.status}`);
  const snapshot = await response.json();
  list.replaceChildren(...snapshot.posts.map(render));
  showEmptyNote();
  seq = snapshot.seq;
  socket.reconnect();
}

const socket = new JsonSocket(list.dataset.socketUrl, {
  resume: () => ({ since: seq }),
  statusElement: document.getElementById('connection-state'),
  onMessage(frame) {
    if (frame.type === 'resync') {
      resyncing ??= resync().catch(console.error).finally(() => { resyncing = null; });
    } else if (frame.type in apply && frame.seq > seq) {
      apply[frame.type](frame.post);
      seq = frame.seq;
    }
  },
});

list.querySelectorAll('article').forEach(decorate);

// Publishing without a page load; the new post arrives over the socket like everyone else's.
const form = document.getElementById('publish');
form?.addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = document.getElementById('publish-error');
  const response = await fetch(form.action, {
    method: 'POST',
    body: new FormData(form),
    headers: { Accept: 'application/json' },
    // A redirect here is a login page, never a success: keep the text.
    redirect: 'manual',
  });
  if (response.status === 201) {
    form.reset();
    error.hidden = true;
    return;
  }
  const { errors } = await response.json().catch(() => ({}));
  const expired = response.status === 401 || response.type === 'opaqueredirect';
  error.textContent = expired
    ? 'Your session expired: log in again, then publish.'
    : (errors?.body?.join(' ') ?? `Could not publish (HTTP ${response.status}).`);
  error.hidden = false;
});
