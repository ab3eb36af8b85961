// What a server's network leaves on the host: its links (kn<tag>-*), its
// network namespaces (kindling-<tag>-*), addresses of its pool on host
// links, and its nftables table. The tag is the first 6 hex digits of
// sha256(data dir), as `kindling serve` derives it.
import { readdirSync, realpathSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';

export function networkTag(dataDir) {
  return createHash('sha256').update(realpathSync(dataDir)).digest('hex').slice(0, 6);
}

const list = (dir) => { try { return readdirSync(dir); } catch { return []; } };

export function networkObjects(tag) {
  const links = list('/sys/class/net').filter((n) => n.startsWith(`kn${tag}-`));
  const namespaces = list('/run/netns').filter((n) => n.startsWith(`kindling-${tag}-`));
  const addrs = execFileSync('ip', ['-o', '-4', 'addr', 'show']).toString().split('\n')
    .filter((l) => l.includes(`kn${tag}-`));
  let rules = 0;
  let table = false;
  try {
    const out = execFileSync('nft', ['-a', 'list', 'table', 'inet', `kindling_${tag}`], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    table = true;
    rules = out.split('\n').filter((l) => /# handle \d+$/.test(l) && !/^\s*(table|chain)\b/.test(l)).length;
  } catch { /* no table */ }
  return { links, namespaces, addrs, table, rules };
}

export function assertNoNetworkLeft(assert, tag) {
  const left = networkObjects(tag);
  assert.deepEqual(left, { links: [], namespaces: [], addrs: [], table: false, rules: 0 },
    `network objects left behind: ${JSON.stringify(left)}`);
}
