// The default-deny destination policy, seen from inside a session's Chromium.
// Each denied class has a real listener behind it (in the test internet, or
// on the host), reachable from the host itself, so a failure inside the
// machine is the policy's doing; an allowed test host and an operator
// --allow rule stay reachable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { networkInterfaces } from 'node:os';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { startInternet, DNS, HOST_SIDE, PRIVATE } from './lib/internet.mjs';
import { networkTag, assertNoNetworkLeft } from './lib/network-leftovers.mjs';
import { execFileSync } from 'node:child_process';

let inet;
let server;
let tag;
let hostServer;
let hostPort;
const hostHits = [];

before(async () => {
  inet = await startInternet();
  // A service on every host address (the kind a machine must never reach).
  hostServer = http.createServer((req, res) => { hostHits.push(`${req.socket.localAddress} ${req.url}`); res.end('host service'); });
  await new Promise((r) => hostServer.listen(0, '::', r));
  hostPort = hostServer.address().port;
  server = await startServer({ args: ['--dns', DNS, '--allow', `${PRIVATE.ten}:8080`, '--pool-min', '1', '--pool-max', '1'] });
  tag = networkTag(server.dataDir);
});
after(async () => {
  await server?.stop({ keepData: true });
  hostServer?.close();
  try {
    if (tag) assertNoNetworkLeft(assert, tag);
  } finally {
    await inet?.stop();
  }
});

function hostAddresses() {
  const out = { v4: [], v6: [] };
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list) {
      if (a.internal || a.address.startsWith('fe80')) continue;
      (a.family === 'IPv4' ? out.v4 : out.v6).push(a.address);
    }
  }
  return out;
}

// Navigates; returns the response text or the network error.
async function visit(page, url) {
  try {
    const res = await page.goto(url, { timeout: 15000 });
    return { ok: true, status: res.status(), text: await page.textContent('body') };
  } catch (e) {
    return { ok: false, error: e.message.split('\n')[0] };
  }
}

test('an allowed test host and an operator --allow rule are reachable', async () => {
  const session = await server.createSession();
  const browser = await chromium.connectOverCDP(session.cdpUrl);
  try {
    const page = await browser.contexts()[0].newPage();
    const site = await visit(page, 'http://site.test/');
    assert.ok(site.ok, JSON.stringify(site));
    const byAddress = await visit(page, 'http://203.0.113.20/');
    assert.ok(byAddress.ok, JSON.stringify(byAddress));
    // 10.99.0.1:8080 is private, but --allow 10.99.0.1:8080 lets it through.
    const allowed = await visit(page, `http://${PRIVATE.ten}:8080/`);
    assert.ok(allowed.ok && allowed.text.includes('reachable 10.99.0.1:8080'), JSON.stringify(allowed));
  } finally {
    await browser.close();
    await server.release(session.id);
  }
});

test('every denied class is unreachable from the session, directly, by DNS, by redirect and in IPv6 forms', async () => {
  const host = hostAddresses();
  // From the host, the listeners answer: the denials below are the policy's.
  for (const addr of [`${PRIVATE.ten}:8081`, PRIVATE.cgnat, PRIVATE.rfc1918b, PRIVATE.rfc1918c, PRIVATE.linkLocal]) {
    const out = execFileSync('/usr/bin/python3', ['-c', `import urllib.request;print(urllib.request.urlopen("http://${addr}/",timeout=3).read().decode())`]).toString();
    assert.match(out, /reachable/);
  }
  const slotHost = execFileSync('ip', ['-o', '-4', 'addr', 'show']).toString().split('\n')
    .filter((l) => l.includes(`kn${tag}-`)).map((l) => l.split(/\s+/)[3].split('/')[0]);
  assert.ok(slotHost.length >= 1);
  const otherMachines = slotHost.map((a) => a.replace(/\d+$/, (n) => String(Number(n) + 1)));

  const targets = {
    'private 10/8 (not the allowed port)': `http://${PRIVATE.ten}:8081/`,
    'private 10/8 as a decimal number': `http://${(10 << 24) + (99 << 16) + 1}:8081/`,
    'private 10/8 in hex': 'http://0x0a630001:8081/',
    'carrier-grade NAT 100.64/10': `http://${PRIVATE.cgnat}/`,
    'private 172.16/12': `http://${PRIVATE.rfc1918b}/`,
    'private 192.168/16': `http://${PRIVATE.rfc1918c}/`,
    'link-local 169.254/16': `http://${PRIVATE.linkLocal}/`,
    'cloud metadata 169.254.169.254': 'http://169.254.169.254/latest/meta-data/',
    'loopback (the host service port)': `http://127.0.0.1:${hostPort}/`,
    'the host side of the test internet link': `http://${HOST_SIDE}:${hostPort}/`,
    'DNS name resolving to 10/8': 'http://private.test:8081/',
    'DNS name resolving to 169.254.169.254': 'http://metadata.test/',
    'DNS name resolving to link-local': 'http://linklocal.test/',
    'DNS name resolving to loopback': `http://loopback.test:${hostPort}/`,
    'redirect from the allowed host to 10/8': `http://site.test/to?url=${encodeURIComponent(`http://${PRIVATE.ten}:8081/`)}`,
    'redirect from the allowed host to link-local': `http://site.test/to?url=${encodeURIComponent(`http://${PRIVATE.linkLocal}/`)}`,
    'redirect from the allowed host to metadata by name': `http://site.test/to?url=${encodeURIComponent('http://metadata.test/')}`,
    'redirect from the allowed host to the host': `http://site.test/to?url=${encodeURIComponent(`http://${HOST_SIDE}:${hostPort}/`)}`,
    'IPv6 loopback': `http://[::1]:${hostPort}/`,
    'IPv6 metadata fd00:ec2::254': 'http://[fd00:ec2::254]/',
    'IPv6 ULA fc00::/7': 'http://[fd12:3456::1]/',
    'IPv6 link-local': 'http://[fe80::1]/',
    'IPv4-mapped IPv6 of 10/8': 'http://[::ffff:10.99.0.1]:8081/',
    'IPv4-mapped IPv6 of link-local': 'http://[::ffff:169.254.99.1]/',
    'redirect to IPv4-mapped IPv6 of 10/8': `http://site.test/to?url=${encodeURIComponent('http://[::ffff:10.99.0.1]:8081/')}`,
  };
  for (const a of host.v4) targets[`host address ${a}`] = `http://${a}:${hostPort}/`;
  for (const a of host.v6) targets[`host IPv6 address ${a}`] = `http://[${a}]:${hostPort}/`;
  for (const a of slotHost) targets[`host end of a machine link ${a}`] = `http://${a}:${hostPort}/`;
  for (const a of otherMachines) targets[`a machine (possibly another session) ${a}`] = `http://${a}:9222/`;

  // The host's own probes above are not the session's; their log lines may
  // still be on their way, so entries are told apart by time.
  const sessionStart = Date.now();
  const session = await server.createSession();
  const browser = await chromium.connectOverCDP(session.cdpUrl);
  const reached = [];
  const started = Date.now();
  try {
    const page = await browser.contexts()[0].newPage();
    for (const [what, url] of Object.entries(targets)) {
      const r = await visit(page, url);
      if (r.ok && /\breachable \d|host service/.test(r.text || "")) reached.push(`${what}: ${url} -> ${r.text}`);
      else assert.ok(!r.ok || r.status >= 300, `${what}: ${url} answered ${JSON.stringify(r)}`);
    }
    // Still fine afterwards: the policy denied, it did not break the network.
    // On a fresh tab: the last denial's error page can still be committing
    // in the old one ("interrupted by another navigation").
    const after = await visit(await browser.contexts()[0].newPage(), 'http://site.test/');
    assert.ok(after.ok, `the allowed site after the denials: ${JSON.stringify(after)}`);
  } finally {
    await browser.close();
    await server.release(session.id);
  }
  assert.deepEqual(reached, []);
  // Nothing arrived at the listeners (10.99.0.1:8080 is the allowed one).
  const hits = inet.log.filter((e) => e.t >= sessionStart && e.private && e.private !== '10.99.0.1:8080');
  assert.deepEqual(hits, [], `private listeners were reached: ${JSON.stringify(hits)}`);
  assert.deepEqual(hostHits, []);
  // Denials are answered at once (ICMP prohibited), not left to time out.
  assert.ok(Date.now() - started < Object.keys(targets).length * 5000, `took ${Date.now() - started} ms`);
});
