// A loopback OpenID Connect provider for the end-to-end tests: discovery, a sign-in
// page where the test types an email, a token endpoint that checks the PKCE verifier,
// and ID tokens signed with an RSA key published as a JWKS (Node's own crypto).
import crypto from 'node:crypto';
import http from 'node:http';

const port = Number(process.argv[2] ?? 3102);
const issuer = `http://127.0.0.1:${port}`;
export const CLIENT_ID = 'passhook-e2e';
const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'e2e-1', use: 'sig', alg: 'RS256' };
const codes = new Map(); // code → { email, nonce, challenge, redirect }

const b64url = (data) => Buffer.from(data).toString('base64url');

function idToken(claims) {
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: jwk.kid }));
  const body = b64url(JSON.stringify(claims));
  const signature = crypto.sign('RSA-SHA256', Buffer.from(`${header}.${body}`), privateKey);
  return `${header}.${body}.${b64url(signature)}`;
}

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'content-type': type });
  res.end(type === 'application/json' ? JSON.stringify(body) : body);
}

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      return send(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    if (url.pathname === '/jwks') return send(res, 200, { keys: [jwk] });
    if (url.pathname === '/authorize' && req.method === 'GET') {
      const p = url.searchParams;
      if (p.get('client_id') !== CLIENT_ID || p.get('code_challenge_method') !== 'S256' || !p.get('nonce')) {
        return send(res, 400, 'bad authorization request', 'text/plain');
      }
      const hidden = ['state', 'nonce', 'code_challenge', 'redirect_uri']
        .map((k) => `<input type="hidden" name="${k}" value="${escape(p.get(k))}">`).join('');
      return send(res, 200, `<!doctype html><title>Fake IdP</title><form method="post" action="/authorize">${hidden}
        <label>Email <input name="email" type="email"></label><button>Continue</button></form>`, 'text/html');
    }
    if (url.pathname === '/authorize' && req.method === 'POST') {
      const f = new URLSearchParams(body);
      const code = crypto.randomBytes(16).toString('hex');
      codes.set(code, { email: f.get('email'), nonce: f.get('nonce'), challenge: f.get('code_challenge'), redirect: f.get('redirect_uri') });
      const back = new URL(f.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', f.get('state'));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      const f = new URLSearchParams(body);
      const grant = codes.get(f.get('code'));
      codes.delete(f.get('code'));
      const verifier = f.get('code_verifier') ?? '';
      const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
      if (!grant || grant.challenge !== challenge || grant.redirect !== f.get('redirect_uri')) {
        return send(res, 400, { error: 'invalid_grant' });
      }
      const now = Math.floor(Date.now() / 1000);
      return send(res, 200, {
        access_token: crypto.randomBytes(16).toString('hex'),
        token_type: 'Bearer',
        expires_in: 300,
        id_token: idToken({ iss: issuer, aud: CLIENT_ID, sub: grant.email, email: grant.email, email_verified: true, nonce: grant.nonce, iat: now, exp: now + 300 }),
      });
    }
    send(res, 404, { error: 'not found' });
  });
});

server.listen(port, '127.0.0.1', () => console.log(`fake OpenID provider on ${port}`));
