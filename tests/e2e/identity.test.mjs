// Session identity (viewport, user agent, locale, timezone) on warm and cold
// sessions, with Playwright connectOverCDP and Puppeteer connect, checked in
// the first page, a new tab and a popup opened by window.open. Pages come
// from a browser-level Fetch interception (the machine has no route to the
// host), which also shows the Accept-Language header each request carried.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import { startServer, waitFor } from './lib/server.mjs';

const IDENTITY = {
  viewport: { width: 1234, height: 567 },
  userAgent: 'KindlingIdentityTest/1.0 (X11; Linux x86_64)',
  locale: 'de-DE',
  // No daylight saving time: the offset does not depend on the test's date.
  timezone: 'Asia/Tokyo',
};
const ORIGIN = 'http://identity.kindling.test';

// What a page reports about itself; also run by each page's inline script.
function probe() {
  const intl = Intl.DateTimeFormat().resolvedOptions();
  return {
    atParse: window.atParse,
    width: window.innerWidth,
    height: window.innerHeight,
    userAgent: navigator.userAgent,
    language: navigator.language,
    languages: [...navigator.languages],
    timeZone: intl.timeZone,
    intlLocale: intl.locale,
    offset: new Date().getTimezoneOffset(),
  };
}

// Serves ORIGIN from a browser-level CDP session and records the
// Accept-Language header of every document request by path.
async function serveTestOrigin(session) {
  const acceptLanguage = new Map();
  session.on('Fetch.requestPaused', (e) => {
    const path = new URL(e.request.url).pathname;
    const header = Object.entries(e.request.headers).find(([k]) => k.toLowerCase() === 'accept-language');
    acceptLanguage.set(path, header ? header[1] : null);
    // The inline script records what the document saw while it was parsed:
    // a page must have its identity before any of its script runs.
    const body = `<!doctype html><title>${path}</title><script>window.atParse = (${probe})();</script><p>${path}</p>`;
    session.send('Fetch.fulfillRequest', {
      requestId: e.requestId,
      responseCode: 200,
      responseHeaders: [{ name: 'Content-Type', value: 'text/html; charset=utf-8' }],
      body: Buffer.from(body).toString('base64'),
    }).catch(() => {});
  });
  await session.send('Fetch.enable', { patterns: [{ urlPattern: `${ORIGIN}/*`, requestStage: 'Request' }] });
  return acceptLanguage;
}

function assertIdentity(where, seen, acceptLanguage) {
  const { atParse, ...now } = seen;
  assert.ok(atParse, `${where}: the inline script ran`);
  const { atParse: _, ...whileParsing } = atParse;
  assert.deepEqual(whileParsing, now, `${where}: the same identity while parsing`);
  assert.equal(seen.width, IDENTITY.viewport.width, `${where}: innerWidth`);
  assert.equal(seen.height, IDENTITY.viewport.height, `${where}: innerHeight`);
  assert.equal(seen.userAgent, IDENTITY.userAgent, `${where}: navigator.userAgent`);
  assert.equal(seen.language, IDENTITY.locale, `${where}: navigator.language`);
  assert.equal(seen.languages[0], IDENTITY.locale, `${where}: navigator.languages`);
  assert.equal(seen.intlLocale, IDENTITY.locale, `${where}: Intl locale`);
  assert.equal(seen.timeZone, IDENTITY.timezone, `${where}: Intl time zone`);
  assert.equal(seen.offset, -540, `${where}: getTimezoneOffset`);
  assert.ok(acceptLanguage, `${where}: the request carried Accept-Language`);
  assert.match(acceptLanguage, /^de-DE\b/, `${where}: Accept-Language`);
}

// The three places every client opens pages, per client library.
const clients = {
  async playwright(session) {
    const browser = await chromium.connectOverCDP(session.cdpUrl);
    try {
      const cdp = await browser.newBrowserCDPSession();
      const acceptLanguage = await serveTestOrigin(cdp);
      const context = browser.contexts()[0];
      const first = context.pages()[0] || (await context.newPage());
      await first.goto(`${ORIGIN}/first`);
      const results = { first: await first.evaluate(probe) };
      const tab = await context.newPage();
      await tab.goto(`${ORIGIN}/tab`);
      results.tab = await tab.evaluate(probe);
      const [popup] = await Promise.all([
        first.waitForEvent('popup'),
        first.evaluate((url) => { window.open(url); }, `${ORIGIN}/popup`),
      ]);
      await popup.waitForURL(`${ORIGIN}/popup`);
      await popup.waitForLoadState('load');
      results.popup = await popup.evaluate(probe);
      return { results, acceptLanguage };
    } finally {
      await browser.close();
    }
  },
  async puppeteer(session) {
    // defaultViewport null: Puppeteer would otherwise force 800x600 itself.
    const browser = await puppeteer.connect({ browserWSEndpoint: session.cdpUrl, defaultViewport: null });
    try {
      const cdp = await browser.target().createCDPSession();
      const acceptLanguage = await serveTestOrigin(cdp);
      const first = (await browser.pages())[0] || (await browser.newPage());
      await first.goto(`${ORIGIN}/first`);
      const results = { first: await first.evaluate(probe) };
      const tab = await browser.newPage();
      await tab.goto(`${ORIGIN}/tab`);
      results.tab = await tab.evaluate(probe);
      const popupTarget = browser.waitForTarget((t) => t.url() === `${ORIGIN}/popup`);
      await first.evaluate((url) => { window.open(url); }, `${ORIGIN}/popup`);
      const popup = await (await popupTarget).page();
      await popup.waitForFunction(() => document.readyState === 'complete' && location.pathname === '/popup');
      results.popup = await popup.evaluate(probe);
      return { results, acceptLanguage };
    } finally {
      await browser.disconnect();
    }
  },
};

async function waitForStandby(server) {
  await waitFor(async () => (await server.api('GET', '/healthz')).json?.pool?.ready > 0,
    { timeoutMs: 60000, what: 'a standby browser in the pool' });
}

for (const start of ['warm', 'cold']) {
  describe(`${start} sessions`, () => {
    let server;
    before(async () => {
      server = await startServer({ args: start === 'warm' ? ['--pool-min', '1', '--pool-max', '2'] : ['--pool-max', '0'] });
    });
    after(async () => { await server?.stop(); });

    for (const client of Object.keys(clients)) {
      test(`${client}: identity holds in the first page, a new tab and a popup (${start})`, async () => {
        if (start === 'warm') await waitForStandby(server);
        const session = await server.createSession(IDENTITY);
        try {
          assert.equal(session.start, start);
          assert.deepEqual(session.identity, IDENTITY);
          assert.equal(typeof session.timings.identityAppliedMs, 'number');
          const { results, acceptLanguage } = await clients[client](session);
          assertIdentity('first page', results.first, acceptLanguage.get('/first'));
          assertIdentity('new tab', results.tab, acceptLanguage.get('/tab'));
          assertIdentity('popup', results.popup, acceptLanguage.get('/popup'));
          assert.deepEqual((await server.api('GET', `/v1/sessions/${session.id}`)).json.identity, IDENTITY);
        } finally {
          await server.release(session.id);
        }
      });
    }

    test(`a time zone Chromium does not know fails the create with 400 (${start})`, async () => {
      if (start === 'warm') await waitForStandby(server);
      const r = await server.api('POST', '/v1/sessions', { timezone: 'Mars/Olympus_Mons' });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.code, 'bad_request');
      assert.match(r.json.error.message, /timezone 'Mars\/Olympus_Mons'/);
      // The failed session's machine is gone and nothing is left live.
      const sessions = await server.api('GET', '/v1/sessions?all=1');
      const failed = (sessions.json.sessions || []).filter((s) => s.identity?.timezone === 'Mars/Olympus_Mons');
      for (const s of failed) assert.equal(s.status, 'failed');
      await waitFor(async () => (await server.api('GET', '/healthz')).json.liveSessions === 0,
        { timeoutMs: 15000, what: 'no live sessions' });
    });
  });
}

describe('validation and defaults', () => {
  let server;
  before(async () => { server = await startServer({ args: ['--pool-min', '1', '--pool-max', '1'] }); });
  after(async () => { await server?.stop(); });

  test('invalid identity values are refused with 400 before any machine is used', async () => {
    const bad = [
      { viewport: { width: 99, height: 600 } },
      { viewport: { width: 800, height: 10001 } },
      { viewport: { width: 800 } },
      { viewport: { width: '800', height: 600 } },
      { userAgent: '' },
      { userAgent: 'a'.repeat(1025) },
      { userAgent: 'evil\r\nX-Injected: 1' },
      { locale: 'german' },
      { locale: 'de_DE' },
      { timezone: '../../etc/passwd' },
      { timezone: 42 },
      { identity: { locale: 'de' } },
    ];
    for (const body of bad) {
      const r = await server.api('POST', '/v1/sessions', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.status} ${r.text}`);
      assert.equal(r.json.error.code, 'bad_request');
    }
    assert.equal((await server.api('GET', '/healthz')).json.liveSessions, 0);
  });

  test('a session without identity options keeps Chromium\'s defaults', async () => {
    await waitForStandby(server);
    const session = await server.createSession();
    try {
      assert.deepEqual(session.identity, {});
      const browser = await chromium.connectOverCDP(session.cdpUrl);
      try {
        const page = await browser.contexts()[0].newPage();
        const seen = await page.evaluate(probe);
        assert.match(seen.userAgent, /Chrome\//);
        assert.notEqual(seen.userAgent, IDENTITY.userAgent);
        assert.notEqual(seen.timeZone, IDENTITY.timezone);
        assert.notEqual(seen.width, IDENTITY.viewport.width);
        assert.notEqual(seen.language, IDENTITY.locale);
      } finally {
        await browser.close();
      }
    } finally {
      await server.release(session.id);
    }
  });
});
