// Session lifecycle: max lifetime, idle timeout, a crashed browser, and a
// server killed and restarted. Each ended session must close its websockets
// with a reason and leave nothing on the host.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import WebSocket from 'ws';
import { startServer, waitFor } from './lib/server.mjs';
import { pidAlive, descendants, machineCgroups } from './lib/host.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

function connect(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString(), at: Date.now() })));
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

async function eventTypes(id) {
  const r = await server.api('GET', `/v1/sessions/${id}/events`);
  assert.equal(r.status, 200, r.text);
  const times = r.json.events.map((e) => Date.parse(e.at));
  assert.deepEqual(times, [...times].sort((a, b) => a - b), 'events in time order');
  assert.deepEqual(r.json.events.map((e) => e.seq), r.json.events.map((_, i) => i + 1));
  return r.json.events.map((e) => e.type);
}

async function assertGone(session) {
  await waitFor(() => !pidAlive(session.machinePid), { what: `machine pid ${session.machinePid} to exit` });
  await waitFor(() => machineCgroups().every((c) => !c.endsWith('/' + session.machineId)), { what: 'machine cgroups removed' });
  await waitFor(() => !existsSync(`${server.dataDir}/machines/${session.machineId}`), { what: 'machine directory removed' });
}

test('max lifetime ends a session and tells its clients why', async () => {
  const s = await server.createSession({ timeoutSeconds: 4 });
  const ws = await connect(s.cdpUrl);
  const closed = await ws.closed;
  assert.ok(closed.at - Date.parse(s.createdAt) >= 3900, 'not before its lifetime');
  assert.equal(closed.code, 4001);
  assert.match(closed.reason, /lifetime/);
  const got = (await server.api('GET', `/v1/sessions/${s.id}`)).json;
  assert.equal(got.status, 'expired');
  await assertGone(s);
});

test('idle timeout: a session with no client ends, one with a client stays', async () => {
  const idle = await server.createSession({ idleTimeoutSeconds: 1 });
  const busy = await server.createSession({ idleTimeoutSeconds: 1 });
  const ws = await connect(busy.cdpUrl);
  await waitFor(async () => (await server.api('GET', `/v1/sessions/${idle.id}`)).json.status === 'expired',
    { timeoutMs: 8000, what: 'idle session to expire' });
  const got = (await server.api('GET', `/v1/sessions/${idle.id}`)).json;
  assert.match(got.endReason, /idle/);
  await assertGone(idle);
  // The connected one outlived the same idle timeout...
  assert.equal((await server.api('GET', `/v1/sessions/${busy.id}`)).json.status, 'ready');
  // ...a disconnect does not end it at once, and the idle clock starts then.
  ws.close();
  await ws.closed;
  assert.equal((await server.api('GET', `/v1/sessions/${busy.id}`)).json.status, 'ready');
  await waitFor(async () => (await server.api('GET', `/v1/sessions/${busy.id}`)).json.status === 'expired',
    { timeoutMs: 8000, what: 'session to expire after its client left' });
  await assertGone(busy);
  assert.deepEqual(await eventTypes(busy.id), ['created', 'ready', 'connected', 'disconnected', 'expired']);
  assert.deepEqual(await eventTypes(idle.id), ['created', 'ready', 'expired']);
});

test('killing Chromium marks the session failed within 2 s and closes its websockets', async () => {
  const s = await server.createSession();
  const ws = await connect(s.cdpUrl);
  const browser = descendants(s.machinePid).find((p) => p.ppid === s.machinePid && /chromium/.test(p.cmdline[0] || ''));
  assert.ok(browser, 'the machine runs Chromium under its agent');
  const killedAt = Date.now();
  process.kill(browser.pid, 'SIGKILL');
  const closed = await ws.closed;
  assert.equal(closed.code, 4003);
  assert.match(closed.reason, /signal 9/);
  assert.ok(closed.at - killedAt < 2000, `closed ${closed.at - killedAt} ms after the kill`);
  const got = (await server.api('GET', `/v1/sessions/${s.id}`)).json;
  assert.equal(got.status, 'failed');
  assert.ok(Date.parse(got.endedAt) - killedAt < 2000);
  await assertGone(s);
  const types = await eventTypes(s.id);
  assert.deepEqual(types.slice(0, 3), ['created', 'ready', 'connected']);
  assert.deepEqual(types.slice(-2), ['crashed', 'failed']);
});

test('a server killed with live sessions reconciles them on restart', async () => {
  const own = await startServer();
  const s = await own.createSession();
  own.proc.kill('SIGKILL');
  await own.exited;
  const again = await startServer({ dataDir: own.dataDir, apiKey: own.apiKey });
  try {
    const got = (await again.api('GET', `/v1/sessions/${s.id}`)).json;
    assert.equal(got.status, 'failed');
    assert.match(got.endReason, /server stopped/);
    await waitFor(() => !pidAlive(s.machinePid), { what: 'orphaned machine to be killed' });
    assert.deepEqual(machineCgroups().filter((c) => c.endsWith('/' + s.machineId)), []);
    assert.equal((await again.api('GET', '/v1/sessions')).json.sessions.length, 0);
  } finally {
    await again.stop();
  }
});
