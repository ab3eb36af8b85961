// Playwright connectOverCDP through the gateway, by the HTTP discovery URL
// and by the websocket URL, plus CDP messages over 10 MB in each direction.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';
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
