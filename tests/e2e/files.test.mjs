// A session's files (issue 9): a download a page triggers lands in the
// session's downloads area with no client setup, is listed with its sha256
// and fetched byte for byte; an upload reaches a file input; names cannot
// leave the directory and links the machine plants are never followed; the
// files go with the session. Playwright, which points downloads at a path
// of its own machine, gets them in the downloads area too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import puppeteer from 'puppeteer-core';
import { chromium } from 'playwright-core';
import { startServer, waitFor } from './lib/server.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const DOWNLOAD_BYTES = 20 * 1024 * 1024;
// The same bytes in the page and here: a cheap deterministic pattern.
function patternBytes(n) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 9)) & 255;
  return b;
}
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function fetchBytes(path) {
  const res = await fetch(server.url + path, { headers: { Authorization: `Bearer ${server.apiKey}` } });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
}

test('a 20 MB download is listed with its sha256 and fetched byte for byte', async () => {
  const session = await server.createSession();
  const browser = await puppeteer.connect({ browserWSEndpoint: session.cdpUrl });
  try {
    const page = await browser.newPage();
    await page.evaluate((n) => {
      const a = new Uint8Array(n);
      for (let i = 0; i < n; i++) a[i] = (i * 31 + (i >>> 9)) & 255;
      const link = document.createElement('a');
      link.href = URL.createObjectURL(new Blob([a]));
      link.download = 'big.bin';
      document.body.appendChild(link);
      link.click();
    }, DOWNLOAD_BYTES);
    const expected = sha256(patternBytes(DOWNLOAD_BYTES));
    let listed;
    await waitFor(async () => {
      const r = await server.api('GET', `/v1/sessions/${session.id}/files`);
      assert.equal(r.status, 200, r.text);
      listed = r.json.files.find((f) => f.name === 'big.bin' && f.complete);
      return Boolean(listed);
    }, { timeoutMs: 30000, what: 'the download to be listed as complete' });
    assert.equal(listed.size, DOWNLOAD_BYTES);
    assert.equal(listed.sha256, expected);
    const got = await fetchBytes(`/v1/sessions/${session.id}/files/big.bin`);
    assert.equal(got.status, 200);
    assert.equal(got.bytes.length, DOWNLOAD_BYTES);
    assert.equal(sha256(got.bytes), expected);
    // The session's events say it happened, once, with the final size.
    const events = (await server.api('GET', `/v1/sessions/${session.id}/events`)).json.events;
    const downloads = events.filter((e) => e.type === 'download');
    assert.equal(downloads.length, 1, JSON.stringify(downloads));
    assert.match(downloads[0].detail, new RegExp(`^big\\.bin \\(${DOWNLOAD_BYTES} bytes\\)`));
  } finally {
    await browser.disconnect();
  }
  assert.equal((await server.release(session.id)).status, 200);
  // Gone with the session.
  assert.equal((await server.api('GET', `/v1/sessions/${session.id}/files`)).status, 409);
});

test('with Playwright, a download lands in the downloads area under its own name and Playwright sees it finish', async () => {
  const session = await server.createSession();
  const browser = await chromium.connectOverCDP(session.cdpUrl);
  try {
    const context = browser.contexts()[0];
    const page = context.pages()[0] || await context.newPage();
    await page.setContent('<a id="a" download="hello.txt" href="data:text/plain,hello%20kindling">get</a>');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#a')]);
    assert.equal(download.suggestedFilename(), 'hello.txt');
    assert.equal(await download.failure(), null, 'Playwright saw the download finish');
    let listed;
    await waitFor(async () => {
      listed = (await server.api('GET', `/v1/sessions/${session.id}/files`)).json.files.find((f) => f.name === 'hello.txt' && f.complete);
      return Boolean(listed);
    }, { timeoutMs: 15000, what: "Playwright's download to be listed" });
    assert.equal((await fetchBytes(`/v1/sessions/${session.id}/files/hello.txt`)).bytes.toString(), 'hello kindling');
  } finally {
    await browser.close();
  }
  await server.release(session.id);
});

test('an upload reaches a file input, and the page sees its size', async () => {
  const session = await server.createSession();
  const content = patternBytes(123457);
  const res = await fetch(`${server.url}/v1/sessions/${session.id}/files?name=report.pdf`, {
    method: 'POST', headers: { Authorization: `Bearer ${server.apiKey}` }, body: content,
  });
  assert.equal(res.status, 201);
  const up = await res.json();
  assert.equal(up.path, '/home/browser/uploads/report.pdf');
  assert.equal(up.size, content.length);
  assert.equal(up.sha256, sha256(content));
  const again = await fetch(`${server.url}/v1/sessions/${session.id}/files?name=report.pdf`, {
    method: 'POST', headers: { Authorization: `Bearer ${server.apiKey}` }, body: 'x',
  });
  assert.equal(again.status, 409, 'an upload never replaces a file');

  const browser = await puppeteer.connect({ browserWSEndpoint: session.cdpUrl });
  try {
    const page = await browser.newPage();
    await page.setContent('<input type="file" id="f">');
    const cdp = await page.createCDPSession();
    const { root } = await cdp.send('DOM.getDocument');
    const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: '#f' });
    await cdp.send('DOM.setFileInputFiles', { nodeId, files: [up.path] });
    const seen = await page.$eval('#f', (e) => ({ name: e.files[0].name, size: e.files[0].size }));
    assert.deepEqual(seen, { name: 'report.pdf', size: content.length });
  } finally {
    await browser.disconnect();
  }
  const events = (await server.api('GET', `/v1/sessions/${session.id}/events`)).json.events.map((e) => e.type);
  assert.ok(events.includes('upload'), `events: ${events}`);
  assert.equal((await server.release(session.id)).status, 200);
});

test('names stay inside the directory, and links the machine plants are not followed', async () => {
  const session = await server.createSession();
  const base = `/v1/sessions/${session.id}/files`;
  // (A bare or encoded '..' never reaches the server: URL parsers resolve it.)
  for (const name of ['..%2F..%2Fetc%2Fpasswd', '%2Fetc%2Fpasswd', 'a%00b']) {
    const r = await fetchBytes(`${base}/${name}`);
    assert.ok(r.status === 400 || r.status === 404, `${name}: ${r.status}`);
    assert.ok(!r.bytes.toString().includes('root:'), `${name} leaked a file`);
  }
  const noName = await server.api('POST', base, 'x');
  assert.equal(noName.status, 400);
  const slash = await fetch(`${server.url}${base}?name=a%2Fb`, {
    method: 'POST', headers: { Authorization: `Bearer ${server.apiKey}` }, body: 'x',
  });
  assert.equal(slash.status, 400);
  assert.equal((await fetchBytes(`${base}/missing.bin`)).status, 404);

  // Play the hostile machine: its browser user, inside its namespaces, puts
  // a link in the downloads area to a file the host can read.
  const asBrowser = (script) => {
    const r = spawnSync('nsenter', ['--target', String(session.machinePid), '--user', '--mount',
      '--setuid', '1000', '--setgid', '1000', '--', 'sh', '-ec', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  asBrowser('ln -s /etc/passwd /home/browser/downloads/evil; printf plain > /home/browser/downloads/plain.txt');
  const listed = (await server.api('GET', base)).json.files.map((f) => f.name);
  assert.deepEqual(listed, ['plain.txt'], 'the link is not listed');
  assert.equal((await fetchBytes(`${base}/evil`)).status, 404);
  assert.equal((await fetchBytes(`${base}/plain.txt`)).bytes.toString(), 'plain');
  // Events: the plain file is reported, the link is not.
  await waitFor(async () => (await server.api('GET', `/v1/sessions/${session.id}/events`)).json.events
    .some((e) => e.type === 'download' && e.detail.startsWith('plain.txt (5 bytes)')), { what: 'a download event' });
  const reported = (await server.api('GET', `/v1/sessions/${session.id}/events`)).json.events
    .filter((e) => e.type === 'download').map((e) => e.detail);
  assert.ok(reported.every((d) => !d.startsWith('evil')), `links are not reported: ${reported}`);
  // And the uploads area swapped for a link to /etc.
  asBrowser('rmdir /home/browser/uploads; ln -s /etc /home/browser/uploads');
  const planted = await fetch(`${server.url}${base}?name=passwd`, {
    method: 'POST', headers: { Authorization: `Bearer ${server.apiKey}` }, body: 'overwritten?',
  });
  assert.equal(planted.status, 409, 'an uploads area replaced by a link is refused');
  assert.equal((await server.release(session.id)).status, 200);
});
