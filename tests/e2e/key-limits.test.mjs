// Per-API-key limits: with --key-max-sessions C exactly C sessions open at
// once and the next create gets 429 naming the limit, with Retry-After; a
// release frees the slot at once; creates past --key-create-rate get 429 too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';

let server;
before(async () => {
  server = await startServer({
    args: ['--key-max-sessions', '2', '--key-create-rate', '0.1', '--key-create-burst', '3', '--pool-max', '0'],
  });
});
after(async () => { await server?.stop(); });

test('a key holds at most C live sessions; a release frees a slot at once; then the create rate bites', async () => {
  const attempts = await Promise.all([0, 1, 2].map(() => server.api('POST', '/v1/sessions', {})));
  const made = attempts.filter((r) => r.status === 201);
  const refused = attempts.filter((r) => r.status !== 201);
  try {
    assert.equal(made.length, 2, attempts.map((r) => r.text).join('\n'));
    assert.equal(refused.length, 1);
    assert.equal(refused[0].status, 429, refused[0].text);
    assert.equal(refused[0].json.error.code, 'session_limit');
    assert.match(refused[0].json.error.message, /--key-max-sessions/);
    assert.ok(Number(refused[0].headers.get('retry-after')) >= 1);

    // The refused create took nothing from the rate bucket (burst 3, 2 used).
    assert.equal((await server.release(made[0].json.id)).status, 200);
    const next = await server.api('POST', '/v1/sessions', {});
    assert.equal(next.status, 201, next.text);
    made[0] = next;

    // Under the session limit again, but the bucket is empty: 0.1/s means
    // the next token is about 10 s away.
    assert.equal((await server.release(next.json.id)).status, 200);
    made.shift();
    const fast = await server.api('POST', '/v1/sessions', {});
    assert.equal(fast.status, 429, fast.text);
    assert.equal(fast.json.error.code, 'rate_limited');
    assert.match(fast.json.error.message, /--key-create-rate/);
    const retry = Number(fast.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 10, `Retry-After ${retry}`);
  } finally {
    for (const r of made) await server.release(r.json.id);
  }
});

test('a wrong key is refused before any limit is counted', async () => {
  const r = await server.api('POST', '/v1/sessions', {}, { Authorization: 'Bearer nope' });
  assert.equal(r.status, 401);
});
