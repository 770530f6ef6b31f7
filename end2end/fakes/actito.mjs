// A loopback stand-in for the Actito API, for the end-to-end tests: the token
// exchange, and a record of every request (GET /__requests) for assertions.
import http from 'node:http';

const port = Number(process.argv[2] ?? 3101);
export const API_KEY = 'e2e-actito-api-key';
const requests = [];

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    if (url.pathname === '/__health') return send(res, 200, { ok: true });
    if (url.pathname === '/__requests') return send(res, 200, requests);
    requests.push({ method: req.method, path: url.pathname, headers: req.headers, body });
    if (req.method === 'GET' && url.pathname === '/auth/token') {
      if (req.headers.authorization !== API_KEY) {
        return send(res, 401, { status: 401, message: 'The API key is not valid.' });
      }
      return send(res, 200, { accessToken: 'e2e-token', tokenType: 'Bearer', expiresIn: '900s' });
    }
    send(res, 404, { status: 404, message: `No route ${req.method} ${url.pathname}` });
  });
});

server.listen(port, '127.0.0.1', () => console.log(`fake Actito on ${port}`));
