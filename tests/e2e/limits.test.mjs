// Host capacity and message limits: past --max-sessions a create gets 503
// with Retry-After, a release frees its slot at once, and a client message
// larger than Chromium accepts is refused with close code 1009.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer } from './lib/server.mjs';

let server;
before(async () => { server = await startServer({ args: ['--max-sessions', '1', '--pool-max', '0'] }); });
after(async () => { await server?.stop(); });

test('capacity: the second session waits for a slot, which a release frees at once', async () => {
  const first = await server.createSession();
  const refused = await server.api('POST', '/v1/sessions', {});
  assert.equal(refused.status, 503, refused.text);
  assert.equal(refused.json.error.code, 'capacity');
  assert.ok(Number(refused.headers.get('retry-after')) > 0);
  assert.equal((await server.release(first.id)).status, 200);
  const next = await server.api('POST', '/v1/sessions', {});
  assert.equal(next.status, 201, next.text);
  await server.release(next.json.id);
});

test('a client message over 100 MiB is refused with 1009', async () => {
  const s = await server.createSession();
  try {
    const ws = new WebSocket(s.cdpUrl, { perMessageDeflate: false, maxPayload: 0 });
    await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
    const closed = new Promise((r) => ws.on('close', (code) => r(code)));
    ws.on('error', () => {});
    ws.send('x'.repeat(101 * 1024 * 1024));
    assert.equal(await closed, 1009);
    // The session itself is unharmed.
    assert.equal((await server.api('GET', `/v1/sessions/${s.id}`)).json.status, 'ready');
  } finally {
    await server.release(s.id);
  }
});
