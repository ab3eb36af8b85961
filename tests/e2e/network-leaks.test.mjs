// Create/release cycles leave no network objects behind: slots are reused
// (the number of links never grows past what was live at once), and a stopped
// server leaves zero links, addresses, nftables rules or namespaces, also
// after a crash (kill -9) followed by a restart on the same data directory.
//
// KINDLING_NET_CYCLES sets the number of cycles (default 30, to fit CI on two
// cores; bench/net-leaks.sh runs 500).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startServer, waitFor } from './lib/server.mjs';
import { networkTag, networkObjects, assertNoNetworkLeft } from './lib/network-leftovers.mjs';

const cycles = Number(process.env.KINDLING_NET_CYCLES || 30);

test(`${cycles} create/release cycles reuse slots and leave nothing after stop`, { timeout: 3600_000 }, async () => {
  const server = await startServer({ args: ['--pool-min', '1', '--pool-max', '2'] });
  const tag = networkTag(server.dataDir);
  let maxLinks = 0;
  const started = Date.now();
  try {
    for (let i = 0; i < cycles; i++) {
      const s = await server.createSession();
      const info = await server.api('GET', `/v1/sessions/${s.id}`);
      assert.ok(info.json.network, 'live session reports network counters');
      assert.equal((await server.release(s.id)).status, 200);
      const objects = networkObjects(tag);
      maxLinks = Math.max(maxLinks, objects.links.length);
      assert.equal(objects.links.length, objects.namespaces.length);
      assert.equal(objects.addrs.length, objects.links.length);
    }
  } finally {
    await server.stop({ keepData: true });
  }
  // At most: the pool (2), the session, one machine being reaped, a refill.
  assert.ok(maxLinks <= 5, `slots grew to ${maxLinks}`);
  assertNoNetworkLeft(assert, tag);
  console.log(`# ${cycles} cycles in ${((Date.now() - started) / 1000).toFixed(1)} s, at most ${maxLinks} slots`);
});

test('after kill -9, a restart on the same data dir reclaims the old network', async () => {
  const first = await startServer({ args: ['--pool-min', '1', '--pool-max', '1'] });
  const tag = networkTag(first.dataDir);
  await first.createSession();
  await waitFor(() => networkObjects(tag).links.length >= 2, { timeoutMs: 20000, what: 'slots in use' });
  first.proc.kill('SIGKILL');
  await first.exited;
  const left = networkObjects(tag);
  assert.ok(left.links.length >= 2 && left.table, 'a crash leaves the network (and its policy) in place');

  const second = await startServer({ dataDir: first.dataDir, args: ['--pool-min', '1', '--pool-max', '1'] });
  try {
    await waitFor(() => networkObjects(tag).links.length <= 3, { timeoutMs: 20000, what: 'reclaim' });
    const s = await second.createSession();
    assert.equal((await second.release(s.id)).status, 200);
  } finally {
    await second.stop({ keepData: true });
  }
  assertNoNetworkLeft(assert, tag);
});

test("a /30 already on a host link (another server's leftover) is skipped, not shared", async () => {
  // Slot 1 of the default pool is 10.200.0.4/30; a link that is not this
  // server's holds its host address, as a crashed server's would.
  execFileSync('ip', ['link', 'add', 'kt-stale', 'type', 'veth', 'peer', 'name', 'kt-stale-peer']);
  try {
    execFileSync('ip', ['addr', 'add', '10.200.0.5/30', 'dev', 'kt-stale']);
    const server = await startServer({ args: ['--pool-min', '1', '--pool-max', '1'] });
    const tag = networkTag(server.dataDir);
    try {
      const s = await server.createSession();
      assert.equal((await server.release(s.id)).status, 200);
      const addrs = networkObjects(tag).addrs;
      assert.ok(addrs.length >= 1, 'the server made slots');
      assert.deepEqual(addrs.filter((l) => l.includes(' 10.200.0.5/30')), [], `slot 1 was skipped: ${addrs}`);
      assert.match(server.stderr + server.stdout, /10\.200\.0\.4\/30 is already on a host link/);
    } finally {
      await server.stop({ keepData: true });
    }
    assertNoNetworkLeft(assert, tag);
  } finally {
    execFileSync('ip', ['link', 'del', 'kt-stale']);
  }
});
