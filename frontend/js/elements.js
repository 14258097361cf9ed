// The elements a page's script works with, looked up once by id as it starts.
// Only getElementById is used, so that Node tests it (tests/elements.test.mjs) with a stand-in document.

// `ids` maps the names the script uses to the elements' ids: `{ errorBox: 'chat-error' }` gives
// `{ errorBox: <the element> }`. A missing one throws at once, naming every id not found: a
// template that lost an element would otherwise fail later, at the first use of null.
export function elementsById(ids, { document = globalThis.document } = {}) {
  const elements = {};
  const missing = [];
  for (const [name, id] of Object.entries(ids)) {
    elements[name] = document.getElementById(id);
    if (elements[name] === null) missing.push(`#${id}`);
  }
  if (missing.length > 0) throw new Error(`not on this page: ${missing.join(', ')}`);
  return elements;
}
