// The gallery: shows each board's thumbnail as the worker renders it, without a reload.
// The shared client, from its (hashed) URL in base.html: the CSP refuses an inline import map.
const { JsonSocket } = await import(document.getElementById('frontend-socket').href);

const gallery = document.getElementById('gallery');

function show(slug, url) {
  const card = gallery.querySelector(`[data-board="${CSS.escape(slug)}"]`);
  if (!card) return; // created after this page loaded
  const image = card.querySelector('img.thumbnail');
  if (url && image.getAttribute('src') !== url) image.src = url;
  image.hidden = !url;
  card.querySelector('.placeholder').hidden = Boolean(url);
}

new JsonSocket(gallery.dataset.socketUrl, {
  statusElement: document.getElementById('connection-state'),
  // The first frame after each connect has every board, so nothing missed offline stays stale.
  onMessage(frame) {
    if (frame.type === 'thumbnails') for (const [slug, url] of Object.entries(frame.boards)) show(slug, url);
  },
});
