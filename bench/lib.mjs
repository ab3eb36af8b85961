// Shared pieces of the benchmarks: statistics, the machine's description,
// and a minimal API client.
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => (s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN);
  return { n: s.length, p50: q(50), p90: q(90), p99: q(99), max: s.length ? s[s.length - 1] : NaN };
}

export const fmt = (v) => (Number.isFinite(v) ? v.toFixed(1) : '—');

export function machineDescription() {
  const cpu = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] || 'unknown CPU';
  let chromium = '';
  try { chromium = execFileSync('/usr/bin/chromium', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { /* absent */ }
  return `${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()}, ` +
    `node ${process.version}${chromium ? ', ' + chromium : ''}`;
}

export function apiClient(server, apiKey) {
  const headers = { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' };
  return async function api(method, path, body) {
    const res = await fetch(server + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, json, text };
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Proportional set size of a process tree, in MiB (needs root for other users' processes).
export function treePssMiB(rootPid) {
  const pids = [rootPid];
  const all = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
  for (let i = 0; i < pids.length; i++) for (const [pid, ppid] of all) if (ppid === pids[i]) pids.push(pid);
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m);
      if (m) kb += Number(m[1]);
    } catch { /* exited */ }
  }
  return kb / 1024;
}

// Host pids of every machine's root process (kindling-agent as PID 1).
export function agentPids() {
  return execFileSync('ps', ['-e', '-o', 'pid=,args='], { encoding: 'utf8' }).trim().split('\n')
    .map((l) => l.trim().match(/^(\d+)\s+(.*)$/)).filter((m) => m && m[2].startsWith('/kindling/agent '))
    .map((m) => Number(m[1]));
}

// CPU seconds (user + system, every process of the tree) one Chromium spends
// from launch until `settleMs` after its DevTools endpoint is up: the cost of
// one browser start, which bounds how many starts per second a host can make
// whatever the pool does. Counted by a cgroup of its own (v1 cpuacct or v2
// cpu.stat), since Chromium does not wait for all of its children on exit.
export function chromiumStartCpuSeconds(flags, settleMs = 2000) {
  const v1 = '/sys/fs/cgroup/cpuacct';
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
  const base = existsSync(`${v1}/cpuacct.usage`) ? v1 : v2;
  const usage = base === v1 ? 'echo $(( $(cat $cg/cpuacct.usage) / 1000 ))'
    : "awk '/^usage_usec/{print $2}' $cg/cpu.stat";
  const script = `
    set -e
    cg=${base}/kindling-bench-$$; mkdir $cg
    dir=$(mktemp -d); log=$dir.log
    bash -c "echo \\$\\$ > $cg/cgroup.procs; exec /usr/bin/chromium ${flags.join(' ')} --no-sandbox --user-data-dir=$dir --remote-debugging-port=0 about:blank" 2>$log &
    pid=$!
    for i in $(seq 600); do grep -q 'DevTools listening' $log && break; sleep 0.01; done
    sleep ${settleMs / 1000}
    used=$(${usage})
    kill -TERM $pid; wait $pid || true
    for i in $(seq 50); do [ -z "$(cat $cg/cgroup.procs)" ] && break; sleep 0.1; done
    for p in $(cat $cg/cgroup.procs); do kill -9 $p 2>/dev/null || true; done
    sleep 0.1; rmdir $cg; rm -rf $dir $log
    echo $used`;
  return Number(execFileSync('bash', ['-c', script], { encoding: 'utf8' }).trim().split('\n').pop()) / 1e6;
}
