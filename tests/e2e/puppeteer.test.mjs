// Puppeteer connect({browserWSEndpoint: cdpUrl}) through the gateway.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import puppeteer from 'puppeteer-core';
import { startServer } from './lib/server.mjs';
import { exerciseForm } from './lib/form.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

test('Puppeteer drives a session via cdpUrl', async () => {
  const session = await server.createSession();
  const browser = await puppeteer.connect({ browserWSEndpoint: session.cdpUrl });
  try {
    assert.match(await browser.version(), /Chrome|Chromium/);
    const page = await browser.newPage();
    await exerciseForm(page, {
      type: (sel, value) => page.type(sel, value),
      text: (sel) => page.$eval(sel, (e) => e.textContent),
      screenshot: () => page.screenshot({ type: 'png' }),
    });
    await page.close();
  } finally {
    await browser.disconnect();
  }
  assert.equal((await server.api('GET', `/v1/sessions/${session.id}`)).json.status, 'ready');
  assert.equal((await server.release(session.id)).status, 200);
});
