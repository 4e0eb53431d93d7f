// The static server of the okta-auth-js test page: spa/index.html at /, /callback and /signed-out, and the
// SDK's browser bundle from node_modules at /okta-auth-js.min.js, on 127.0.0.1:PORT (0 picks a free port;
// the default tenant's bsr-spa app and Trusted Origins name port 4300). Prints
// `listening on http://127.0.0.1:PORT` when ready.
//
//   (cd tests/interop && PORT=4300 node spa/serve.js)

'use strict';

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const page = path.join(__dirname, 'index.html');
// The bundle Okta publishes for <script> tags (the package's exports map does not list dist/, so by path).
const sdk = path.join(__dirname, '..', 'node_modules', '@okta', 'okta-auth-js', 'dist', 'okta-auth-js.min.js');
const port = Number(process.env.PORT ?? '4300');

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const send = (file, type) => {
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        return res.end(`cannot read ${file}: ${err.message}`);
      }
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      return res.end(data);
    });
  };
  if (req.method !== 'GET') {
    res.writeHead(405, { allow: 'GET' });
    return res.end();
  }
  if (['/', '/callback', '/signed-out', '/index.html'].includes(url.pathname)) {
    return send(page, 'text/html; charset=utf-8');
  }
  if (url.pathname === '/okta-auth-js.min.js') {
    return send(sdk, 'text/javascript; charset=utf-8');
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  return res.end('not found');
});

server.on('error', (e) => {
  console.error(`spa: cannot listen on 127.0.0.1:${port}: ${e.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
