// An HTTP proxy in front of the S3 server that injects faults: status codes for chosen
// requests, dropped connections, or a total outage. Bounded and local (127.0.0.1 only).
import http from 'node:http';
import { freePort } from './pg.mjs';

/**
 * decide(req, n) -> undefined (forward), { status, code } (answer with an S3 error),
 * { status, body } (answer with that body as it is), 'drop' (destroy the connection), or
 * 'stall' (read the request and never answer: a server that stopped responding), or
 * 'lost' (carry the request out upstream but never give the client the answer: a server
 * that did the work while the client timed out).
 * n counts requests from 1.
 */
export async function startFaultyProxy(upstream, decide) {
  const target = new URL(upstream);
  const port = await freePort();
  let n = 0;
  const log = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const i = ++n;
    const action = decide(req, i);
    log.push({ n: i, method: req.method, url: req.url, action: action === undefined ? 'forward' : typeof action === 'string' ? action : action.status });
    if (action === 'drop') {
      req.socket.destroy();
      return;
    }
    if (action === 'stall') {
      req.resume();
      return;
    }
    if (action === 'lost') {
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => ur.resume());
      up.on('error', () => undefined);
      req.pipe(up);
      return;
    }
    if (action) {
      req.resume();
      req.on('end', () => {
        res.writeHead(action.status, { 'content-type': 'application/xml' });
        res.end(action.body ?? `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${action.code}</Code><Message>injected fault</Message><RequestId>x</RequestId></Error>`);
      });
      return;
    }
    const up = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    log,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
