// 200 create/release cycles leave no extra process, mount, cgroup, namespace
// or file on the host.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, existsSync } from 'node:fs';
import { startServer, waitFor } from './lib/server.mjs';
import { machineProcesses, mountCount, namespaceInodes, machineCgroups } from './lib/host.mjs';

const CYCLES = Number(process.env.KINDLING_LEAK_CYCLES || 200);
const WORKERS = 2;

let server;
before(async () => { server = await startServer({ args: ['--max-sessions', '8'] }); });
after(async () => { await server?.stop(); });

test(`${CYCLES} create/release cycles leave nothing behind`, async () => {
  // Warm-up cycle so lazily created host state (cgroup parents) exists before counting.
  const warm = await server.createSession();
  await server.release(warm.id);
  await waitFor(() => machineProcesses().length === 0, { timeoutMs: 10000, what: 'warm-up machine gone' });

  const before = { procs: machineProcesses().length, mounts: mountCount(), ns: namespaceInodes(), cgroups: machineCgroups().length };
  let done = 0;
  const failures = [];
  async function worker() {
    while (done < CYCLES) {
      done++;
      try {
        const s = await server.createSession();
        const r = await server.release(s.id);
        if (r.status !== 200) failures.push(`release ${s.id}: ${r.status}`);
      } catch (e) {
        failures.push(e.message);
      }
    }
  }
  const started = Date.now();
  await Promise.all(Array.from({ length: WORKERS }, worker));
  console.log(`${CYCLES} cycles in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.deepEqual(failures, []);

  await waitFor(() => machineProcesses().length === before.procs, { timeoutMs: 15000, what: 'machine processes to exit' });
  await waitFor(() => machineCgroups().length === before.cgroups, { timeoutMs: 10000, what: 'cgroups to be removed' });
  assert.equal(mountCount(), before.mounts, 'host mount table unchanged');
  const nsAfter = namespaceInodes();
  const extra = [...nsAfter].filter((n) => !before.ns.has(n));
  assert.deepEqual(extra, [], 'no namespace outlives its session');
  const machinesDir = `${server.dataDir}/machines`;
  assert.deepEqual(existsSync(machinesDir) ? readdirSync(machinesDir) : [], []);
  const live = await server.api('GET', '/v1/sessions');
  assert.deepEqual(live.json.sessions, []);
  const all = await server.api('GET', '/v1/sessions?all=1');
  assert.ok(all.json.sessions.length >= CYCLES);
  assert.ok(all.json.sessions.every((s) => s.status === 'released'));
});
