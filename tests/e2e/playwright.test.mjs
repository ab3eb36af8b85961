// Playwright connectOverCDP through the gateway, by the HTTP discovery URL
// and by the websocket URL, plus CDP messages over 10 MB in each direction.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { startServer, waitFor } from './lib/server.mjs';
import { exerciseForm } from './lib/form.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

for (const via of ['cdpHttpUrl', 'cdpUrl']) {
  test(`Playwright drives a session via ${via}`, async () => {
    const session = await server.createSession();
    assert.equal(session.status, 'ready');
    assert.match(session[via], via === 'cdpUrl' ? /^ws:\/\// : /^http:\/\//);
    const browser = await chromium.connectOverCDP(session[via]);
    try {
      const context = browser.contexts()[0];
      const page = await context.newPage();
      await exerciseForm(page, {
        type: (sel, value) => page.locator(sel).pressSequentially(value),
        text: (sel) => page.textContent(sel),
        screenshot: () => page.screenshot(),
      });
      await page.close();
    } finally {
      await browser.close();
    }
    // A client disconnect does not end the session.
    const after = await server.api('GET', `/v1/sessions/${session.id}`);
    assert.equal(after.json.status, 'ready');
    const released = await server.release(session.id);
    assert.equal(released.status, 200);
    assert.equal(released.json.status, 'released');
  });
}

test('CDP messages over 10 MB pass the proxy intact in both directions', async () => {
  const session = await server.createSession();
  const browser = await chromium.connectOverCDP(session.cdpUrl);
  try {
    const page = await browser.contexts()[0].newPage();
    // Browser -> client: an 11 MiB string result.
    const size = 11 * 1024 * 1024;
    const big = await page.evaluate((n) => {
      let s = '';
      for (let i = 0; s.length < n; i++) s += i.toString(36) + ',';
      return s.slice(0, n);
    }, size);
    assert.equal(big.length, size);
    let expect = '';
    for (let i = 0; expect.length < size; i++) expect += i.toString(36) + ',';
    assert.equal(createHash('sha256').update(big).digest('hex'), createHash('sha256').update(expect.slice(0, size)).digest('hex'));
    // Client -> browser: an 11 MiB argument, checksummed inside the page
    // (FNV-1a over every character; about:blank has no crypto.subtle).
    const payload = randomBytes(size * 3 / 4).toString('base64');
    const fnv = (s) => {
      let h = 0x811c9dc5;
      for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
      return `${s.length}:${h}`;
    };
    const inPage = await page.evaluate(`(${fnv.toString()})(${JSON.stringify(payload)})`);
    assert.equal(payload.length, size);
    assert.equal(inPage, fnv(payload));
  } finally {
    await browser.close();
    await server.release(session.id);
  }
});

test('a client that disconnects and reconnects finds its tabs, cookies and page state', async () => {
  const session = await server.createSession();
  try {
    let browser = await chromium.connectOverCDP(session.cdpUrl);
    let context = browser.contexts()[0];
    const page = await context.newPage();
    await page.goto('data:text/html,<title>kept</title><input id="q">');
    await page.fill('#q', 'typed before the disconnect');
    await page.evaluate(() => { window.kept = 42; });
    await context.addCookies([{ name: 'sid', value: 'abc123', url: 'https://reconnect.example' }]);
    // Drop the connection without closing anything in the browser.
    await browser.close();
    await waitFor(async () => (await server.api('GET', `/v1/sessions/${session.id}/events`)).json.events
      .some((e) => e.type === 'disconnected'), { what: 'the gateway to see the disconnect' });
    assert.equal((await server.api('GET', `/v1/sessions/${session.id}`)).json.status, 'ready');

    browser = await chromium.connectOverCDP(session.cdpUrl);
    try {
      context = browser.contexts()[0];
      const again = context.pages().find((p) => p.url().startsWith('data:text/html'));
      assert.ok(again, `tab kept: ${context.pages().map((p) => p.url())}`);
      assert.equal(await again.title(), 'kept');
      assert.equal(await again.inputValue('#q'), 'typed before the disconnect');
      assert.equal(await again.evaluate(() => window.kept), 42);
      const cookies = await context.cookies('https://reconnect.example');
      assert.deepEqual(cookies.map((c) => [c.name, c.value]), [['sid', 'abc123']]);
    } finally {
      await browser.close();
    }
    const types = async () => (await server.api('GET', `/v1/sessions/${session.id}/events`)).json.events.map((e) => e.type);
    await waitFor(async () => (await types()).length >= 6, { what: 'the second disconnect' });
    assert.deepEqual(await types(), ['created', 'ready', 'connected', 'disconnected', 'connected', 'disconnected']);
  } finally {
    await server.release(session.id);
  }
});
