// Runs inside the test internet's network namespace (lib/internet.mjs): the
// tests' own site, a DNS server, the private listeners the policy must keep
// machines away from, and two upstream proxies. Every request is logged to
// stdout as one JSON line; {"ready":true} once everything listens.
import http from 'node:http';
import net from 'node:net';
import dgram from 'node:dgram';
import { createHash, createCipheriv } from 'node:crypto';
import { deflateSync, crc32 } from 'node:zlib';
import { httpProxy, socksProxy } from './upstream-proxies.mjs';

const SITE = '203.0.113.20';
const DOCS = '203.0.113.10';
const DNS = '203.0.113.53';
const HTTP_PROXY = '203.0.113.30';
const SOCKS_PROXY = '203.0.113.31';
const PRIVATE = ['10.99.0.1', '100.64.99.1', '172.16.99.1', '192.168.99.1', '169.254.99.1'];

const log = (entry) => process.stdout.write(JSON.stringify({ t: Date.now(), ...entry }) + '\n');

// One connection's error must not take the whole internet down mid-test
// (a released machine resets its connections at any point): it is logged,
// with its stack, where the tests can see it.
process.on('uncaughtException', (e) => log({ serverError: String(e && e.stack || e) }));

// ------------------------------------------------------------ DNS
const NAMES = {
  'docs.test': DOCS,
  'site.test': SITE,
  'private.test': '10.99.0.1',
  'metadata.test': '169.254.169.254',
  'loopback.test': '127.0.0.1',
  'linklocal.test': '169.254.99.1',
};

function dnsAnswer(msg) {
  if (msg.length < 12) return null;
  let off = 12;
  const labels = [];
  while (off < msg.length && msg[off] !== 0) {
    const len = msg[off];
    if (len > 63 || off + 1 + len > msg.length) return null;
    labels.push(msg.toString('latin1', off + 1, off + 1 + len));
    off += 1 + len;
  }
  off += 1;
  if (off + 4 > msg.length) return null;
  const qtype = msg.readUInt16BE(off);
  const question = msg.subarray(12, off + 4);
  const name = labels.join('.').toLowerCase();
  const addr = NAMES[name];
  log({ dns: name, qtype });
  const header = Buffer.alloc(12);
  msg.copy(header, 0, 0, 2);
  header.writeUInt16BE(addr ? 0x8180 : 0x8183, 2);
  header.writeUInt16BE(1, 4);
  const answers = [];
  if (addr && (qtype === 1 || qtype === 255)) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(1, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(5, 6);
    rr.writeUInt16BE(4, 10);
    addr.split('.').forEach((p, i) => { rr[12 + i] = Number(p); });
    answers.push(rr);
  }
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, question, ...answers]);
}

// ------------------------------------------------------------ site content
function makePng(width, height) {
  // Deterministic noise (AES-CTR of zeros), so the image does not compress.
  const noise = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0))
    .update(Buffer.alloc(width * 3 * height));
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) noise.copy(raw, y * (width * 3 + 1) + 1, y * width * 3, (y + 1) * width * 3);
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 1 })), chunk('IEND', Buffer.alloc(0))]);
}

const BIG_PNG = makePng(1600, 1200);  // ~5.8 MB of noise: no compression helps
const REPORT = Buffer.from(Array.from({ length: 8000 }, (_, i) => `${i},item-${i},${(i * 7919) % 10007}\n`).join(''));
const sha = (b) => createHash('sha256').update(b).digest('hex');
const sessions = new Map();  // sid -> user

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>`;
}

function cookies(req) {
  const out = {};
  for (const part of (req.headers.cookie || '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k) out[k] = v.join('=');
  }
  return out;
}

function site(req, res) {
  const url = new URL(req.url, `http://${req.headers.host || SITE}`);
  log({ site: req.method, path: url.pathname, host: req.headers.host, from: req.socket.remoteAddress });
  const send = (status, type, body, headers = {}) => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };
  const redirect = (to) => send(302, 'text/plain', `see ${to}`, { Location: to });
  const p = url.pathname;
  if (p === '/') {
    return send(200, 'text/html', page('Test site', `<ul>
      <li><a id="login" href="/login">Log in</a></li>
      <li><a id="chain" href="/redirect/1">Redirect chain</a></li>
      <li><a id="download" href="/download/report.csv">Download the report</a></li>
      <li><a id="gallery" href="/gallery">Gallery</a></li></ul>`));
  }
  if (p === '/login' && req.method === 'GET') {
    return send(200, 'text/html', page('Log in', `<form method="post" action="/login">
      <input id="user" name="user"><input id="password" name="password" type="password">
      <label><input id="remember" name="remember" type="checkbox" value="1"> Keep me logged in</label>
      <button id="submit" type="submit">Log in</button></form>`));
  }
  if (p === '/login' && req.method === 'POST') {
    let body = '';
    req.on('data', (d) => { body += d; if (body.length > 4096) req.destroy(); });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      if (form.get('user') === 'alice' && form.get('password') === 'wonderland') {
        const sid = sha(String(Math.random())).slice(0, 24);
        sessions.set(sid, 'alice');
        // "Keep me logged in" makes it a persistent cookie (a session
        // cookie is never written to disk, so no profile would keep it).
        const lasting = form.get('remember') ? '; Max-Age=86400' : '';
        res.writeHead(303, { Location: '/account', 'Set-Cookie': `sid=${sid}; Path=/; HttpOnly; SameSite=Lax${lasting}` });
        return res.end();
      }
      send(401, 'text/html', page('Wrong password', '<a href="/login">try again</a>'));
    });
    return;
  }
  if (p === '/account') {
    const user = sessions.get(cookies(req).sid);
    if (!user) return redirect('/login');
    return send(200, 'text/html', page('Account', `<p id="welcome">Welcome, ${user}</p>`));
  }
  const hop = p.match(/^\/redirect\/(\d)$/);
  if (hop) return redirect(Number(hop[1]) < 4 ? `/redirect/${Number(hop[1]) + 1}` : '/final');
  if (p === '/final') return send(200, 'text/html', page('End of the chain', '<p id="done">4 redirects followed</p>'));
  if (p === '/download/report.csv') {
    return send(200, 'text/csv', REPORT, { 'Content-Disposition': 'attachment; filename="report.csv"' });
  }
  if (p === '/download/report.csv.sha256') return send(200, 'text/plain', sha(REPORT));
  if (p === '/big.png') return send(200, 'image/png', BIG_PNG);
  if (p === '/big.png.sha256') return send(200, 'text/plain', sha(BIG_PNG));
  if (p === '/gallery') return send(200, 'text/html', page('Gallery', '<img id="big" src="/big.png" alt="noise">'));
  // Redirects into places the policy forbids.
  if (p === '/to') {
    const to = url.searchParams.get('url') || '/';
    return redirect(to);
  }
  send(404, 'text/plain', 'not found');
}

// ------------------------------------------------------------ start
const listen = (server, port, host) => new Promise((r, j) => { server.once('error', j); server.listen(port, host, r); });
const dns = dgram.createSocket('udp4');
dns.on('error', (e) => log({ dnsError: e.message }));
dns.on('message', (msg, rinfo) => {
  const reply = dnsAnswer(msg);
  if (reply) dns.send(reply, rinfo.port, rinfo.address);
});
await new Promise((r) => dns.bind(53, DNS, r));
const siteServer = http.createServer(site);
// A websocket handshake (no frames): ws:// travels through a proxy as a
// CONNECT tunnel, so its onopen proves the tunnel works.
siteServer.on('upgrade', (req, sock) => {
  log({ site: 'UPGRADE', path: req.url, host: req.headers.host });
  const accept = createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  sock.on('error', () => {});
});
await listen(siteServer, 80, SITE);
for (const addr of PRIVATE) {
  for (const port of addr === '10.99.0.1' ? [8080, 8081] : [80]) {
    await listen(http.createServer((req, res) => {
      log({ private: `${addr}:${port}`, path: req.url });
      res.end(`reachable ${addr}:${port}`);
    }), port, addr);
  }
}
const lookup = (host) => NAMES[host.toLowerCase()];
await listen(httpProxy(log, lookup), 3128, HTTP_PROXY);
await listen(socksProxy(log, lookup), 1080, SOCKS_PROXY);
log({ ready: true });
