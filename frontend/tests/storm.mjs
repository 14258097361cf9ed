// A server that accepts every connection and closes it at once, played against a client under
// test, and the bound issue 17 set for it: the JSON page's socket and the fragments page's
// htmx extension are held to the same one, and to the same backoff steps.
import assert from 'node:assert/strict';

/**
 * Plays that server for `ms`, in steps of 10 ms of the mocked clock (`tick`), on each socket
 * the client opens (`sockets`, in order; each with open() and serverClose(code)); answers when
 * each attempt came, in ms from the start.
 */
export function acceptAndClose({ sockets, code, ms, tick }) {
  const attempts = [];
  for (let now = 0; now < ms; now += 10) {
    while (attempts.length < sockets.length) {
      const ws = sockets[attempts.length];
      attempts.push(now);
      ws.open();
      ws.serverClose(code);
    }
    tick(10);
  }
  return attempts;
}

/** At most 9 attempts in the first minute, then at least 15 s apart, and still trying (10 minutes played). */
export function assertStormProof(attempts) {
  const firstMinute = attempts.filter((at) => at < 60000);
  assert.ok(firstMinute.length <= 9, `${firstMinute.length} attempts in the first minute: ${firstMinute}`);
  const later = attempts.filter((at) => at >= 60000);
  assert.ok(later.length >= 30, `it keeps trying: ${later.length} attempts in 9 minutes`);
  for (const [i, at] of attempts.entries()) {
    const gap = at - attempts[i - 1];
    if (at >= 60000) assert.ok(gap >= 15000, `an attempt at ${at} ms, ${gap} ms after the one before`);
  }
}

/**
 * Asserts the client's next attempt comes exactly `delay` ms after now on the mocked clock (`tick`):
 * no new socket in `sockets` 1 ms before, one at `delay`. Exactness is the point: a backoff that is
 * off by one step would still reconnect, just sooner or later than the README promises.
 */
export function assertNextAttemptAt({ sockets, delay, tick }) {
  const count = sockets.length;
  tick(delay - 1);
  assert.equal(sockets.length, count, `no attempt before ${delay} ms`);
  tick(1);
  assert.equal(sockets.length, count + 1, `an attempt at ${delay} ms`);
}
