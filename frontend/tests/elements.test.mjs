import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { elementsById } from '../js/elements.js';

// A stand-in for the page: getElementById over a fixed set of ids.
function page(...ids) {
  const elements = new Map(ids.map((id) => [id, { id }]));
  return { getElementById: (id) => elements.get(id) ?? null };
}

describe('elementsById', () => {
  afterEach(() => {
    delete globalThis.document;
  });

  it('gives each element under the name the script uses', () => {
    const document = page('chat-error', 'room-template', 'unused');
    const elements = elementsById({ errorBox: 'chat-error', roomTemplate: 'room-template' }, { document });
    assert.deepEqual(elements, { errorBox: { id: 'chat-error' }, roomTemplate: { id: 'room-template' } });
  });

  it('throws at once, naming every id the page lacks', () => {
    const document = page('board');
    assert.throws(
      () => elementsById({ board: 'board', canvas: 'canvas', undoButton: 'undo' }, { document }),
      { message: 'not on this page: #canvas, #undo' },
    );
  });

  it('looks in the browser\'s document by default', () => {
    globalThis.document = page('board');
    assert.deepEqual(elementsById({ board: 'board' }), { board: { id: 'board' } });
  });
});
