// Shared pieces of the benchmarks: statistics, the machine's description,
// and a minimal API client.
import { readFileSync } from 'node:fs';
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
