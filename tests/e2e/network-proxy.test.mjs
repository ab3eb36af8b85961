// Per-session upstream proxies (`proxy` in the create body), applied by the
// agent's forward proxy inside the machine: an HTTP proxy with Basic auth and
// a SOCKS5 proxy with username/password run in the test internet
// (lib/upstream-proxies.mjs) and log what they see. Pages load through each
// (plain HTTP and a CONNECT tunnel), wrong credentials give a clear error
// page and a session event, bypass rules go direct, a session without a
// proxy goes direct, and the password shows up nowhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { startInternet, DNS, HTTP_PROXY, SOCKS_PROXY } from './lib/internet.mjs';
import { PROXY_USER, PROXY_PASSWORD } from './lib/upstream-proxies.mjs';
import { networkTag, assertNoNetworkLeft } from './lib/network-leftovers.mjs';

const HTTP = { server: `http://${HTTP_PROXY}:3128`, username: PROXY_USER, password: PROXY_PASSWORD };
const SOCKS = { server: `socks5://${SOCKS_PROXY}:1080`, username: PROXY_USER, password: PROXY_PASSWORD };

let inet;
let server;
let tag;
before(async () => {
  inet = await startInternet();
  server = await startServer({ args: ['--dns', DNS, '--pool-min', '1', '--pool-max', '2'] });
  tag = networkTag(server.dataDir);
});
after(async () => {
  // Errors the test internet survived (lib/internet-server.mjs): shown, so
  // a flaky one can be traced.
  for (const e of inet?.log.filter((x) => x.serverError || x.dnsError) || []) console.error('test internet:', e);
  await server?.stop({ keepData: true });
  try {
    if (tag) assertNoNetworkLeft(assert, tag);
  } finally {
    await inet?.stop();
  }
  // Whatever went wrong, the password never reached the server's output.
  assert.ok(!`${server?.stdout}${server?.stderr}`.includes(PROXY_PASSWORD), 'password in the server output');
});

async function withSession(body, fn) {
  const session = await server.createSession(body);
  const browser = await chromium.connectOverCDP(session.cdpUrl);
  try {
    const page = await browser.contexts()[0].newPage();
    await fn(page, session);
  } finally {
    await browser.close();
    await server.release(session.id);
  }
}

const since = (mark, pred) => inet.log.slice(mark).filter(pred);

// Navigates and expects 200; a failure says what the proxy page said.
async function load(page, url) {
  const res = await page.goto(url);
  if (res.status() !== 200) assert.fail(`${url}: ${res.status()} ${await page.textContent('body').catch(() => '')}`);
  return res;
}

// A websocket to the site: ws:// travels through a proxy as a CONNECT tunnel.
const websocketOpens = (page) => page.evaluate(() => new Promise((resolve) => {
  const ws = new WebSocket('ws://site.test/ws');
  ws.onopen = () => { resolve('open'); ws.close(); };
  ws.onerror = () => resolve('error');
  setTimeout(() => resolve('timeout'), 8000);
}));

test('create validates proxy strictly and never echoes the password', async () => {
  const cases = [
    [{ server: 'ftp://x:1' }, /'proxy.server' must be "http:\/\/host:port" or "socks5:\/\/host:port"/],
    [{ server: 'http://x' }, /'proxy.server'/],
    [{ server: 'http://x:1', username: 'u' }, /needs both 'username' and 'password'/],
    [{ server: 'http://x:1', username: 'u', password: 'p\r\nX: 1' }, /'proxy.password' must not contain control characters/],
    [{ server: 'http://x:1', bypass: ['no spaces'] }, /'proxy.bypass' entries must be/],
    [{ server: 'http://x:1', extra: 1 }, /unknown field 'proxy.extra'/],
    ['socks5://x:1', /'proxy' must be an object/],
  ];
  for (const [proxy, message] of cases) {
    const r = await server.api('POST', '/v1/sessions', { proxy });
    assert.equal(r.status, 400, JSON.stringify(proxy));
    assert.match(r.json.error.message, message);
    assert.ok(!r.text.includes('p\r\nX'));
  }
});

test('pages load through an HTTP proxy with Basic auth (plain HTTP and a CONNECT tunnel)', async () => {
  const mark = inet.log.length;
  await withSession({ proxy: HTTP }, async (page, session) => {
    const res = await load(page, 'http://site.test/');
    assert.equal(res.headers()['x-via-test-proxy'], 'http');
    assert.equal(await page.textContent('h1'), 'Test site');
    assert.equal(await websocketOpens(page), 'open');
    const got = await server.api('GET', `/v1/sessions/${session.id}`);
    assert.deepEqual(got.json.proxy, { server: HTTP.server, bypass: [], authenticated: true });
    assert.ok(!got.text.includes(PROXY_PASSWORD) && !got.text.includes(PROXY_USER));
    const list = await server.api('GET', '/v1/sessions');
    assert.ok(!list.text.includes(PROXY_PASSWORD));
  });
  const seen = since(mark, (e) => e.proxy === 'http');
  assert.ok(seen.some((e) => e.method === 'GET' && e.url === 'http://site.test/' && e.auth), JSON.stringify(seen));
  assert.ok(seen.some((e) => e.method === 'CONNECT' && e.url === 'site.test:80' && e.auth), JSON.stringify(seen));
  assert.ok(seen.every((e) => e.auth), 'every request carried the credentials');
});

test('pages load through a SOCKS5 proxy with username/password', async () => {
  const mark = inet.log.length;
  await withSession({ proxy: SOCKS }, async (page) => {
    await load(page, 'http://site.test/login');
    await page.fill('#user', 'alice');
    await page.fill('#password', 'wonderland');
    await Promise.all([page.waitForURL(/\/account$/), page.click('#submit')]);
    assert.equal(await page.textContent('#welcome'), 'Welcome, alice');
    assert.equal(await websocketOpens(page), 'open');
  });
  const seen = since(mark, (e) => e.proxy === 'socks5');
  assert.ok(seen.some((e) => e.auth === true), JSON.stringify(seen));
  // The name goes to the proxy, which resolves it: DNS follows the proxy.
  assert.ok(seen.some((e) => e.connect === 'site.test:80'), JSON.stringify(seen));
  assert.ok(!seen.some((e) => e.auth === false));
});

test('wrong credentials give a clear error page and a session event', async () => {
  for (const [proxy, message] of [
    [{ ...HTTP, password: 'wrong' }, /upstream proxy http:\/\/203\.0\.113\.30:3128 failed for site\.test:80: the HTTP proxy refused the credentials \(407\)/],
    [{ ...SOCKS, password: 'wrong' }, /upstream proxy socks5:\/\/203\.0\.113\.31:1080 failed for site\.test:80: the SOCKS5 proxy refused the username\/password/],
    // The site's address, a port where nothing listens: refused at once.
    [{ server: 'http://203.0.113.20:3129' }, /upstream proxy http:\/\/203\.0\.113\.20:3129 failed for site\.test:80: cannot connect to 203\.0\.113\.20:3129 \(Connection refused\)/],
  ]) {
    await withSession({ proxy }, async (page, session) => {
      const res = await page.goto('http://site.test/');
      assert.equal(res.status(), 502);
      assert.match(await page.textContent('#kindling-proxy-error'), message);
      // A tunnel (CONNECT, as HTTPS and websockets use) fails as well.
      assert.equal(await websocketOpens(page), 'error');
      const events = (await server.api('GET', `/v1/sessions/${session.id}/events`)).json.events;
      const failures = events.filter((e) => e.type === 'proxy_error');
      assert.ok(failures.some((e) => message.test(e.detail)), JSON.stringify(events));
      assert.ok(!JSON.stringify(events).includes('wrong'), 'no password in events');
    });
  }
});

test('bypass rules go direct; everything else through the proxy', async () => {
  const mark = inet.log.length;
  await withSession({ proxy: { ...SOCKS, bypass: ['docs.test'] } }, async (page) => {
    await load(page, 'http://docs.test/index.html');
    await load(page, 'http://site.test/');
  });
  const connects = since(mark, (e) => e.proxy === 'socks5' && e.connect).map((e) => e.connect);
  assert.ok(connects.includes('site.test:80'), JSON.stringify(connects));
  assert.ok(!connects.some((c) => c.startsWith('docs.test')), JSON.stringify(connects));
});

test('a session without a proxy goes direct', async () => {
  const mark = inet.log.length;
  await withSession({}, async (page, session) => {
    const res = await load(page, 'http://site.test/');
    assert.equal(res.headers()['x-via-test-proxy'], undefined);
    assert.equal((await server.api('GET', `/v1/sessions/${session.id}`)).json.proxy, null);
  });
  assert.deepEqual(since(mark, (e) => e.proxy), []);
  assert.ok(since(mark, (e) => e.site === 'GET' && e.path === '/').length >= 1);
});
