// Real pages over a session's own network: a test "internet" (lib/internet.mjs)
// in its own namespace with RFC 5737 addresses serves Debian's python3.11-doc
// and the tests' site; the session's Chromium reaches it through its veth,
// the host's NAT and the default-deny policy (which needs no exception for
// documentation ranges), with names from the test internet's DNS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
import { startInternet, DNS } from './lib/internet.mjs';
import { decodePng } from './lib/png.mjs';
import { networkTag, networkObjects, assertNoNetworkLeft } from './lib/network-leftovers.mjs';

let inet;
let server;
let tag;
before(async () => {
  inet = await startInternet();
  server = await startServer({ args: ['--dns', DNS, '--pool-min', '1', '--pool-max', '2'] });
  tag = networkTag(server.dataDir);
});
after(async () => {
  await server?.stop({ keepData: true });
  try {
    if (tag) assertNoNetworkLeft(assert, tag);
  } finally {
    await inet?.stop();
  }
});

async function withPage(fn) {
  const session = await server.createSession();
  // The create answer is the same session object GET shows, counters included.
  assert.equal(typeof session.network?.rxBytes, 'number', JSON.stringify(session));
  const browser = await chromium.connectOverCDP(session.cdpUrl);
  try {
    const page = await browser.contexts()[0].newPage();
    await fn(page, session, browser);
  } finally {
    await browser.close();
    await server.release(session.id);
  }
}

test('server reports its network and makes slots on the host', () => {
  assert.match(server.stdout, /network: {3}nat, pool 10\.200\.0\.0\/16, DNS 203\.0\.113\.53/);
  const objects = networkObjects(tag);
  assert.ok(objects.links.length >= 1, JSON.stringify(objects));
  assert.equal(objects.links.length, objects.namespaces.length);
  assert.ok(objects.table && objects.rules > 5);
});

test('Python docs: navigate, follow links, run the JS search', async () => {
  await withPage(async (page) => {
    const res = await page.goto('http://docs.test/index.html');
    assert.equal(res.status(), 200);
    assert.match(await page.title(), /^3\.11\.\d+ Documentation$/);
    // The docs' own CSS applied (Sphinx's classic theme lays the body out).
    assert.ok(await page.evaluate(() => [...document.styleSheets].some((s) => s.href && s.href.includes('_static'))));
    await Promise.all([page.waitForURL(/library\/index\.html$/), page.click('a[href="library/index.html"]')]);
    assert.match(await page.title(), /Python Standard Library/);
    await Promise.all([page.waitForURL(/library\/json\.html$/), page.click('a[href="json.html"]')]);
    assert.match(await page.textContent('h1'), /json/);
    // Sphinx search: JavaScript loads searchindex.js and renders results.
    await page.goto('http://docs.test/search.html?q=urlopen');
    await page.waitForSelector('ul.search li', { timeout: 20000 });
    const results = await page.$$eval('ul.search li a', (as) => as.map((a) => a.getAttribute('href')));
    assert.ok(results.some((h) => h.includes('urllib.request')), results.join(' '));
  });
  assert.ok(inet.log.length > 0);
});

test('test site: cookie login, redirect chain, large image, download; byte counters', async () => {
  await withPage(async (page, session, browser) => {
    await page.goto('http://site.test/');
    await Promise.all([page.waitForURL(/\/login$/), page.click('#login')]);
    await page.fill('#user', 'alice');
    await page.fill('#password', 'wonderland');
    await Promise.all([page.waitForURL(/\/account$/), page.click('#submit')]);
    assert.equal(await page.textContent('#welcome'), 'Welcome, alice');
    const cookies = await browser.contexts()[0].cookies('http://site.test/');
    assert.ok(cookies.some((c) => c.name === 'sid' && c.httpOnly));
    // The cookie is what lets us in: a reload stays on /account.
    await page.reload();
    assert.match(page.url(), /\/account$/);

    const chain = await page.goto('http://site.test/redirect/1');
    assert.match(page.url(), /\/final$/);
    let hops = 0;
    for (let r = chain.request().redirectedFrom(); r; r = r.redirectedFrom()) hops++;
    assert.equal(hops, 4);
    assert.equal(await page.textContent('#done'), '4 redirects followed');

    await page.goto('http://site.test/gallery');
    await page.waitForFunction(() => document.getElementById('big').complete);
    assert.equal(await page.evaluate(() => document.getElementById('big').naturalWidth), 1600);
    const png = await page.evaluate(async () => {
      const b = new Uint8Array(await (await fetch('/big.png')).arrayBuffer());
      return Array.from(b).map((x) => String.fromCharCode(x)).join('');
    });
    const pngBuf = Buffer.from(png, 'latin1');
    assert.equal(decodePng(pngBuf).width, 1600);
    const want = await page.evaluate(async () => (await fetch('/big.png.sha256')).text());
    assert.equal(createHash('sha256').update(pngBuf).digest('hex'), want);

    // A download, seen by Chromium inside the machine (CDP download events).
    const cdp = await browser.newBrowserCDPSession();
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: '/tmp/downloads', eventsEnabled: true });
    const done = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('download did not complete')), 20000);
      const begun = {};
      cdp.on('Browser.downloadWillBegin', (e) => { begun[e.guid] = e; });
      cdp.on('Browser.downloadProgress', (e) => {
        if (e.state === 'completed') { clearTimeout(timer); resolve({ ...e, begin: begun[e.guid] }); }
        if (e.state === 'canceled') { clearTimeout(timer); reject(new Error('download canceled')); }
      });
    });
    await page.goto('http://site.test/');
    await page.click('#download');
    const dl = await done;
    assert.equal(dl.begin.suggestedFilename, 'report.csv');
    assert.equal(dl.begin.url, 'http://site.test/download/report.csv');
    const expected = await page.evaluate(async () => (await fetch('/download/report.csv')).text());
    assert.equal(dl.receivedBytes, Buffer.byteLength(expected));
    assert.equal(dl.totalBytes, Buffer.byteLength(expected));

    const info = await server.api('GET', `/v1/sessions/${session.id}`);
    assert.ok(info.json.network, JSON.stringify(info.json));
    // The 5.8 MB image came in twice; requests went out.
    assert.ok(info.json.network.rxBytes > 2 * pngBuf.length, JSON.stringify(info.json.network));
    assert.ok(info.json.network.txBytes > 1000, JSON.stringify(info.json.network));
  });
  // The site saw the session's requests, NATed from the host side.
  assert.ok(inet.log.some((e) => e.site && e.path === '/account' && e.from === '198.51.100.1'));
});
