// Uploaded Chrome extensions (issue 9): a zipped MV3 extension is uploaded,
// listed and deleted; a session created with it loads it (its content script
// marks every page, its service worker runs) while a session without it does
// not; hostile zips are refused with 400 and a message that says why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync, crc32 } from 'node:zlib';
import { readdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { startServer, kindlingBin } from './lib/server.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

// A zip writer for the test: [{name, data, method (0|8), mode, size, offset}]
// (size and offset let a test lie the way a hostile archive would).
function zip(entries) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const data = Buffer.from(e.data ?? '');
    const method = e.method ?? 8;
    const body = method === 8 ? deflateRawSync(data) : data;
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.size ?? data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4);  // made by unix: mode bits below
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(e.size ?? data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((e.mode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

const MANIFEST = JSON.stringify({
  manifest_version: 3,
  name: 'Kindling page marker',
  version: '1.2.3',
  description: 'marks every page it runs in',
  content_scripts: [{ matches: ['<all_urls>'], js: ['mark.js'], run_at: 'document_start' }],
  background: { service_worker: 'worker.js' },
});
const MARKER = zip([
  { name: 'marker/', data: '', method: 0, mode: 0o40755 },
  { name: 'marker/manifest.json', data: MANIFEST },
  { name: 'marker/mark.js', data: "document.documentElement.dataset.kindlingExt = '1';\n" },
  { name: 'marker/worker.js', data: "self.addEventListener('install', () => {});\n" },
]);

async function upload(body, contentType = 'application/zip') {
  const res = await fetch(`${server.url}/v1/extensions`, {
    method: 'POST', headers: { Authorization: `Bearer ${server.apiKey}`, 'Content-Type': contentType }, body,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

// What a page on a test origin shows: the mark, and the extension's service
// worker if Chromium started one. Pages are served by Playwright's routing
// (the machine has no route to the test's host).
async function visit(session) {
  const browser = await chromium.connectOverCDP(session.cdpHttpUrl);
  try {
    const context = browser.contexts()[0];
    const page = await context.newPage();
    await page.route('http://ext.kindling.test/**', (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>t</title><p>hello</p>' }));
    await page.goto('http://ext.kindling.test/page');
    const mark = await page.evaluate(() => document.documentElement.dataset.kindlingExt ?? null);
    // The worker may start a moment after the page.
    let workers = context.serviceWorkers().map((w) => w.url());
    for (let i = 0; i < 40 && session.extensions.length && workers.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      workers = context.serviceWorkers().map((w) => w.url());
    }
    return { mark, workers };
  } finally {
    await browser.close().catch(() => {});
  }
}

test('an uploaded extension is listed, loaded by the sessions that ask for it, and only by them', async () => {
  const up = await upload(MARKER);
  assert.equal(up.status, 201, up.text);
  const ext = up.json;
  assert.match(ext.id, /^[0-9a-f]{24}$/);
  assert.equal(ext.name, 'Kindling page marker');
  assert.equal(ext.version, '1.2.3');
  assert.equal(ext.manifestVersion, 3);
  assert.equal(ext.fileCount, 3);
  assert.equal((await server.api('GET', `/v1/extensions/${ext.id}`)).json.name, 'Kindling page marker');
  const listed = await server.api('GET', '/v1/extensions');
  assert.equal(listed.status, 200);
  assert.ok(listed.json.extensions.some((e) => e.id === ext.id));

  const withExt = await server.createSession({ extensions: [ext.id] });
  assert.deepEqual(withExt.extensions, [ext.id]);
  assert.equal(withExt.start, 'cold');  // standby browsers run without it
  const plain = await server.createSession();
  assert.deepEqual(plain.extensions, []);

  const seen = await visit(withExt);
  assert.equal(seen.mark, '1', 'the content script ran in the session that loads the extension');
  assert.equal(seen.workers.length, 1, `one extension service worker: ${JSON.stringify(seen.workers)}`);
  assert.match(seen.workers[0], /^chrome-extension:\/\/[a-p]{32}\/worker\.js$/);
  const without = await visit(plain);
  assert.equal(without.mark, null, 'a session without the extension does not run it');
  assert.deepEqual(without.workers, []);

  // In use: not deleted under a running session.
  const busy = await server.api('DELETE', `/v1/extensions/${ext.id}`);
  assert.equal(busy.status, 409, busy.text);
  assert.match(busy.json.error.message, /in use by session/);
  assert.equal((await server.release(withExt.id)).status, 200);
  assert.equal((await server.release(plain.id)).status, 200);
  // The machine is reaped shortly after the release.
  let gone;
  for (let i = 0; i < 100; i++) {
    gone = await server.api('DELETE', `/v1/extensions/${ext.id}`);
    if (gone.status !== 409) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(gone.status, 200, gone.text);
  assert.equal((await server.api('GET', `/v1/extensions/${ext.id}`)).status, 404);
  const unknown = await server.api('POST', '/v1/sessions', { extensions: [ext.id] });
  assert.equal(unknown.status, 400);
  assert.match(unknown.json.error.message, new RegExp(`unknown extension '${ext.id}' in 'extensions'`));
});

test('an extension zip larger than an API body (up to 32 MiB) is taken', async () => {
  // Incompressible bytes, stored: 3 MiB of zip, over the 1 MiB API body limit.
  const big = zip([{ name: 'manifest.json', data: MANIFEST }, { name: 'mark.js', data: 'void 0;' },
    { name: 'worker.js', data: '' }, { name: 'assets/noise.bin', data: randomBytes(3 << 20), method: 0 }]);
  const up = await upload(big);
  assert.equal(up.status, 201, up.text);
  assert.equal(up.json.sizeBytes, MANIFEST.length + 7 + (3 << 20));
  assert.equal((await server.api('DELETE', `/v1/extensions/${up.json.id}`)).status, 200);
});

test('hostile or broken zips are refused with 400 and a clear message', async () => {
  const before = (await server.api('GET', '/v1/extensions')).json.extensions.map((e) => e.id);
  const manifest = { name: 'manifest.json', data: MANIFEST };
  const cases = [
    [zip([manifest, { name: '../escape.js', data: 'x' }]), /leaves the extension's folder/],
    [zip([manifest, { name: '/etc/cron.d/x', data: 'x' }]), /absolute path/],
    [zip([manifest, { name: 'link', data: '/etc/shadow', method: 0, mode: 0o120777 }]), /symbolic link/],
    [zip([{ name: 'readme.txt', data: 'no manifest here' }]), /no manifest\.json/],
    [zip([{ name: 'manifest.json', data: '{"manifest_version": 3' }]), /not valid JSON/],
    [zip([{ name: 'manifest.json', data: '{"manifest_version": 1, "name": "x", "version": "1"}' }]), /must be 3/],
    [zip([{ name: 'manifest.json', data: '{"manifest_version": 2, "name": "x", "version": "1"}' }]), /no longer loads/],
    [zip([manifest, { name: 'manifest.json', data: MANIFEST }]), /appears twice/],
    // 64 MiB of zeros in ~64 KiB: a zip bomb.
    [zip([manifest, { name: 'zeros.bin', data: Buffer.alloc(64 << 20) }]), /zip bomb/],
    // A size that lies: inflation stops at what the directory declares.
    [zip([manifest, { name: 'liar.js', data: 'a'.repeat(100000), size: 10 }]), /declared size/],
    [Buffer.from('this is not a zip archive at all, only text'), /not a zip archive/],
  ];
  for (const [body, message] of cases) {
    const r = await upload(body);
    assert.equal(r.status, 400, `${message}: ${r.text}`);
    assert.equal(r.json.error.code, 'bad_request');
    assert.match(r.json.error.message, message);
  }
  const wrongType = await upload(MARKER, 'application/json');
  assert.equal(wrongType.status, 400);
  assert.match(wrongType.json.error.message, /application\/zip/);
  // Over the upload bound: 413 before anything is parsed.
  const huge = await upload(Buffer.alloc((32 << 20) + 1));
  assert.equal(huge.status, 413, huge.text);
  assert.match(huge.json.error.message, /larger than 33554432 bytes/);
  const noAuth = await fetch(`${server.url}/v1/extensions`);
  assert.equal(noAuth.status, 401);
  // Nothing was stored for any of them.
  assert.deepEqual((await server.api('GET', '/v1/extensions')).json.extensions.map((e) => e.id), before);
  assert.deepEqual(readdirSync(join(server.dataDir, 'extensions')).filter((n) => !before.includes(n)), []);
  const bad = await server.api('POST', '/v1/sessions', { extensions: ['../../etc'] });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /'extensions\[0\]' is not an extension id/);
});

test('the CLI uploads, lists and deletes an extension, and creates a session that loads it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kindling-ext-cli-'));
  const cli = (...args) => spawnSync(kindlingBin, [...args, '--server', server.url, '--api-key', server.apiKey],
    { encoding: 'utf8' });
  try {
    writeFileSync(join(dir, 'marker.zip'), MARKER);
    const up = cli('extension', 'upload', join(dir, 'marker.zip'));
    assert.equal(up.status, 0, up.stderr);
    const ext = JSON.parse(up.stdout);
    assert.equal(ext.name, 'Kindling page marker');
    const list = cli('extension', 'list');
    assert.equal(list.status, 0, list.stderr);
    assert.ok(JSON.parse(list.stdout).extensions.some((e) => e.id === ext.id));
    const created = cli('session', 'create', '--extension', ext.id);
    assert.equal(created.status, 0, created.stderr);
    const session = JSON.parse(created.stdout);
    assert.deepEqual(session.extensions, [ext.id]);
    assert.equal((await visit(session)).mark, '1');
    assert.equal((await server.release(session.id)).status, 200);
    writeFileSync(join(dir, 'bad.zip'), zip([{ name: '../x.js', data: 'x' }]));
    const bad = cli('extension', 'upload', join(dir, 'bad.zip'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /HTTP 400: .*leaves the extension's folder/);
    let del;
    for (let i = 0; i < 100; i++) {
      del = cli('extension', 'delete', ext.id);
      if (!/HTTP 409/.test(del.stderr)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(del.status, 0, del.stderr);
    assert.equal(cli('extension', 'get', ext.id).status, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
