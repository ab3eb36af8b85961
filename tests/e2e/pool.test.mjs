// The standby pool (issue 4), checked by behaviour, not timing: a burst
// larger than the pool is served without errors (the misses take the cold
// path and work), a standby browser whose Chromium dies is replaced before
// anyone gets it, and one older than --pool-max-age is replaced too.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, waitFor } from './lib/server.mjs';
import { processesOfServer, processInfo, pidAlive } from './lib/host.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.stop(); });

async function serve(args) {
  const s = await startServer({ args });
  servers.push(s);
  return s;
}

async function pool(server) {
  return (await server.api('GET', '/healthz')).json.pool;
}

// Browser.getVersion through the gateway: the session's browser answers CDP.
async function browserVersion(cdpUrl) {
  const ws = new WebSocket(cdpUrl);
  await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
  try {
    const reply = new Promise((r) => ws.on('message', (m) => r(JSON.parse(m.toString()))));
    ws.send(JSON.stringify({ id: 1, method: 'Browser.getVersion' }));
    return (await reply).result.product;
  } finally {
    ws.close();
  }
}

// The standby machines' agents: with no session live, every machine process
// of this server belongs to the pool.
function standbyAgents(server) {
  return processesOfServer(server.dataDir).map(processInfo)
    .filter((p) => p.comm === 'kindling-agent' || p.cmdline[0] === '/kindling/agent');
}

test('a burst larger than the pool is served without errors; misses start cold and work', async () => {
  const server = await serve(['--pool-min', '1', '--pool-max', '2', '--max-sessions', '8']);
  await waitFor(async () => (await pool(server)).ready >= 1, { timeoutMs: 30000, what: 'a standby browser' });
  const answers = await Promise.all(Array.from({ length: 5 }, () => server.api('POST', '/v1/sessions', {})));
  for (const a of answers) assert.equal(a.status, 201, a.text);
  const sessions = answers.map((a) => a.json);
  const starts = sessions.map((s) => s.start);
  assert.ok(starts.includes('warm'), `at least one from the pool: ${starts}`);
  assert.ok(starts.includes('cold'), `the rest launched cold: ${starts}`);
  for (const s of sessions) {
    assert.equal(s.status, 'ready');
    assert.match(await browserVersion(s.cdpUrl), /Chrome/);
  }
  assert.equal(new Set(sessions.map((s) => s.machineId)).size, sessions.length, 'one machine each');
  for (const s of sessions) assert.equal((await server.release(s.id)).status, 200);
});

test('a standby browser whose Chromium dies is replaced before a create can take it', async () => {
  const server = await serve(['--pool-min', '1', '--pool-max', '1']);
  await waitFor(async () => (await pool(server)).ready === 1, { timeoutMs: 30000, what: 'a standby browser' });
  const [agent] = standbyAgents(server);
  assert.ok(agent, 'the standby machine runs an agent');
  const chromium = processesOfServer(server.dataDir).map(processInfo)
    .find((p) => p.ppid === agent.pid && /chromium/.test(p.cmdline[0] || ''));
  assert.ok(chromium, 'the standby machine runs Chromium under its agent');
  process.kill(chromium.pid, 'SIGKILL');
  await waitFor(() => !pidAlive(agent.pid), { timeoutMs: 10000, what: 'the dead standby to be retired' });
  await waitFor(async () => (await pool(server)).ready === 1 && standbyAgents(server).length === 1,
    { timeoutMs: 30000, what: 'a replacement standby' });
  const s = await server.createSession();
  assert.equal(s.start, 'warm');
  assert.match(await browserVersion(s.cdpUrl), /Chrome/);
  await server.release(s.id);
});

test('a standby browser older than --pool-max-age is replaced', async () => {
  const server = await serve(['--pool-min', '1', '--pool-max', '1', '--pool-max-age', '10']);
  await waitFor(async () => (await pool(server)).ready === 1, { timeoutMs: 30000, what: 'a standby browser' });
  const [first] = standbyAgents(server);
  assert.ok(first);
  await waitFor(() => !pidAlive(first.pid), { timeoutMs: 20000, intervalMs: 250, what: 'the old standby to retire' });
  await waitFor(async () => (await pool(server)).ready === 1, { timeoutMs: 30000, what: 'its replacement' });
  const [second] = standbyAgents(server);
  assert.ok(second && second.pid !== first.pid, 'a different machine stands by');
  const s = await server.createSession();
  assert.equal(s.start, 'warm');
  assert.match(await browserVersion(s.cdpUrl), /Chrome/);
  await server.release(s.id);
});

test('an empty pool queues creates for its starting standbys, and past --pool-max-waiting answers 503', async () => {
  const server = await serve(['--pool-min', '1', '--pool-max', '1', '--pool-starts', '1', '--pool-max-waiting', '2',
    '--max-sessions', '8']);
  await waitFor(async () => (await pool(server)).ready === 1, { timeoutMs: 30000, what: 'a standby browser' });
  // Watch the pool while the burst is served: one start at a time, as asked.
  let maxStarting = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      maxStarting = Math.max(maxStarting, (await pool(server)).starting);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const answers = await Promise.all(Array.from({ length: 6 }, () => server.api('POST', '/v1/sessions', {})));
  watching = false;
  await watcher;
  for (const a of answers) assert.ok(a.status === 201 || a.status === 503, `${a.status} ${a.text}`);
  const made = answers.filter((a) => a.status === 201).map((a) => a.json);
  const refused = answers.filter((a) => a.status === 503);
  assert.ok(made.length >= 3, `the standby and the two waiters are served: ${answers.map((a) => a.status)}`);
  assert.ok(refused.length >= 1, 'creates past the queue are refused');
  for (const r of refused) {
    assert.ok(Number(r.headers.get('retry-after')) > 0, 'a refusal says when to retry');
    assert.match(r.json.error.message, /waiting/);
  }
  assert.ok(maxStarting <= 1, `--pool-starts 1 bounds the starts (saw ${maxStarting})`);
  for (const s of made) {
    assert.match(await browserVersion(s.cdpUrl), /Chrome/);
    if (s.start === 'cold') {
      const events = (await server.api('GET', `/v1/sessions/${s.id}/events`)).json.events.map((e) => e.type);
      assert.ok(events.includes('waiting'), `a queued create says it waited: ${events}`);
    }
  }
  for (const s of made) assert.equal((await server.release(s.id)).status, 200);
});
