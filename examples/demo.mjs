// The Kindling demo: create a browser session through the API, drive it with
// Playwright over CDP through the gateway, print what Chromium answered and
// how long each step took, then release the session.
//   node examples/demo.mjs --server http://127.0.0.1:8600 --api-key KEY
import { chromium } from 'playwright-core';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    server: { type: 'string', default: process.env.KINDLING_URL || 'http://127.0.0.1:8600' },
    'api-key': { type: 'string', default: process.env.KINDLING_API_KEY || '' },
  },
});
const server = values.server.replace(/\/$/, '');
const headers = { Authorization: `Bearer ${values['api-key']}`, 'Content-Type': 'application/json' };

const t = () => performance.now();
const ms = (a, b) => `${(b - a).toFixed(1)} ms`;

async function api(method, path, body) {
  const res = await fetch(server + path, { method, headers, body: body && JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}: ${json?.error?.message}`);
  return json;
}

const page_html = `<!doctype html><html><head><title>Hello from Kindling</title></head>
<body><h1>It works</h1><p id="ua"></p><script>ua.textContent = navigator.userAgent</script></body></html>`;

// A fresh server is still starting its first standby browser: wait for it
// (up to 30 s), so the demo shows the warm path a running server gives.
for (const deadline = Date.now() + 30000; Date.now() < deadline;) {
  const health = await api('GET', '/healthz');
  if (!health.pool || health.pool.ready > 0) break;
  await new Promise((r) => setTimeout(r, 100));
}

const t0 = t();
const session = await api('POST', '/v1/sessions', { timeoutSeconds: 300 });
const t1 = t();
console.log(`session ${session.id} is ${session.status} (${session.browserVersion}, ` +
  `chromium sandbox ${session.chromiumSandbox ? 'on' : 'OFF'})`);
console.log(`cdpUrl: ${session.cdpUrl.replace(/token=.*/, 'token=…')}`);
let released = false;
try {
  const browser = await chromium.connectOverCDP(session.cdpUrl);
  const t2 = t();
  const page = await browser.contexts()[0].newPage();
  await page.setContent(page_html);
  const title = await page.title();
  const heading = await page.textContent('h1');
  const t3 = t();
  console.log(`page title from Chromium: "${title}" (h1: "${heading}")`);
  await browser.close();
  await api('DELETE', `/v1/sessions/${session.id}`);
  released = true;
  const t4 = t();
  const s = session.timings;
  console.log('timings:');
  console.log(`  create (API call to ready answer)   ${ms(t0, t1)}  [${session.start} start: machine acquired at ` +
    `${s.machineAcquiredMs?.toFixed(1)} ms, ready at ${s.readyMs?.toFixed(1)} ms on the server]`);
  console.log(`  Playwright connectOverCDP          ${ms(t1, t2)}`);
  console.log(`  new page, setContent, read title    ${ms(t2, t3)}`);
  console.log(`  close and release                   ${ms(t3, t4)}`);
  console.log(`  whole lifecycle                     ${ms(t0, t4)}`);
  if (title !== 'Hello from Kindling') throw new Error(`unexpected title ${title}`);
} finally {
  if (!released) await api('DELETE', `/v1/sessions/${session.id}`).catch(() => {});
}
