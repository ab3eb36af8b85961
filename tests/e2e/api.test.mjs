// The REST API's answers to bad input: each error class with its status and
// the {error: {code, message}} shape, and websockets refused with a reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer } from './lib/server.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

function assertError(r, status, code) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.code, code, r.text);
  assert.ok(r.json.error.message.length > 0);
}

// Opens a websocket and reports how it was refused or closed.
function wsOutcome(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ refused: res.statusCode, body }));
    });
    ws.on('open', () => ws.on('close', (code, reason) => resolve({ closed: code, reason: reason.toString() })));
    ws.on('error', () => {});
  });
}

test('401 without, or with a wrong, API key', async () => {
  assertError(await server.api('GET', '/v1/sessions', undefined, { Authorization: '' }), 401, 'unauthorized');
  assertError(await server.api('GET', '/v1/sessions', undefined, { Authorization: 'Bearer nope' }), 401, 'unauthorized');
  assertError(await server.api('POST', '/v1/sessions', {}, { 'X-API-Key': 'wrong' }), 401, 'unauthorized');
  const ok = await server.api('GET', '/v1/sessions', undefined, { 'X-API-Key': server.apiKey });
  assert.equal(ok.status, 200);
  assert.ok(Array.isArray(ok.json.sessions));
  // The scheme is case-insensitive; the key is not.
  const lower = await server.api('GET', '/v1/sessions', undefined, { Authorization: `bearer ${server.apiKey}` });
  assert.equal(lower.status, 200, lower.text);
  assertError(await server.api('GET', '/v1/sessions', undefined, { Authorization: `Bearer ${server.apiKey.toUpperCase()}` }), 401, 'unauthorized');
});

test('--public-url with a trailing slash gives single-slash URLs', async () => {
  const other = await startServer({ args: ['--public-url', 'https://browsers.example.test/base/', '--pool-max', '0'] });
  try {
    const s = await other.createSession();
    assert.ok(s.cdpUrl.startsWith('wss://browsers.example.test/base/v1/sessions/'), s.cdpUrl);
    await other.release(s.id);
  } finally {
    await other.stop();
  }
});

test('400 for malformed or wrong-typed bodies', async () => {
  for (const body of ['{not json', '[]', '"x"', JSON.stringify({ timeoutSeconds: 'ten' }),
    JSON.stringify({ timeoutSeconds: 0 }), JSON.stringify({ timeoutSeconds: 1e9 }),
    JSON.stringify({ idleTimeoutSeconds: 1.5 }), JSON.stringify({ nonsense: true })]) {
    const r = await server.api('POST', '/v1/sessions', body, { 'Content-Type': 'application/json' });
    assertError(r, 400, 'bad_request');
  }
  assertError(await server.api('GET', '/v1/sessions/%zz'), 400, 'bad_request');
});

test('404 for unknown sessions and routes, 405 for wrong methods', async () => {
  assertError(await server.api('GET', '/v1/sessions/doesnotexist'), 404, 'not_found');
  assertError(await server.api('DELETE', '/v1/sessions/doesnotexist'), 404, 'not_found');
  assertError(await server.api('GET', '/v2/whatever'), 404, 'not_found');
  assertError(await server.api('PUT', '/v1/sessions'), 405, 'method_not_allowed');
  const ws = await wsOutcome(server.url.replace('http', 'ws') + '/v1/sessions/doesnotexist/cdp?token=x');
  assert.equal(ws.refused, 404);
  assert.match(ws.body, /not_found/);
});

test('413 for an oversized body', async () => {
  const r = await server.api('POST', '/v1/sessions', JSON.stringify({ pad: 'x'.repeat(48 * 1024 * 1024) }),
    { 'Content-Type': 'application/json' });
  assertError(r, 413, 'payload_too_large');
});

test('431 for oversized request headers', async () => {
  const r = await server.api('GET', '/v1/sessions', undefined, { 'X-Padding': 'a'.repeat(100_000) });
  assert.equal(r.status, 431, r.text);
  assert.equal(r.json.error.code, 'headers_too_large');
});

test('409 for a released session; its token and websockets die with it', async () => {
  const s = await server.createSession({ timeoutSeconds: 120, idleTimeoutSeconds: 60 });
  assert.equal(s.timeoutSeconds, 120);
  assert.equal(s.idleTimeoutSeconds, 60);
  assert.ok(Date.parse(s.expiresAt) - Date.parse(s.createdAt) === 120000);
  // A websocket connected now hears why it closes.
  const ws = new WebSocket(s.cdpUrl);
  await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
  const closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  const rel = await server.release(s.id);
  assert.equal(rel.status, 200);
  assert.equal(rel.json.status, 'released');
  const c = await closed;
  assert.equal(c.code, 4000);
  assert.match(c.reason, /released/);
  assertError(await server.release(s.id), 409, 'conflict');
  const again = await wsOutcome(s.cdpUrl);
  assert.equal(again.refused, 409);
  const disc = await fetch(s.cdpHttpUrl.replace('?', '/json/version?'));
  assert.equal(disc.status, 409);
  const got = await server.api('GET', `/v1/sessions/${s.id}`);
  assert.equal(got.json.status, 'released');
  assert.equal(got.json.cdpUrl, undefined);
});

test('a wrong session token is refused', async () => {
  const s = await server.createSession();
  try {
    const bad = await wsOutcome(s.cdpUrl.replace(/token=[^&]+/, 'token=forged'));
    assert.equal(bad.refused, 401);
    const noToken = await wsOutcome(s.cdpUrl.replace(/\?token=[^&]+/, ''));
    assert.equal(noToken.refused, 401);
  } finally {
    await server.release(s.id);
  }
});

test('discovery lists page targets whose websockets go through the gateway', async () => {
  const s = await server.createSession();
  try {
    const base = s.cdpHttpUrl.replace(/\?.*/, '');
    const token = new URL(s.cdpHttpUrl).searchParams.get('token');
    const version = await (await fetch(`${base}/json/version/?token=${token}`)).json();
    assert.match(version.Browser, /Chrome/);
    assert.ok(version.webSocketDebuggerUrl.startsWith(base.replace('http', 'ws') + '/devtools/browser/'));
    const list = await (await fetch(`${base}/json/list?token=${token}`)).json();
    const page = list.find((t) => t.type === 'page');
    assert.ok(page, 'the browser has a page target');
    assert.equal(page.devtoolsFrontendUrl, undefined);
    assert.ok(page.webSocketDebuggerUrl.startsWith(base.replace('http', 'ws') + '/devtools/page/'));
    // A page-level CDP websocket, relayed by the gateway.
    const ws = new WebSocket(page.webSocketDebuggerUrl);
    await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
    const answer = await new Promise((r) => {
      ws.on('message', (m) => { const msg = JSON.parse(m); if (msg.id === 1) r(msg); });
      ws.send(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression: '21 * 2' } }));
    });
    assert.equal(answer.result.result.value, 42);
    ws.close();
    // An unknown page target is a 404 at the upgrade, not a hang.
    const missing = await wsOutcome(`${base.replace('http', 'ws')}/devtools/page/NOPE?token=${token}`);
    assert.equal(missing.refused, 404);
  } finally {
    await server.release(s.id);
  }
});
