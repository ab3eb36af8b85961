// Runs inside the test internet's network namespace (lib/internet.mjs): the
// tests' own site, a DNS server, the private listeners the policy must keep
// machines away from, and two upstream proxies. Every request is logged to
// stdout as one JSON line; {"ready":true} once everything listens.
import http from 'node:http';
import net from 'node:net';
import dgram from 'node:dgram';
import { createHash, createCipheriv } from 'node:crypto';
import { deflateSync, crc32 } from 'node:zlib';

const SITE = '203.0.113.20';
const DOCS = '203.0.113.10';
const DNS = '203.0.113.53';
const HTTP_PROXY = '203.0.113.30';
const SOCKS_PROXY = '203.0.113.31';
const PRIVATE = ['10.99.0.1', '100.64.99.1', '172.16.99.1', '192.168.99.1', '169.254.99.1'];
export const PROXY_USER = 'proxyuser';
export const PROXY_PASSWORD = 'proxy-secret';

const log = (entry) => process.stdout.write(JSON.stringify({ t: Date.now(), ...entry }) + '\n');

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
        res.writeHead(303, { Location: '/account', 'Set-Cookie': `sid=${sid}; Path=/; HttpOnly; SameSite=Lax` });
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

// ------------------------------------------------------------ proxies
function proxyAuthorized(header) {
  const m = /^Basic (.+)$/.exec(header || '');
  if (!m) return false;
  return Buffer.from(m[1], 'base64').toString() === `${PROXY_USER}:${PROXY_PASSWORD}`;
}

function httpProxy() {
  const server = http.createServer((req, res) => {
    const ok = proxyAuthorized(req.headers['proxy-authorization']);
    log({ proxy: 'http', method: req.method, url: req.url, auth: ok });
    if (!ok) {
      res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="test"', 'Content-Length': 0 });
      return res.end();
    }
    let target;
    try { target = new URL(req.url); } catch { res.writeHead(400); return res.end(); }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    headers['x-via-test-proxy'] = 'http';
    const up = http.request({ host: target.hostname, port: target.port || 80, path: target.pathname + target.search,
      method: req.method, headers }, (ur) => { res.writeHead(ur.statusCode, ur.headers); ur.pipe(res); });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  server.on('connect', (req, sock, head) => {
    const ok = proxyAuthorized(req.headers['proxy-authorization']);
    log({ proxy: 'http', method: 'CONNECT', url: req.url, auth: ok });
    if (!ok) return sock.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
    const [host, port] = req.url.split(':');
    const up = net.connect(Number(port), host, () => { sock.write('HTTP/1.1 200 Connection Established\r\n\r\n'); up.write(head); up.pipe(sock); sock.pipe(up); });
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
  });
  return server;
}

function socksProxy() {
  return net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    let stage = 'greeting';
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      if (stage === 'greeting') {
        if (buf.length < 2 || buf.length < 2 + buf[1]) return;
        const methods = [...buf.subarray(2, 2 + buf[1])];
        buf = buf.subarray(2 + buf[1]);
        if (!methods.includes(2)) { log({ proxy: 'socks5', error: 'no user/password method' }); sock.end(Buffer.from([5, 0xff])); return; }
        sock.write(Buffer.from([5, 2]));
        stage = 'auth';
      }
      if (stage === 'auth') {
        if (buf.length < 2 || buf.length < 3 + buf[1] || buf.length < 3 + buf[1] + buf[2 + buf[1]]) return;
        const ulen = buf[1];
        const user = buf.toString('utf8', 2, 2 + ulen);
        const plen = buf[2 + ulen];
        const pass = buf.toString('utf8', 3 + ulen, 3 + ulen + plen);
        buf = buf.subarray(3 + ulen + plen);
        const ok = user === PROXY_USER && pass === PROXY_PASSWORD;
        log({ proxy: 'socks5', auth: ok });
        if (!ok) { sock.end(Buffer.from([1, 1])); return; }
        sock.write(Buffer.from([1, 0]));
        stage = 'request';
      }
      if (stage === 'request') {
        if (buf.length < 5) return;
        let host; let off;
        if (buf[3] === 1) { if (buf.length < 10) return; host = [...buf.subarray(4, 8)].join('.'); off = 8; }
        else if (buf[3] === 3) { if (buf.length < 5 + buf[4] + 2) return; host = buf.toString('latin1', 5, 5 + buf[4]); off = 5 + buf[4]; }
        else { sock.end(Buffer.from([5, 8, 0, 1, 0, 0, 0, 0, 0, 0])); return; }
        const port = buf.readUInt16BE(off);
        const rest = buf.subarray(off + 2);
        stage = 'relay';
        sock.removeListener('data', onData);
        log({ proxy: 'socks5', connect: `${host}:${port}` });
        const up = net.connect(port, host, () => {
          sock.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
          if (rest.length) up.write(rest);
          up.pipe(sock); sock.pipe(up);
        });
        up.on('error', () => sock.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])));
        sock.on('error', () => up.destroy());
      }
    };
    sock.on('data', onData);
    sock.on('error', () => {});
  });
}

// ------------------------------------------------------------ start
const listen = (server, port, host) => new Promise((r, j) => { server.once('error', j); server.listen(port, host, r); });
const dns = dgram.createSocket('udp4');
dns.on('message', (msg, rinfo) => {
  const reply = dnsAnswer(msg);
  if (reply) dns.send(reply, rinfo.port, rinfo.address);
});
await new Promise((r) => dns.bind(53, DNS, r));
await listen(http.createServer(site), 80, SITE);
for (const addr of PRIVATE) {
  for (const port of addr === '10.99.0.1' ? [8080, 8081] : [80]) {
    await listen(http.createServer((req, res) => {
      log({ private: `${addr}:${port}`, path: req.url });
      res.end(`reachable ${addr}:${port}`);
    }), port, addr);
  }
}
await listen(httpProxy(), 3128, HTTP_PROXY);
await listen(socksProxy(), 1080, SOCKS_PROXY);
log({ ready: true });
