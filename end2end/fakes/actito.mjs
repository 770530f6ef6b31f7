// A loopback stand-in for the Actito API, for the end-to-end tests: the token
// exchange, and a record of every request (GET /__requests) for assertions.
import http from 'node:http';

const port = Number(process.argv[2] ?? 3101);
export const API_KEY = 'e2e-actito-api-key';
const requests = [];
// The entity's webhook subscriptions; one already points elsewhere.
const subscriptions = [
  { id: 1, on: 'PROFILE_TABLE', tableId: '12', eventType: 'CREATE', fields: [], targetUrl: 'https://crm.example.com/hooks/actito', isActive: true, headers: [] },
];
let nextId = 100;
const SUBSCRIPTIONS = /^\/webhooks\/v4\/entity\/[^/]+(?:\/table\/([^/]+))?\/webhookSubscription(?:\/(\d+))?$/;

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
    const match = url.pathname.match(SUBSCRIPTIONS);
    if (match) {
      if (req.headers.authorization !== 'Bearer e2e-token') return send(res, 401, { message: 'no token' });
      return subscriptionRoute(req, res, url, match[1], match[2] && Number(match[2]), body);
    }
    send(res, 404, { status: 404, message: `No route ${req.method} ${url.pathname}` });
  });
});

function subscriptionRoute(req, res, url, tableId, id, body) {
  if (req.method === 'GET' && id === undefined) {
    const page = Number(url.searchParams.get('page') ?? 0);
    const size = Number(url.searchParams.get('size') ?? 20);
    return send(res, 200, { subscriptions: subscriptions.slice(page * size, (page + 1) * size) });
  }
  if (req.method === 'POST' && id === undefined) {
    const created = { ...JSON.parse(body), id: nextId++ };
    if (tableId) created.tableId = tableId;
    subscriptions.push(created);
    return send(res, 201, created);
  }
  const index = subscriptions.findIndex((s) => s.id === id);
  if (index < 0) return send(res, 404, { message: `No subscription ${id}` });
  if (req.method === 'PATCH') {
    Object.assign(subscriptions[index], JSON.parse(body));
    return send(res, 200, subscriptions[index]);
  }
  if (req.method === 'DELETE') {
    subscriptions.splice(index, 1);
    res.writeHead(204);
    return res.end();
  }
  send(res, 405, { message: 'method not allowed' });
}

server.listen(port, '127.0.0.1', () => console.log(`fake Actito on ${port}`));
