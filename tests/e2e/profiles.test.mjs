// Persistent browser profiles (issue 9): log in on the test site in a
// session that persists its profile, release it, and a new session with the
// profile is still logged in (the site's cookie, localStorage and IndexedDB
// all read back), with Playwright and with Puppeteer. A save cut short by
// kill -9 of the server leaves the previous version; two persisting sessions
// on one profile are refused (409); profiles are encrypted at rest with a
// key; bad ids are 400/404.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import { spawnSync } from 'node:child_process';
import { startServer, waitFor, kindlingBin } from './lib/server.mjs';
import { startInternet, DNS } from './lib/internet.mjs';

let inet;
let server;
const keyDir = mkdtempSync(join(tmpdir(), 'kindling-profile-key-'));
const keyFile = join(keyDir, 'key');
writeFileSync(keyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
const serverArgs = ['--dns', DNS, '--pool-max', '0', '--profile-key-file', keyFile];

before(async () => {
  inet = await startInternet();
  server = await startServer({ args: serverArgs });
});
after(async () => {
  await server?.stop();
  await inet?.stop();
  rmSync(keyDir, { recursive: true, force: true });
});

async function events(id) {
  return (await server.api('GET', `/v1/sessions/${id}/events`)).json?.events ?? [];
}

// Waits for the session's profile save to finish (saved or failed).
async function saveOutcome(id, { timeoutMs = 30000 } = {}) {
  return waitFor(async () => (await events(id)).find((e) => e.type.startsWith('profile_save')),
    { timeoutMs, intervalMs: 100, what: `the profile save of session ${id}` });
}

// Logs in on the test site ("keep me logged in": a persistent cookie) and
// leaves a localStorage and an IndexedDB value on its origin.
async function logInWithPlaywright(session, marker) {
  const browser = await chromium.connectOverCDP(session.cdpUrl);
  try {
    const page = await browser.contexts()[0].newPage();
    await page.goto('http://site.test/login');
    await page.fill('#user', 'alice');
    await page.fill('#password', 'wonderland');
    await page.check('#remember');
    await Promise.all([page.waitForURL(/\/account$/), page.click('#submit')]);
    assert.equal(await page.textContent('#welcome'), 'Welcome, alice');
    await page.evaluate(async (m) => {
      localStorage.setItem('kindling-marker', m);
      await new Promise((resolve, reject) => {
        const open = indexedDB.open('kindling', 1);
        open.onupgradeneeded = () => open.result.createObjectStore('kv');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction('kv', 'readwrite');
          tx.objectStore('kv').put(m, 'marker');
          tx.oncomplete = () => { open.result.close(); resolve(); };
          tx.onerror = () => reject(tx.error);
        };
      });
    }, marker);
  } finally {
    await browser.close();  // connectOverCDP: disconnects, the browser stays up
  }
}

// What a page of the site sees: whether the cookie lets it in, and the two
// storage values.
async function readState(page) {
  await page.goto('http://site.test/account');
  const loggedIn = /\/account$/.test(page.url());
  const values = await page.evaluate(async () => {
    const idb = await new Promise((resolve) => {
      const open = indexedDB.open('kindling', 1);
      open.onupgradeneeded = () => open.result.createObjectStore('kv');
      open.onerror = () => resolve(null);
      open.onsuccess = () => {
        const get = open.result.transaction('kv').objectStore('kv').get('marker');
        get.onsuccess = () => { open.result.close(); resolve(get.result ?? null); };
        get.onerror = () => resolve(null);
      };
    });
    return { local: localStorage.getItem('kindling-marker'), idb };
  });
  return { loggedIn, ...values };
}

async function readWithPlaywright(session) {
  const browser = await chromium.connectOverCDP(session.cdpUrl);
  try {
    const context = browser.contexts()[0];
    const state = await readState(await context.newPage());
    const cookies = await context.cookies('http://site.test/');
    return { ...state, sid: cookies.find((c) => c.name === 'sid') };
  } finally {
    await browser.close();
  }
}

async function newProfile(name = '') {
  const r = await server.api('POST', '/v1/profiles', { name });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

test('Playwright: logged in, released, and a new session with the profile is still logged in', async () => {
  const profile = await newProfile('alice on site.test');
  assert.match(profile.id, /^[0-9a-f]{24}$/);
  assert.equal(profile.generation, 0);
  assert.equal(profile.encrypted, true);

  const first = await server.createSession({ profile: { id: profile.id, persist: true } });
  assert.deepEqual(first.profile, { id: profile.id, persist: true });
  assert.equal(first.start, 'cold');
  const marker = 'pw-' + randomBytes(6).toString('hex');
  await logInWithPlaywright(first, marker);
  assert.equal((await server.release(first.id)).status, 200);
  const saved = await saveOutcome(first.id);
  assert.equal(saved.type, 'profile_saved', saved.detail);
  assert.match(saved.detail, /generation 1, \d+ bytes on disk, encrypted/);
  const info = (await server.api('GET', `/v1/profiles/${profile.id}`)).json;
  assert.equal(info.generation, 1);
  assert.ok(info.sizeBytes > 1000, JSON.stringify(info));

  // Encrypted at rest: neither the cookie's name nor the stored values
  // appear in the file.
  const file = readFileSync(join(server.dataDir, 'profiles', profile.id, 'state.kprof'));
  for (const plain of ['kindling-marker', marker, 'Cookies', 'site.test', 'wonderland'])
    assert.equal(file.indexOf(plain), -1, `'${plain}' appears in the encrypted profile`);

  const second = await server.createSession({ profile: { id: profile.id, persist: false } });
  const state = await readWithPlaywright(second);
  assert.equal(state.loggedIn, true, 'the site cookie still logs us in');
  assert.ok(state.sid?.httpOnly, 'the sid cookie is back');
  assert.equal(state.local, marker, 'localStorage value');
  assert.equal(state.idb, marker, 'IndexedDB value');
  assert.equal((await server.release(second.id)).status, 200);
  // persist: false never saves.
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(!(await events(second.id)).some((e) => e.type.startsWith('profile_save')));
  assert.equal((await server.api('GET', `/v1/profiles/${profile.id}`)).json.generation, 1);

  // A session without the profile starts empty.
  const plain = await server.createSession();
  assert.equal(plain.profile, null);
  const empty = await readWithPlaywright(plain);
  assert.deepEqual([empty.loggedIn, empty.local, empty.idb], [false, null, null]);
  await server.release(plain.id);
});

test('Puppeteer: the login cookie survives a release into the next session', async () => {
  const profile = await newProfile();
  const first = await server.createSession({ profile: { id: profile.id, persist: true } });
  let browser = await puppeteer.connect({ browserWSEndpoint: first.cdpUrl });
  let page = await browser.newPage();
  await page.goto('http://site.test/login');
  await page.type('#user', 'alice');
  await page.type('#password', 'wonderland');
  await page.click('#remember');
  await Promise.all([page.waitForNavigation(), page.click('#submit')]);
  assert.equal(await page.$eval('#welcome', (e) => e.textContent), 'Welcome, alice');
  await page.evaluate(() => localStorage.setItem('kindling-marker', 'puppeteer'));
  // Browser.close from the client ends the session too, and the profile is saved.
  await browser.close();
  const saved = await saveOutcome(first.id);
  assert.equal(saved.type, 'profile_saved', saved.detail);

  const second = await server.createSession({ profile: { id: profile.id, persist: true } });
  browser = await puppeteer.connect({ browserWSEndpoint: second.cdpUrl });
  try {
    page = await browser.newPage();
    await page.goto('http://site.test/account');
    assert.match(page.url(), /\/account$/, 'still logged in');
    assert.equal(await page.$eval('#welcome', (e) => e.textContent), 'Welcome, alice');
    assert.equal(await page.evaluate(() => localStorage.getItem('kindling-marker')), 'puppeteer');
    const cookies = await browser.cookies();
    assert.ok(cookies.some((c) => c.name === 'sid' && c.domain === 'site.test'), JSON.stringify(cookies));
  } finally {
    browser.disconnect();
  }
  await server.release(second.id);
  assert.equal((await saveOutcome(second.id)).type, 'profile_saved');
  assert.equal((await server.api('GET', `/v1/profiles/${profile.id}`)).json.generation, 2);
});

test('a session that reaches its lifetime saves its profile too', async () => {
  const profile = await newProfile();
  const s = await server.createSession({ timeoutSeconds: 4, profile: { id: profile.id, persist: true } });
  await logInWithPlaywright(s, 'timed-out');
  const saved = await saveOutcome(s.id, { timeoutMs: 40000 });
  assert.equal(saved.type, 'profile_saved', saved.detail);
  assert.equal((await server.api('GET', `/v1/sessions/${s.id}`)).json.status, 'expired');
  const next = await server.createSession({ profile: { id: profile.id, persist: false } });
  const state = await readWithPlaywright(next);
  assert.deepEqual([state.loggedIn, state.local, state.idb], [true, 'timed-out', 'timed-out']);
  await server.release(next.id);
});

test('one persisting session per profile: a second is refused with 409, a read-only one may run; delete waits', async () => {
  const profile = await newProfile();
  const owner = await server.createSession({ profile: { id: profile.id, persist: true } });
  const again = await server.api('POST', '/v1/sessions', { profile: { id: profile.id, persist: true } });
  assert.equal(again.status, 409, again.text);
  assert.match(again.json.error.message, new RegExp(`in use by session ${owner.id} with persist: true`));
  const reader = await server.createSession({ profile: { id: profile.id, persist: false } });
  assert.deepEqual(reader.profile, { id: profile.id, persist: false });
  const listed = (await server.api('GET', '/v1/profiles')).json.profiles.find((p) => p.id === profile.id);
  assert.ok([owner.id, reader.id].includes(listed.inUseBy));
  const busy = await server.api('DELETE', `/v1/profiles/${profile.id}`);
  assert.equal(busy.status, 409, busy.text);
  assert.match(busy.json.error.message, /in use by session/);
  await server.release(reader.id);
  await server.release(owner.id);
  await saveOutcome(owner.id);
  let gone;
  await waitFor(async () => {
    gone = await server.api('DELETE', `/v1/profiles/${profile.id}`);
    return gone.status !== 409;
  }, { timeoutMs: 20000, intervalMs: 100, what: 'the profile to be free' });
  assert.equal(gone.status, 200, gone.text);
  assert.equal((await server.api('GET', `/v1/profiles/${profile.id}`)).status, 404);
  assert.ok(!readdirSync(join(server.dataDir, 'profiles')).includes(profile.id));
});

test('bad ids and bodies: 404 for unknown profiles, 400 for bad create options', async () => {
  assert.equal((await server.api('GET', '/v1/profiles/0123456789abcdef01234567')).status, 404);
  // An encoded '/' never reaches the routes: the target itself is refused.
  assert.equal((await server.api('GET', '/v1/profiles/..%2F..%2Fetc')).status, 400);
  assert.equal((await server.api('GET', '/v1/profiles/../../etc')).status, 404);
  assert.equal((await server.api('DELETE', '/v1/profiles/nope')).status, 404);
  const cases = [
    [{ profile: { id: '0123456789abcdef01234567', persist: true } }, /unknown profile '0123456789abcdef01234567'/],
    [{ profile: { id: '../../etc', persist: true } }, /'profile.id' is not a profile id/],
    [{ profile: { persist: true } }, /'profile' needs an 'id'/],
    [{ profile: { id: '0123456789abcdef01234567', persist: 'yes' } }, /'profile.persist' must be true or false/],
    [{ profile: { id: '0123456789abcdef01234567', extra: 1 } }, /unknown field 'profile.extra'/],
    [{ profile: 'abc' }, /'profile' must be an object/],
  ];
  for (const [body, message] of cases) {
    const r = await server.api('POST', '/v1/sessions', body);
    assert.equal(r.status, 400, `${message}: ${r.text}`);
    assert.match(r.json.error.message, message);
  }
  const badName = await server.api('POST', '/v1/profiles', { name: 'a\nb' });
  assert.equal(badName.status, 400);
  const unknownField = await server.api('POST', '/v1/profiles', { owner: 'x' });
  assert.equal(unknownField.status, 400);
  assert.equal((await fetch(`${server.url}/v1/profiles`)).status, 401);
});

test('the CLI creates, lists and deletes a profile and starts a session with it', async () => {
  const cli = (...args) => spawnSync(kindlingBin, [...args, '--server', server.url, '--api-key', server.apiKey],
    { encoding: 'utf8' });
  const made = cli('profile', 'create', '--name', 'from the cli');
  assert.equal(made.status, 0, made.stderr);
  const profile = JSON.parse(made.stdout);
  assert.equal(profile.name, 'from the cli');
  assert.ok(JSON.parse(cli('profile', 'list').stdout).profiles.some((p) => p.id === profile.id));
  const created = cli('session', 'create', '--profile', profile.id, '--persist');
  assert.equal(created.status, 0, created.stderr);
  const session = JSON.parse(created.stdout);
  assert.deepEqual(session.profile, { id: profile.id, persist: true });
  await server.release(session.id);
  assert.equal((await saveOutcome(session.id)).type, 'profile_saved');
  assert.equal(JSON.parse(cli('profile', 'get', profile.id).stdout).generation, 1);
  assert.equal(cli('session', 'create', '--persist').status, 2);
  let del;
  await waitFor(() => { del = cli('profile', 'delete', profile.id); return !/HTTP 409/.test(del.stderr); },
    { timeoutMs: 20000, intervalMs: 100, what: 'the profile to be free' });
  assert.equal(del.status, 0, del.stderr);
  assert.equal(cli('profile', 'get', profile.id).status, 1);
});

test('a save cut short by kill -9 of the server leaves the previous version, which still opens', async () => {
  const profile = await newProfile();
  const first = await server.createSession({ profile: { id: profile.id, persist: true } });
  await logInWithPlaywright(first, 'version-1');
  await server.release(first.id);
  assert.equal((await saveOutcome(first.id)).type, 'profile_saved');
  const before = readFileSync(join(server.dataDir, 'profiles', profile.id, 'state.kprof'));

  // A server whose saves stall after writing the temporary file.
  const dataDir = server.dataDir;
  await server.stop({ keepData: true });
  server = await startServer({ args: serverArgs, dataDir, env: { KINDLING_TEST_PROFILE_SAVE_DELAY_MS: '60000' } });
  const second = await server.createSession({ profile: { id: profile.id, persist: true } });
  const browser = await chromium.connectOverCDP(second.cdpUrl);
  const page = await browser.contexts()[0].newPage();
  await page.goto('http://site.test/account');
  await page.evaluate(() => localStorage.setItem('kindling-marker', 'version-2'));
  await browser.close();
  await server.release(second.id);
  const tmp = join(dataDir, 'profiles', profile.id, 'state.kprof.tmp');
  await waitFor(() => { try { return readFileSync(tmp).length > 0; } catch { return false; } },
    { timeoutMs: 30000, intervalMs: 50, what: 'the save to write its temporary file' });
  server.proc.kill('SIGKILL');
  await server.exited;
  assert.deepEqual(readFileSync(join(dataDir, 'profiles', profile.id, 'state.kprof')), before,
    'the saved version is untouched');

  // Restarted on the same data dir: the leftover is cleaned, version 1 opens.
  server = await startServer({ args: serverArgs, dataDir });
  assert.ok(!readdirSync(join(dataDir, 'profiles', profile.id)).includes('state.kprof.tmp'));
  assert.equal((await server.api('GET', `/v1/profiles/${profile.id}`)).json.generation, 1);
  const third = await server.createSession({ profile: { id: profile.id, persist: false } });
  const state = await readWithPlaywright(third);
  assert.equal(state.loggedIn, true);
  assert.equal(state.local, 'version-1');
  assert.equal(state.idb, 'version-1');
  await server.release(third.id);
});

test('a profile past the size cap is not saved: a clear event, the previous version kept', async () => {
  const dataDir = server.dataDir;
  await server.stop({ keepData: true });
  server = await startServer({ args: [...serverArgs, '--profile-max-mib', '1'], dataDir });
  const profile = await newProfile();
  const s = await server.createSession({ profile: { id: profile.id, persist: true } });
  const browser = await chromium.connectOverCDP(s.cdpUrl);
  const page = await browser.contexts()[0].newPage();
  await page.goto('http://site.test/account');
  // 2 MiB of incompressible data in IndexedDB.
  await page.evaluate(async () => {
    const bytes = new Uint8Array(2 << 20);
    for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
    await new Promise((resolve, reject) => {
      const open = indexedDB.open('big', 1);
      open.onupgradeneeded = () => open.result.createObjectStore('kv');
      open.onsuccess = () => {
        const tx = open.result.transaction('kv', 'readwrite');
        tx.objectStore('kv').put(new Blob([bytes]), 'blob');
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      };
    });
  });
  await browser.close();
  await server.release(s.id);
  const outcome = await saveOutcome(s.id);
  assert.equal(outcome.type, 'profile_save_failed', outcome.detail);
  assert.match(outcome.detail, /larger than the size cap of 1048576 bytes.*previous version is kept/);
  assert.equal((await server.api('GET', `/v1/profiles/${profile.id}`)).json.generation, 0);
});
