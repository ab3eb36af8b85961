// Starts a real `kindling serve` for a test: its own port, data directory and
// API key; stop() releases everything and checks that the server exits.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..', '..');
export const kindlingBin = process.env.KINDLING_BIN || join(repoRoot, 'build', 'src', 'cli', 'kindling');

export async function startServer({ args = [], env = {}, dataDir, apiKey } = {}) {
  dataDir = dataDir || mkdtempSync(join(tmpdir(), 'kindling-e2e-'));
  apiKey = apiKey === undefined ? 'test-' + randomBytes(16).toString('hex') : apiKey;
  const childEnv = { ...process.env, ...env };
  if (apiKey) childEnv.KINDLING_API_KEY = apiKey; else delete childEnv.KINDLING_API_KEY;
  const proc = spawn(kindlingBin, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...args], {
    env: childEnv, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; if (process.env.KINDLING_E2E_VERBOSE) process.stderr.write(d); });
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + stdout + stderr)), 15000);
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = stdout.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolveUrl(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${stdout}${stderr}`)); });
  });
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  const server = {
    url, apiKey, dataDir, proc, exited,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    async api(method, path, body, headers = {}) {
      const h = { ...headers };
      if (apiKey && !('Authorization' in h) && !('X-API-Key' in h)) h.Authorization = `Bearer ${apiKey}`;
      if (body !== undefined && typeof body !== 'string') { body = JSON.stringify(body); h['Content-Type'] = 'application/json'; }
      const res = await fetch(url + path, { method, headers: h, body });
      const text = await res.text();
      let json = null;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      return { status: res.status, headers: res.headers, json, text };
    },
    async createSession(body = {}) {
      const r = await server.api('POST', '/v1/sessions', body);
      if (r.status !== 201) throw new Error(`create failed: ${r.status} ${r.text}`);
      return r.json;
    },
    async release(id) {
      return server.api('DELETE', `/v1/sessions/${id}`);
    },
    async stop({ keepData = false } = {}) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const killer = setTimeout(() => proc.kill('SIGKILL'), 15000);
        await exited;
        clearTimeout(killer);
      }
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
      return exited;
    },
  };
  return server;
}

// Waits until fn() returns a truthy value, polling; throws after timeoutMs.
export async function waitFor(fn, { timeoutMs = 5000, intervalMs = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
