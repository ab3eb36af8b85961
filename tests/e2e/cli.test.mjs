// `kindling session create|list|get|delete` against a running server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, kindlingBin } from './lib/server.mjs';
import { processesOfServer } from './lib/host.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

function cli(...args) {
  const r = spawnSync(kindlingBin, ['session', ...args, '--server', server.url, '--api-key', server.apiKey],
    { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr, json: (() => { try { return JSON.parse(r.stdout); } catch { return null; } })() };
}

test('the CLI creates, lists, gets and releases a session', () => {
  const created = cli('create', '--timeout', '120');
  assert.equal(created.code, 0, created.err);
  assert.equal(created.json.status, 'ready');
  assert.equal(created.json.timeoutSeconds, 120);
  assert.match(created.json.cdpUrl, /^ws:\/\/.*\/cdp\?token=/);
  const id = created.json.id;
  const listed = cli('list');
  assert.equal(listed.code, 0);
  assert.ok(listed.json.sessions.some((s) => s.id === id));
  const got = cli('get', id);
  assert.equal(got.json.id, id);
  const deleted = cli('delete', id);
  assert.equal(deleted.code, 0);
  assert.equal(deleted.json.status, 'released');
  const again = cli('delete', id);
  assert.equal(again.code, 1);
  assert.match(again.err, /HTTP 409/);
  const missing = cli('get', 'nope');
  assert.equal(missing.code, 1);
  assert.match(missing.err, /HTTP 404/);
});

test('the CLI creates a session with an identity and a proxy, the password taken from the environment', () => {
  const r = spawnSync(kindlingBin, ['session', 'create', '--viewport', '1111x777', '--user-agent', 'KindlingCli/1.0',
    '--locale', 'de-DE', '--timezone', 'Europe/Berlin', '--proxy', 'http://192.0.2.10:3128', '--proxy-username', 'u1',
    '--proxy-bypass', '*.internal', '--server', server.url, '--api-key', server.apiKey],
  { encoding: 'utf8', env: { ...process.env, KINDLING_PROXY_PASSWORD: 'pw-from-env' } });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.deepEqual(s.identity.viewport, { width: 1111, height: 777 });
  assert.equal(s.identity.userAgent, 'KindlingCli/1.0');
  assert.equal(s.identity.locale, 'de-DE');
  assert.equal(s.identity.timezone, 'Europe/Berlin');
  assert.equal(s.proxy.server, 'http://192.0.2.10:3128');
  assert.equal(s.proxy.authenticated, true);
  assert.deepEqual(s.proxy.bypass, ['.internal']);  // the server's normal form of *.internal
  assert.doesNotMatch(r.stdout, /pw-from-env/, 'the password is never printed');
  assert.equal(cli('delete', s.id).code, 0);
  const bad = cli('create', '--viewport', '1111by777');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--viewport must be WIDTHxHEIGHT/);
});

test('the CLI explains a wrong key and an unreachable server', () => {
  const r = spawnSync(kindlingBin, ['session', 'list', '--server', server.url, '--api-key', 'wrong-key'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /HTTP 401/);
  const down = spawnSync(kindlingBin, ['session', 'list', '--server', 'http://127.0.0.1:1', '--api-key', 'x'], { encoding: 'utf8' });
  assert.equal(down.status, 2);
  assert.match(down.stderr, /cannot reach kindling server/);
});

test('a server whose log readers have gone (closed pipes) keeps serving and stops cleanly', async () => {
  const other = await startServer({ args: ['--pool-max', '0'] });
  // What `kindling serve | head -1` does once head exits: writes to stdout
  // and stderr fail with EPIPE, which must not kill the server.
  other.proc.stdout.destroy();
  other.proc.stderr.destroy();
  for (let i = 0; i < 2; i++) {
    const s = await other.createSession();
    assert.equal(s.status, 'ready');
    assert.equal((await other.release(s.id)).status, 200);
  }
  const exit = await other.stop({ keepData: true });
  assert.equal(exit.code, 0, 'stopped by SIGTERM, cleanly');
  assert.deepEqual(processesOfServer(other.dataDir), []);
  rmSync(other.dataDir, { recursive: true, force: true });
});

test('a mistyped option is named, and the secret after it is never echoed', () => {
  for (const args of [['serve', '--api-keys=s3cret-value'], ['serve', '--api-keys', 's3cret-value'],
    ['session', 'list', 's3cret-value']]) {
    const r = spawnSync(kindlingBin, args, { encoding: 'utf8' });
    assert.notEqual(r.status, 0, args.join(' '));
    assert.doesNotMatch(r.stdout + r.stderr, /s3cret-value/, `secret echoed for: ${args.join(' ')}`);
    assert.match(r.stderr, /unknown option --api-keys|unexpected argument/);
  }
});

test('serve refuses a DNS upstream that machines cannot reach', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'kindling-dns-'));
  const r = spawnSync(kindlingBin, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--dns', '127.0.0.1'],
    { encoding: 'utf8' });
  rmSync(dataDir, { recursive: true, force: true });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--dns 127\.0\.0\.1: machines cannot reach a loopback/);
});
