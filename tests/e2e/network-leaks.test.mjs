// Create/release cycles leave no network objects behind: slots are reused
// (the number of links never grows past what was live at once), and a stopped
// server leaves zero links, addresses, nftables rules or namespaces, also
// after a crash (kill -9) followed by a restart on the same data directory.
//
// KINDLING_NET_CYCLES sets the number of cycles (default 30, to fit CI on two
// cores; bench/net-leaks.sh runs 500).
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
