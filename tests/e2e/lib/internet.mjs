// A test "internet": a network namespace of its own, reached from the host
// through a veth, with addresses from the documentation ranges (RFC 5737),
// so the default-deny policy needs no exception for it. It serves Debian's
// python3.11-doc HTML docs (python3 -m http.server), the tests' own site,
// DNS and proxies (lib/internet-server.mjs), plus listeners on private and
// link-local addresses that the policy must keep machines away from.
//
// Every name and address here is fixed by the test; the host gets routes to
// the ranges below for as long as the internet exists.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export const DOCS = '203.0.113.10';      // python3.11-doc, port 80
export const SITE = '203.0.113.20';      // the tests' site, port 80
export const HTTP_PROXY = '203.0.113.30';  // port 3128, Basic auth
export const SOCKS_PROXY = '203.0.113.31'; // port 1080, username/password
export const DNS = '203.0.113.53';       // UDP 53
export const HOST_SIDE = '198.51.100.1';
export const INSIDE = '198.51.100.2';
// Listeners the policy must make unreachable (each answers "reachable <addr>").
export const PRIVATE = {
  ten: '10.99.0.1', // ports 8080 and 8081
  cgnat: '100.64.99.1',
  rfc1918b: '172.16.99.1',
  rfc1918c: '192.168.99.1',
  linkLocal: '169.254.99.1',
};
const ROUTED = ['203.0.113.0/24', '10.99.0.0/24', '100.64.99.0/24', '172.16.99.0/24', '192.168.99.0/24', '169.254.99.0/24'];
export const DOCS_DIR = '/usr/share/doc/python3.11/html';

function ip(...args) { return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString(); }

export async function startInternet() {
  if (!existsSync(DOCS_DIR)) throw new Error(`${DOCS_DIR} missing: apt-get install python3.11-doc`);
  const id = randomBytes(3).toString('hex');
  const ns = `kt-inet-${id}`;
  const hostLink = `ktinet${id}`;
  const made = { ns: false, routes: [] };
  let stopping = false;
  const children = [];
  const stop = async () => {
    stopping = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null)
      ? new Promise((r) => c.on('exit', r)) : null));
    for (const r of made.routes) { try { ip('route', 'del', r); } catch { /* gone with the link */ } }
    try { ip('link', 'del', hostLink); } catch { /* already gone */ }
    if (made.ns) { try { ip('netns', 'del', ns); } catch { /* already gone */ } }
  };
  try {
    ip('netns', 'add', ns);
    made.ns = true;
    ip('link', 'add', hostLink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('addr', 'add', `${HOST_SIDE}/24`, 'dev', hostLink);
    ip('link', 'set', hostLink, 'up');
    const inNs = (...a) => ip('-n', ns, ...a);
    inNs('link', 'set', 'lo', 'up');
    inNs('addr', 'add', `${INSIDE}/24`, 'dev', 'eth0');
    for (const a of [DOCS, SITE, HTTP_PROXY, SOCKS_PROXY, DNS, ...Object.values(PRIVATE)]) inNs('addr', 'add', `${a}/32`, 'dev', 'lo');
    inNs('link', 'set', 'eth0', 'up');
    inNs('route', 'add', 'default', 'via', HOST_SIDE);
    for (const r of ROUTED) { ip('route', 'add', r, 'via', INSIDE); made.routes.push(r); }

    // python3 -m http.server, minus its reverse lookup of the bind address
    // (a DNS timeout in a namespace without a resolver).
    const docsServer = 'import functools, http.server, socketserver, sys\n' +
      'class S(http.server.ThreadingHTTPServer):\n' +
      '    def server_bind(self):\n' +
      '        socketserver.TCPServer.server_bind(self)\n' +
      '        self.server_name, self.server_port = sys.argv[1], 80\n' +
      'h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])\n' +
      'S((sys.argv[1], 80), h).serve_forever()\n';
    const docs = spawn('ip', ['netns', 'exec', ns, '/usr/bin/python3', '-c', docsServer, DOCS, DOCS_DIR],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(docs);
    const site = spawn('ip', ['netns', 'exec', ns, process.execPath, join(here, 'internet-server.mjs')],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(site);
    const log = [];
    let buffered = '';
    let ready;
    const readyPromise = new Promise((r) => { ready = r; });
    site.stdout.on('data', (d) => {
      buffered += d;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const entry = JSON.parse(line);
          if (entry.ready) ready(); else log.push(entry);
        } catch { /* not ours */ }
      }
    });
    let siteErr = '';
    site.stderr.on('data', (d) => { siteErr += d; if (process.env.KINDLING_E2E_VERBOSE) process.stderr.write(d); });
    // Dying mid-test takes the site, DNS and proxies with it: say so, with why.
    site.on('exit', (code, signal) => {
      if (!stopping) process.stderr.write(`internet-server exited (code ${code}, signal ${signal}): ${siteErr.slice(-4000)}\n`);
    });
    if (process.env.KINDLING_E2E_VERBOSE) console.error("internet: spawned");
    await Promise.race([readyPromise, new Promise((_, rej) => setTimeout(() => rej(new Error('internet-server did not start: ' + siteErr)), 10000))]);
    if (process.env.KINDLING_E2E_VERBOSE) console.error("internet: site ready");
    // The docs server answers once python is up.
    const deadline = Date.now() + 10000;
    for (;;) {
      try {
        execFileSync('ip', ['netns', 'exec', ns, '/usr/bin/python3', '-c',
          `import urllib.request;urllib.request.urlopen("http://${DOCS}/index.html",timeout=2).read()`], { stdio: 'ignore' });
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error('docs server did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return { ns, hostLink, log, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
