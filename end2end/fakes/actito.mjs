// A loopback stand-in for the Actito API, for the end-to-end tests: the token
// exchange, and a record of every request (GET /__requests) for assertions.
import http from 'node:http';

const port = Number(process.argv[2] ?? 3101);
export const API_KEY = 'e2e-actito-api-key';
const requests = [];
// The entity's webhook subscriptions; one already points elsewhere.
const subscriptions = [
  { id: 1, on: 'PROFILE_TABLE', onElementId: '12', eventType: 'CREATE', onFields: [], targetUrl: 'https://crm.example.com/hooks/actito', isActive: true, headers: {} },
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

// The subscription body as Actito's developer docs ("Webhooks → Protocol") define
// it; anything else is refused, as Actito would, so Passhook's tests can't agree
// with a shape of its own.
const FIELDS = ['on', 'eventType', 'onElementId', 'onFields', 'targetUrl', 'headers', 'isActive', 'pushMode', 'maxBlockSize'];
const PROFILE_EVENTS = ['CREATE', 'UPDATE', 'DELETE', 'UPDATED_SEGMENT', 'UPDATED_SUBSCRIPTION'];

function refusal(sent, tableId) {
  if (typeof sent !== 'object' || sent === null || Array.isArray(sent)) return 'The body must be an object.';
  const unknown = Object.keys(sent).filter((k) => !FIELDS.includes(k));
  if (unknown.length) return `Unknown fields: ${unknown.join(', ')}.`;
  if (typeof sent.targetUrl !== 'string' || !/^https?:\/\//.test(sent.targetUrl)) return 'targetUrl must be a URL.';
  if (typeof sent.onElementId !== 'string' || !sent.onElementId) return 'onElementId is required.';
  const headers = sent.headers ?? {};
  if (typeof headers !== 'object' || Array.isArray(headers)) return 'headers must be an object of names to values.';
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') return `header ${name} must be a string.`;
    if (name.toLowerCase() === 'content-type') return 'Content-Type cannot be set.';
  }
  if (sent.on === 'PROFILE_TABLE') {
    if (!PROFILE_EVENTS.includes(sent.eventType)) return `eventType ${sent.eventType} is not a profile-table event.`;
    if (tableId && sent.onElementId !== tableId) return 'onElementId must be the table of the path.';
    if (sent.onFields !== undefined && !(Array.isArray(sent.onFields) && sent.onFields.every((f) => typeof f === 'string'))) return 'onFields must be a list of field names.';
    return null;
  }
  if (sent.on === 'CUSTOM_ACTION') return tableId ? 'A custom-action subscription is not made on a table.' : null;
  return `on ${sent.on} is not handled by this fake.`;
}

function subscriptionRoute(req, res, url, tableId, id, body) {
  if (req.method === 'GET' && id === undefined) {
    const page = Number(url.searchParams.get('page') ?? 0);
    const size = Number(url.searchParams.get('size') ?? 20);
    return send(res, 200, { subscriptions: subscriptions.slice(page * size, (page + 1) * size) });
  }
  if (req.method === 'POST' && id === undefined) {
    let sent;
    try { sent = JSON.parse(body); } catch { return send(res, 400, { message: 'The body is not JSON.' }); }
    const refused = refusal(sent, tableId);
    if (refused) return send(res, 400, { status: 400, message: refused });
    const created = { ...sent, id: nextId++ };
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
