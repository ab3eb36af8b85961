// Session-start benchmark against a live `kindling serve` (issue 4): create
// latency sequential and concurrent, time to the first CDP answer, the whole
// create-connect-navigate-close-release lifecycle next to a cold Chromium
// launched per session, sustained load, and memory per browser. Prints a
// markdown report and writes it to bench/results/.
//   node bench/sessions.mjs --server http://127.0.0.1:8600 --api-key KEY
import { parseArgs } from 'node:util';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { chromium } from 'playwright-core';
import os from 'node:os';
import { stats, fmt, machineDescription, apiClient, sleep, treePssMiB, agentPids, chromiumStartCpuSeconds } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    server: { type: 'string', default: 'http://127.0.0.1:8600' },
    'api-key': { type: 'string', default: process.env.KINDLING_API_KEY || '' },
    sequential: { type: 'string', default: '40' },
    rounds: { type: 'string', default: '3' },
    lifecycle: { type: 'string', default: '20' },
    baseline: { type: 'string', default: '10' },
    'sustained-seconds': { type: 'string', default: '60' },
    rate: { type: 'string', default: '5,1' },  // each rate gets its own sustained run
    out: { type: 'string', default: '' },
    command: { type: 'string', default: '' },
  },
});
const api = apiClient(opt.server, opt['api-key']);
const now = () => performance.now();
const report = [];
const log = (line = '') => { console.log(line); report.push(line); };
const DATA_PAGE = 'data:text/html,<title>bench page</title><h1>hello</h1>';
const CHROMIUM_FLAGS = ['--headless', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

async function health() { return (await api('GET', '/healthz')).json; }
// Lets the standby pool refill and come to rest (no start in flight), so
// each sample measures the path it claims and not a refill beside it.
async function waitForPool(minReady, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = await health();
    if (!h.pool || (h.pool.ready >= Math.min(minReady, h.pool.max) && h.pool.starting === 0)) return h;
    if (Date.now() > deadline) return h;
    await sleep(50);
  }
}

async function create() {
  const t0 = now();
  const r = await api('POST', '/v1/sessions', {});
  const ms = now() - t0;
  if (r.status !== 201) throw new Error(`create: HTTP ${r.status} ${r.text}`);
  return { session: r.json, ms };
}
const release = (id) => api('DELETE', `/v1/sessions/${id}`);

function cdpCall(url, method, params = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('open', () => ws.send(JSON.stringify({ id: 1, method, params })));
    ws.on('message', (m) => { const msg = JSON.parse(m); if (msg.id === 1) { ws.close(); resolve(msg.result); } });
    ws.on('error', reject);
  });
}

function row(label, s, extra = '') {
  log(`| ${label} | ${s.n} | ${fmt(s.p50)} | ${fmt(s.p90)} | ${fmt(s.p99)} | ${fmt(s.max)} | ${extra} |`);
}

log(`# Kindling session-start benchmark, ${new Date().toISOString().slice(0, 10)}`);
log();
log(`Machine: ${machineDescription()}`);
if (opt.command) log(`Command: \`${opt.command}\``);
const h0 = await health();
log(`Server: ${opt.server}, pool ${h0.pool ? `${h0.pool.min}..${h0.pool.max}` : 'off'}`);
log();
log('| measurement (ms) | n | p50 | p90 | p99 | max | notes |');
log('|---|---|---|---|---|---|---|');

// 1. Sequential create latency, pool refilled before each.
{
  const warm = [];
  const all = [];
  const paths = { warm: 0, cold: 0 };
  for (let i = 0; i < Number(opt.sequential); i++) {
    await waitForPool(1);
    const { session, ms } = await create();
    all.push(ms);
    paths[session.start]++;
    if (session.start === 'warm') warm.push(ms);
    await release(session.id);
  }
  row('create, sequential (warm only)', stats(warm));
  row('create, sequential (all)', stats(all), `${paths.warm} warm, ${paths.cold} cold`);
}

// 2. Create latency at concurrency 1, 4, 16: rounds of c simultaneous creates.
for (const c of [1, 4, 16]) {
  const samples = [];
  const paths = { warm: 0, cold: 0 };
  let errors = 0;
  for (let round = 0; round < Number(opt.rounds); round++) {
    await waitForPool(c, 60000);
    const results = await Promise.allSettled(Array.from({ length: c }, () => create()));
    for (const r of results) {
      if (r.status === 'rejected') { errors++; continue; }
      samples.push(r.value.ms);
      paths[r.value.session.start]++;
    }
    await Promise.all(results.filter((r) => r.status === 'fulfilled').map((r) => release(r.value.session.id)));
  }
  row(`create, concurrency ${c}`, stats(samples), `${paths.warm} warm, ${paths.cold} cold, ${errors} errors`);
}

// 3. Create -> websocket -> Browser.getVersion answered.
{
  const samples = [];
  for (let i = 0; i < Number(opt.lifecycle); i++) {
    await waitForPool(1);
    const t0 = now();
    const { session } = await create();
    const version = await cdpCall(session.cdpUrl, 'Browser.getVersion');
    samples.push(now() - t0);
    if (!version.product) throw new Error('no Browser.getVersion answer');
    await release(session.id);
  }
  row('create → first CDP answer', stats(samples));
}

// 4. Whole lifecycle with Playwright, and the same with a cold chromium.launch.
{
  const samples = [];
  for (let i = 0; i < Number(opt.lifecycle); i++) {
    await waitForPool(1);
    const t0 = now();
    const { session } = await create();
    const browser = await chromium.connectOverCDP(session.cdpUrl);
    const page = await browser.contexts()[0].newPage();
    await page.goto(DATA_PAGE);
    if ((await page.title()) !== 'bench page') throw new Error('wrong title');
    await browser.close();
    await release(session.id);
    samples.push(now() - t0);
  }
  row('lifecycle: create, connectOverCDP, goto, title, close, release', stats(samples));
  const base = [];
  for (let i = 0; i < Number(opt.baseline); i++) {
    const t0 = now();
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
    const page = await browser.newPage();
    await page.goto(DATA_PAGE);
    if ((await page.title()) !== 'bench page') throw new Error('wrong title');
    await browser.close();
    base.push(now() - t0);
  }
  row('baseline: Playwright chromium.launch per session, goto, title, close', stats(base), 'cold Chromium, no isolation');
}

// 5. What one browser start costs in CPU: the ceiling on starts per second
// for this host, which no pool can lift when sessions are not reused.
let startCpu;
{
  await waitForPool(100, 60000);
  const samples = Array.from({ length: 5 }, () => chromiumStartCpuSeconds(CHROMIUM_FLAGS) * 1000);
  startCpu = stats(samples);
  row('CPU time of one Chromium start (launch + 2 s settle), ms of CPU', startCpu,
    `ceiling ≈ ${(os.cpus().length / (startCpu.p50 / 1000)).toFixed(1)} starts/s on ${os.cpus().length} cores`);
}

// 6. Sustained load: creates at a fixed rate, each session doing one navigation.
for (const rate of opt.rate.split(',').map(Number)) {
  const seconds = Number(opt['sustained-seconds']);
  await waitForPool(100, 60000);
  const samples = [];
  const paths = { warm: 0, cold: 0 };
  let errors = 0;
  const errorKinds = new Map(); // first line of each distinct error, counted
  const inflight = [];
  const t0 = now();
  for (let i = 0; i < seconds * rate; i++) {
    const due = t0 + (i * 1000) / rate;
    if (due > now()) await sleep(due - now());
    inflight.push((async () => {
      try {
        const { session, ms } = await create();
        samples.push(ms);
        paths[session.start]++;
        // One navigation: a new tab opening the bench page.
        const target = await cdpCall(session.cdpUrl, 'Target.createTarget', { url: DATA_PAGE });
        if (!target || !target.targetId) throw new Error('Target.createTarget did not answer a target');
        await release(session.id);
      } catch (e) {
        errors++;
        const kind = String(e.message).split('\n')[0].slice(0, 120);
        errorKinds.set(kind, (errorKinds.get(kind) || 0) + 1);
      }
    })());
  }
  await Promise.all(inflight);
  const kinds = [...errorKinds].map(([k, n]) => `${n}× ${k.replaceAll('|', '/')}`).join('; ');
  row(`sustained ${rate} creates/s for ${seconds} s (create latency)`, stats(samples),
    `${paths.warm} warm, ${paths.cold} cold, ${errors} errors${kinds ? ': ' + kinds : ''}`);
}

// 7. Memory: PSS of idle standby machines and of an active session.
{
  const h = await waitForPool(100, 60000);
  const { session } = await create();
  const browser = await chromium.connectOverCDP(session.cdpUrl);
  const page = await browser.contexts()[0].newPage();
  await page.goto(DATA_PAGE);
  const active = treePssMiB(session.machinePid);
  const standbyPids = agentPids().filter((pid) => pid !== session.machinePid);
  const standby = standbyPids.map(treePssMiB);
  await browser.close();
  await release(session.id);
  log();
  log(`Memory (PSS of a machine's whole process tree): active session with one page ${fmt(active)} MiB; ` +
    `idle standby browser ${standby.length ? fmt(standby.reduce((a, b) => a + b, 0) / standby.length) : '—'} MiB ` +
    `(mean of ${standby.length}; pool reported ${h.pool ? h.pool.ready : 0} ready)`);
}

log();
const out = opt.out || join(dirname(fileURLToPath(import.meta.url)), 'results',
  `${new Date().toISOString().slice(0, 10)}-sessions.md`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, report.join('\n') + '\n');
console.log(`written to ${out}`);
