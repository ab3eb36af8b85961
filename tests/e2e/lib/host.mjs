// What a machine leaves on the host, read straight from /proc and /sys: the
// tests use it to prove that an ended session left nothing behind.
import { readdirSync, readFileSync, existsSync, readlinkSync, realpathSync } from 'node:fs';
import { createHash } from 'node:crypto';

export function pidAlive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

function readOr(path, fallback = '') {
  try { return readFileSync(path, 'utf8'); } catch { return fallback; }
}

export function allPids() {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

export function processInfo(pid) {
  const status = readOr(`/proc/${pid}/status`);
  const uid = Number((status.match(/^Uid:\s+(\d+)/m) || [])[1]);
  const ppid = Number((status.match(/^PPid:\s+(\d+)/m) || [])[1]);
  const cmdline = readOr(`/proc/${pid}/cmdline`).split('\0').filter(Boolean);
  return { pid, uid, ppid, comm: readOr(`/proc/${pid}/comm`).trim(), cmdline };
}

// Processes that belong to machines: agents, Chromium, anything running in a
// machine's uid range.
export function machineProcesses() {
  return allPids().map(processInfo).filter((p) =>
    p.uid >= 1000000 || p.comm === 'kindling-agent' || p.cmdline[0] === '/kindling/agent' ||
    /chromium/.test(p.cmdline[0] || ''));
}

export function descendants(pid) {
  const infos = allPids().map(processInfo);
  const out = [];
  const walk = (p) => { for (const c of infos.filter((i) => i.ppid === p)) { out.push(c); walk(c.pid); } };
  walk(pid);
  return out;
}

// Mount points of the host's mount table (field 5 of mountinfo), one entry
// per mount, so that two readings can be compared as multisets.
export function mountPoints() {
  return readOr('/proc/self/mountinfo').split('\n').filter(Boolean).map((l) => l.split(' ')[4]);
}

// Mounts in `after` that were not in `before` and that belong to the server
// of `dataDir`. The host's mount table is shared with everything else that
// runs on the host (other tests, other servers), so a mount counts as this
// server's when it lies under its data directory or carries its cgroup
// parent's name. Named network namespaces (/run/netns/*) are left out: a
// server keeps its network slots for reuse (made on demand, removed at
// stop), and lib/network-leftovers.mjs checks a server's own slots by name.
export function extraMountsOf(dataDir, before, after) {
  const left = new Map();
  for (const m of before) left.set(m, (left.get(m) || 0) + 1);
  const extra = [];
  for (const m of after) {
    const n = left.get(m) || 0;
    if (n > 0) left.set(m, n - 1); else extra.push(m);
  }
  const dir = realpathSync(dataDir);
  const parent = cgroupParentOf(dataDir);
  return extra.filter((m) => !m.startsWith('/run/netns/'))
    .filter((m) => m === dir || m.startsWith(dir + '/') || m.includes(parent));
}

// Distinct namespaces in use by processes on the host, leaving out those of
// machines that belong to other servers (other data directories) running at
// the same time: `ownParent` is this test's cgroup parent (cgroupParentOf).
export function namespaceInodes(ownParent = null) {
  const set = new Set();
  for (const pid of allPids()) {
    if (ownParent) {
      const cg = readOr(`/proc/${pid}/cgroup`);
      if (cg.includes('/kindling-') && !cg.includes(`/${ownParent}/`)) continue;
    }
    for (const kind of ['user', 'pid', 'mnt', 'net', 'ipc', 'uts', 'cgroup']) {
      try { set.add(readlinkSync(`/proc/${pid}/ns/${kind}`)); } catch { /* gone or not ours */ }
    }
  }
  return set;
}

// Machine cgroup directories under every kindling* parent (one per server
// data directory), v1 or v2.
export function machineCgroups() {
  const out = [];
  const roots = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? ['/sys/fs/cgroup']
    : readdirSync('/sys/fs/cgroup').map((d) => `/sys/fs/cgroup/${d}`);
  for (const root of roots) {
    let parents = [];
    try { parents = readdirSync(root).filter((d) => d.startsWith('kindling')); } catch { continue; }
    for (const parent of parents) {
      const dir = `${root}/${parent}`;
      try {
        for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(`${dir}/${e.name}`);
      } catch { /* not a directory */ }
    }
  }
  return out;
}

// The cgroup parent a server gives the machines of its data directory
// (see src/cli/serve.cpp): "kindling-" + 12 hex digits of sha256(dir).
export function cgroupParentOf(dataDir) {
  return 'kindling-' + createHash('sha256').update(realpathSync(dataDir)).digest('hex').slice(0, 12);
}

// Processes inside the machines of one server, found by their cgroup, so
// that other servers running on the host at the same time do not count.
export function processesOfServer(dataDir) {
  const parent = '/' + cgroupParentOf(dataDir) + '/';
  return allPids().filter((pid) => readOr(`/proc/${pid}/cgroup`).includes(parent));
}
