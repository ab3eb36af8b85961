// The two upstream proxies of the test internet (run by internet-server.mjs):
// an HTTP proxy with Basic auth (plain requests and CONNECT) and a SOCKS5
// proxy with RFC 1929 username/password. Each logs every request it sees as
// {proxy, ...} so tests can tell which route a page took. Names resolve
// through `lookup` (the test internet's own DNS table): the namespace has no
// resolver of its own.
import http from 'node:http';
import net from 'node:net';
import dns from 'node:dns';

export const PROXY_USER = 'proxyuser';
export const PROXY_PASSWORD = 'proxy-secret';

function proxyAuthorized(header) {
  const m = /^Basic (.+)$/.exec(header || '');
  if (!m) return false;
  return Buffer.from(m[1], 'base64').toString() === `${PROXY_USER}:${PROXY_PASSWORD}`;
}

// net.connect's lookup option, answering from the test table first.
function lookupWith(table) {
  return (host, options, cb) => {
    const addr = table(host);
    if (!addr) return dns.lookup(host, options, cb);
    if (options && options.all) return cb(null, [{ address: addr, family: 4 }]);
    return cb(null, addr, 4);
  };
}

export function httpProxy(log, table) {
  const lookup = lookupWith(table);
  const server = http.createServer((req, res) => {
    // A machine released mid-request resets its connections: never fatal.
    req.on('error', () => {});
    res.on('error', () => {});
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
    const up = http.request({ host: target.hostname, port: target.port || 80, path: target.pathname + target.search,
      method: req.method, headers, lookup }, (ur) => {
      ur.on('error', () => res.destroy());
      res.writeHead(ur.statusCode, { ...ur.headers, 'x-via-test-proxy': 'http' });
      ur.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  server.on('connect', (req, sock, head) => {
    sock.on('error', () => {});
    const ok = proxyAuthorized(req.headers['proxy-authorization']);
    log({ proxy: 'http', method: 'CONNECT', url: req.url, auth: ok });
    if (!ok) return sock.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
    const [host, port] = req.url.split(':');
    const up = net.connect({ port: Number(port), host, lookup }, () => {
      sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head); up.pipe(sock); sock.pipe(up);
    });
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
  });
  return server;
}

export function socksProxy(log, table) {
  const lookup = lookupWith(table);
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
        const up = net.connect({ port, host, lookup }, () => {
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
