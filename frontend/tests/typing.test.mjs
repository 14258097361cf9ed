import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { TYPING_INTERVAL_MS, TypingThrottle, typingText } from '../js/typing.js';

describe('typingText', () => {
  it('says nothing for nobody', () => {
    assert.equal(typingText([]), '');
  });

  it('names one, two and three people', () => {
    assert.equal(typingText(['alice']), 'alice is typing…');
    assert.equal(typingText(['alice', 'bob']), 'alice and bob are typing…');
    assert.equal(typingText(['alice', 'bob', 'carol']), 'alice, bob and carol are typing…');
  });

  it('counts the others from four on', () => {
    assert.equal(typingText(['alice', 'bob', 'carol', 'dave']), 'alice, bob and 2 others are typing…');
    assert.equal(typingText(['a', 'b', 'c', 'd', 'e', 'f']), 'a, b and 4 others are typing…');
  });

  it('keeps names as they are: markup is the page\'s textContent to show', () => {
    assert.equal(typingText(['<b>x</b>']), '<b>x</b> is typing…');
  });
});

describe('TypingThrottle', () => {
  function throttle() {
    const clock = { now: 0 };
    return { clock, throttle: new TypingThrottle({ now: () => clock.now }) };
  }

  it('lets one keystroke through per interval and room', () => {
    const { clock, throttle: typing } = throttle();
    assert.equal(typing.due('lobby'), true);
    assert.equal(typing.due('lobby'), false);
    assert.equal(typing.due('random'), true); // another room keeps its own time
    clock.now = TYPING_INTERVAL_MS - 1;
    assert.equal(typing.due('lobby'), false);
    clock.now = TYPING_INTERVAL_MS;
    assert.equal(typing.due('lobby'), true);
    assert.equal(typing.due('lobby'), false);
  });

  it('holds to one every 2 s through messages: someone sending many stays within the limit', () => {
    const { clock, throttle: typing } = throttle();
    assert.equal(typing.due('lobby'), true);
    for (clock.now = 100; clock.now < TYPING_INTERVAL_MS; clock.now += 100) assert.equal(typing.due('lobby'), false);
  });

  it('keeps letting notices through when the system clock is set back', (t) => {
    // Two keystrokes 2 s apart, while the wall clock (Date) is set an hour back: the monotonic one goes on.
    t.mock.timers.enable({ apis: ['Date'], now: 1_800_000_000_000 });
    let monotonic = 5000;
    t.mock.method(performance, 'now', () => monotonic);
    const typing = new TypingThrottle();
    assert.equal(typing.due('lobby'), true);
    t.mock.timers.setTime(Date.now() - 60 * 60 * 1000 + TYPING_INTERVAL_MS);
    monotonic += TYPING_INTERVAL_MS;
    assert.equal(typing.due('lobby'), true);
  });
});
