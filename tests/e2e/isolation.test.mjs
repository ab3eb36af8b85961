// Two concurrent sessions cannot see each other's processes, files, cookies
// or localStorage, and no session reaches the gateway or the host's loopback.
// Checked from inside each browser and from each machine's own view.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { descendants } from './lib/host.mjs';

let server;
let sessions = [];
let browsers = [];
before(async () => {
  server = await startServer();
  sessions = [await server.createSession(), await server.createSession()];
  browsers = await Promise.all(sessions.map((s) => chromium.connectOverCDP(s.cdpUrl)));
});
after(async () => {
  for (const b of browsers) await b.close().catch(() => {});
  for (const s of sessions) await server.release(s.id).catch(() => {});
  await server?.stop();
});

// Runs a shell command inside a machine's user, pid, mount and net
// namespaces, as the machine's root (an unprivileged uid on the host).
function inMachine(session, script) {
  return execFileSync('nsenter', ['-t', String(session.machinePid), '-U', '-p', '-m', '-n', '--', '/bin/sh', '-c', script],
    { encoding: 'utf8' });
}

// A page on a made-up origin, served by Playwright's request interception so
// that no network is needed and cookies/localStorage have a real origin.
async function pageOn(browser, origin) {
  const page = await browser.contexts()[0].newPage();
  await page.route(`${origin}/**`, (route) => route.fulfill({ contentType: 'text/html', body: '<title>iso</title>' }));
  await page.goto(`${origin}/`);
  return page;
}

test('cookies and localStorage do not cross sessions', async () => {
  const origin = 'http://isolation.kindling.test';
  const a = await pageOn(browsers[0], origin);
  await a.evaluate(() => { document.cookie = 'who=A; path=/'; localStorage.setItem('who', 'A'); });
  assert.equal(await a.evaluate(() => document.cookie), 'who=A');
  const b = await pageOn(browsers[1], origin);
  assert.equal(await b.evaluate(() => document.cookie), '');
  assert.equal(await b.evaluate(() => localStorage.getItem('who')), null);
  const cookiesB = await browsers[1].contexts()[0].cookies(origin);
  assert.deepEqual(cookiesB, []);
  await a.close();
  await b.close();
});

test('each machine sees only its own processes', () => {
  for (const s of sessions) {
    const inside = inMachine(s, 'ls /proc').split(/\s+/).filter((n) => /^\d+$/.test(n)).map(Number);
    assert.ok(inside.includes(1), 'the agent is PID 1');
    // nsenter's own sh and ls are in the pid namespace too while they run.
    const own = 1 + descendants(s.machinePid).length;
    assert.ok(inside.length >= own && inside.length <= own + 2,
      `machine ${s.id} sees ${inside.length} processes, owns ${own}`);
    const comm1 = inMachine(s, 'cat /proc/1/comm').trim();
    assert.equal(comm1, 'agent');
  }
  const [a, b] = sessions;
  const hostPidsOfB = descendants(b.machinePid).length;
  assert.ok(hostPidsOfB > 0);
});

test('files written in one machine are invisible to the other, also from its browser', async () => {
  const [a, b] = sessions;
  inMachine(a, 'echo secret-of-A > /tmp/marker-a.txt && chmod 644 /tmp/marker-a.txt');
  assert.equal(inMachine(a, 'cat /tmp/marker-a.txt').trim(), 'secret-of-A');
  assert.equal(spawnSync('nsenter', ['-t', String(b.machinePid), '-m', '--', '/bin/sh', '-c', 'cat /tmp/marker-a.txt']).status !== 0, true);
  // From inside each browser: A reads its file, B's file:// view has no such file.
  const pa = await browsers[0].contexts()[0].newPage();
  await pa.goto('file:///tmp/marker-a.txt');
  assert.match(await pa.textContent('body'), /secret-of-A/);
  const pb = await browsers[1].contexts()[0].newPage();
  const resp = await pb.goto('file:///tmp/marker-a.txt').catch((e) => e);
  assert.ok(resp instanceof Error, 'B cannot open A\'s file');
  await pa.close();
  await pb.close();
});

test('a session reaches neither the gateway nor the host loopback', async () => {
  const port = new URL(server.url).port;
  const page = await browsers[0].contexts()[0].newPage();
  const result = await page.goto(`http://127.0.0.1:${port}/healthz`).then(() => 'loaded', (e) => e.message);
  assert.match(result, /ERR_CONNECTION_REFUSED|ERR_ADDRESS_UNREACHABLE|ERR_NETWORK/);
  await page.close();
  // From the machine's own network namespace: loopback and its own link
  // (docs/network.md); the gateway's port is reached neither on the
  // machine's loopback nor through its link to the host (the policy rejects
  // every host address).
  const links = inMachine(sessions[0], 'cat /proc/net/dev').split('\n').slice(2).map((l) => l.split(':')[0].trim()).filter(Boolean);
  assert.deepEqual(links.sort(), ['eth0', 'lo']);
  const gateway = execFileSync('nsenter', ['-t', String(sessions[0].machinePid), '-n', '--', 'ip', '-4', 'route', 'show', 'default'],
    { encoding: 'utf8' }).split(' ')[2];
  assert.match(gateway, /^\d+\.\d+\.\d+\.\d+$/);
  for (const host of ['127.0.0.1', gateway]) {
    const probe = spawnSync('nsenter', ['-t', String(sessions[0].machinePid), '-n', '--', 'timeout', '5', 'bash', '-c',
      `exec 3<>/dev/tcp/${host}/${port}`]);
    assert.notEqual(probe.status, 0, `connecting to the gateway port at ${host} from inside must fail`);
  }
});
