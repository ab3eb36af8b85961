// Create/release cycles leave no extra process, mount, cgroup, namespace or
// file on the host: 200 cold cycles counted while the server runs, and warm
// cycles through the standby pool counted after the server has stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, existsSync } from 'node:fs';
import { startServer, waitFor } from './lib/server.mjs';
import { mountPoints, extraMountsOf, namespaceInodes, machineCgroups, processesOfServer, cgroupParentOf } from './lib/host.mjs';
import { networkTag, assertNoNetworkLeft } from './lib/network-leftovers.mjs';

const COLD_CYCLES = Number(process.env.KINDLING_LEAK_CYCLES || 200);
const WARM_CYCLES = Math.ceil(COLD_CYCLES / 2);

function hostState(ownParent) {
  return { mounts: mountPoints(), ns: namespaceInodes(ownParent) };
}

async function runCycles(server, cycles, workers, beforeCycle = async () => {}) {
  let started = 0;
  const failures = [];
  const starts = { warm: 0, cold: 0 };
  async function worker() {
    while (started < cycles) {
      const cycle = started++;
      try {
        await beforeCycle(cycle);
        const s = await server.createSession();
        starts[s.start]++;
        const r = await server.release(s.id);
        if (r.status !== 200) failures.push(`release ${s.id}: ${r.status}`);
      } catch (e) {
        failures.push(e.message);
      }
    }
  }
  const t0 = Date.now();
  await Promise.all(Array.from({ length: workers }, worker));
  console.log(`${cycles} cycles in ${((Date.now() - t0) / 1000).toFixed(1)} s (${starts.warm} warm, ${starts.cold} cold)`);
  assert.deepEqual(failures, []);
  return starts;
}

function assertNothingExtra(dataDir, before, after, what) {
  assert.deepEqual(extraMountsOf(dataDir, before.mounts, after.mounts), [], `${what}: a mount outlived its session`);
  const extra = [...after.ns].filter((n) => !before.ns.has(n));
  assert.deepEqual(extra, [], `${what}: a namespace outlived its session`);
}

test(`${COLD_CYCLES} cold create/release cycles leave nothing behind`, async () => {
  const server = await startServer({ args: ['--pool-max', '0'] });
  try {
    // One cycle first, so lazily created host state (cgroup parents) exists before counting.
    const warmup = await server.createSession();
    await server.release(warmup.id);
    await waitFor(() => processesOfServer(server.dataDir).length === 0, { timeoutMs: 10000, what: 'warm-up machine gone' });
    const parent = cgroupParentOf(server.dataDir);
    const before = hostState(parent);
    await runCycles(server, COLD_CYCLES, 2);
    await waitFor(() => processesOfServer(server.dataDir).length === 0, { timeoutMs: 15000, what: 'machine processes to exit' });
    await waitFor(() => machineCgroups().filter((c) => c.includes(`/${parent}/`)).length === 0, { timeoutMs: 10000, what: 'cgroups removed' });
    assertNothingExtra(server.dataDir, before, hostState(parent), 'cold cycles');
    assert.deepEqual(readdirSync(`${server.dataDir}/machines`).filter((n) => !n.startsWith('.')), []);
    assert.deepEqual((await server.api('GET', '/v1/sessions')).json.sessions, []);
    const all = (await server.api('GET', '/v1/sessions?all=1')).json.sessions;
    assert.ok(all.length >= COLD_CYCLES);
    assert.ok(all.every((s) => s.status === 'released'));
  } finally {
    await server.stop();
  }
});

test(`${WARM_CYCLES} warm cycles through the standby pool leave nothing once the server stops`, async () => {
  const server = await startServer({ args: ['--pool-min', '2', '--pool-max', '4'] });
  const dataDir = server.dataDir;
  const parent = cgroupParentOf(dataDir);
  const before = hostState(parent);
  try {
    // Flat out, create/release outruns the pool's starts and every create
    // queues for a starting standby; so every tenth cycle first waits for a
    // ready one, and those takes are warm whatever this host's speed.
    const paced = async (cycle) => {
      if (cycle % 10) return;
      await waitFor(async () => (await server.api('GET', '/healthz')).json.pool.ready >= 1,
        { timeoutMs: 30000, what: 'a ready standby' });
    };
    const starts = await runCycles(server, WARM_CYCLES, 1, paced);
    assert.ok(starts.warm >= Math.ceil(WARM_CYCLES / 10), `every paced cycle took a ready standby: ${starts.warm} warm`);
  } finally {
    const exit = await server.stop({ keepData: true });
    assert.equal(exit.code, 0, 'server stops cleanly');
  }
  assert.deepEqual(processesOfServer(dataDir), [], 'no machine process outlives the server');
  assert.deepEqual(machineCgroups().filter((c) => c.includes(`/${parent}/`)), [], 'no machine cgroup outlives the server');
  assertNothingExtra(dataDir, before, hostState(parent), 'warm cycles');
  assertNoNetworkLeft(assert, networkTag(dataDir));
  assert.deepEqual(existsSync(`${dataDir}/machines`) ? readdirSync(`${dataDir}/machines`).filter((n) => !n.startsWith('.')) : [], []);
});
