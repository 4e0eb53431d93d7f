// Helpers for the node interop tests: a headless sign-in against mock-idp the way Okta's documented
// "authn + sessionToken" flow does it, and the mock's control API. Nothing here is under test; the SDKs are.

'use strict';

const crypto = require('node:crypto');

/** The running mock-idp the tests talk to (`MOCK_IDP_URL`, e.g. http://127.0.0.1:8080). */
function baseUrl() {
  const b = process.env.MOCK_IDP_URL;
  if (!b) {
    throw new Error('MOCK_IDP_URL is not set: start mock-idp and point MOCK_IDP_URL at it (tests/tests/interop_node.rs does)');
  }
  return b.replace(/\/+$/, '');
}

/** The SDKs' own testing flag, needed only for an http:// issuer; an https issuer runs without it. */
function testingFlags() {
  return baseUrl().startsWith('https://') ? undefined : { disableHttpsCheck: true };
}

const b64url = (buf) => buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/**
 * Signs `username` in at the server under `prefix` ('' for the org server, '/oauth2/default' for the
 * custom one) as the confidential app bsr-local, with PKCE, and returns the token response plus the nonce.
 */
async function signIn({ prefix, username = 'alice@example.com', password = 'Passw0rd!', nonce = crypto.randomUUID(),
  scope = 'openid profile email offline_access' }) {
  const base = baseUrl();
  const authn = await fetch(`${base}/api/v1/authn`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const a = await authn.json();
  if (a.status !== 'SUCCESS') {
    throw new Error(`authn: ${authn.status} ${JSON.stringify(a)}`);
  }
  const verifier = b64url(crypto.randomBytes(32));
  const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
  const redirectUri = 'http://127.0.0.1:3000/oauth2/callback';
  const serverPath = prefix ? prefix : '/oauth2';
  const q = new URLSearchParams({
    client_id: 'bsr-local', response_type: 'code', scope, state: 'st-' + crypto.randomUUID(), nonce,
    redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', sessionToken: a.sessionToken,
  });
  const r = await fetch(`${base}${serverPath}/v1/authorize?${q}`, { redirect: 'manual' });
  const location = r.headers.get('location');
  const code = location && new URL(location).searchParams.get('code');
  if (!code) {
    throw new Error(`authorize: ${r.status}, Location ${location}`);
  }
  const t = await fetch(`${base}${serverPath}/v1/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
      authorization: 'Basic ' + Buffer.from('bsr-local:bsr-local-secret').toString('base64'),
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }),
  });
  const tokens = await t.json();
  if (!t.ok) {
    throw new Error(`token: ${t.status} ${JSON.stringify(tokens)}`);
  }
  return { ...tokens, nonce };
}

/** A management-API or /_mock call; throws on a non-2xx answer. */
async function control(method, path, body) {
  const r = await fetch(`${baseUrl()}${path}`, {
    method,
    headers: { authorization: 'SSWS mock-admin-token', 'content-type': 'application/json', accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) {
    throw new Error(`${method} ${path}: ${r.status} ${text}`);
  }
  return text ? JSON.parse(text) : null;
}

/** The `kid` in a JWT's header. */
function kidOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString()).kid;
}

module.exports = { baseUrl, testingFlags, signIn, control, kidOf };
