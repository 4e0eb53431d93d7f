// @okta/jwt-verifier, unmodified, against a running mock-idp (MOCK_IDP_URL). Run by
// tests/tests/interop_node.rs on a real clock, once over http (with the verifier's testing flag) and once over
// https (mock-idp --tls, NODE_EXTRA_CA_CERTS naming its certificate, no testing flag).
//
//   MOCK_IDP_URL=http://127.0.0.1:8080 node --test tests/interop/jwt-verifier.test.js

'use strict';

const { test, before } = require('node:test');
const assert = require('node:assert/strict');
const OktaJwtVerifier = require('@okta/jwt-verifier');
const { baseUrl, testingFlags, signIn, control, kidOf } = require('./lib/idp');

const verifier = (opts) => new OktaJwtVerifier({ testing: testingFlags(), ...opts });

/** njwt's error for a kid the JWKS does not have, wrapping jwks-rsa's. */
const keyNotFound = (kid) => (err) => {
  assert.equal(err.message, `Error while resolving signing key for kid "${kid}"`);
  assert.equal(err.innerError.name, 'SigningKeyNotFoundError');
  assert.equal(err.innerError.message, `Unable to find a signing key that matches '${kid}'`);
  return true;
};

before(async () => {
  await control('POST', '/_mock/reset');
});

test('jwt-verifier: an access token from the default server verifies (issuer, audience, cid, JWKS signature)', async () => {
  const t = await signIn({ prefix: '/oauth2/default' });
  const v = verifier({ issuer: `${baseUrl()}/oauth2/default`, assertClaims: { cid: 'bsr-local', 'scp.includes': ['openid', 'email'] } });
  const jwt = await v.verifyAccessToken(t.access_token, 'api://default');
  assert.equal(jwt.header.alg, 'RS256');
  assert.equal(jwt.claims.iss, `${baseUrl()}/oauth2/default`);
  assert.equal(jwt.claims.aud, 'api://default');
  assert.equal(jwt.claims.cid, 'bsr-local');
  assert.equal(jwt.claims.uid, '00u1alice00000000001');
  assert.equal(jwt.claims.sub, 'alice@example.com');
  assert.equal(jwt.claims.ver, 1);
  assert.deepEqual(jwt.claims.scp, ['openid', 'profile', 'email', 'offline_access']);
  assert.equal(jwt.claims.exp - jwt.claims.iat, 3600);
  // An array of expected audiences is accepted too.
  await v.verifyAccessToken(t.access_token, ['api://other', 'api://default']);
});

test('jwt-verifier: a wrong audience, a wrong cid and a wrong issuer are rejected', async () => {
  const t = await signIn({ prefix: '/oauth2/default' });
  const issuer = `${baseUrl()}/oauth2/default`;
  await assert.rejects(verifier({ issuer }).verifyAccessToken(t.access_token, 'api://other'),
    { message: 'audience claim api://default does not match expected audience: api://other' });
  await assert.rejects(verifier({ issuer, assertClaims: { cid: 'someone-else' } }).verifyAccessToken(t.access_token, 'api://default'),
    { message: "claim 'cid' value 'bsr-local' does not match expected value 'someone-else'" });
  // The org server's issuer with the default server's keys: the signature verifies, the issuer does not.
  await assert.rejects(verifier({ issuer: baseUrl(), jwksUri: `${issuer}/v1/keys` }).verifyAccessToken(t.access_token, 'api://default'),
    { message: `issuer ${issuer} does not match expected issuer: ${baseUrl()}` });
});

test('jwt-verifier: ID tokens from the default server verify with audience and nonce', async () => {
  const t = await signIn({ prefix: '/oauth2/default', nonce: 'nonce-default-1' });
  const v = verifier({ issuer: `${baseUrl()}/oauth2/default` });
  const jwt = await v.verifyIdToken(t.id_token, 'bsr-local', 'nonce-default-1');
  assert.equal(jwt.claims.aud, 'bsr-local');
  assert.equal(jwt.claims.nonce, 'nonce-default-1');
  assert.equal(jwt.claims.sub, '00u1alice00000000001');
  assert.equal(jwt.claims.email, 'alice@example.com');
  assert.equal(jwt.claims.name, 'Alice Example');
  assert.equal(jwt.claims.idp, '00o1mockorg000000001');
  assert.deepEqual(jwt.claims.amr, ['pwd']);
  await assert.rejects(v.verifyIdToken(t.id_token, 'bsr-local', 'another-nonce'),
    { message: 'nonce claim nonce-default-1 does not match expected nonce: another-nonce' });
  await assert.rejects(v.verifyIdToken(t.id_token, 'bsr-local'), { message: 'expected nonce is required' });
  await assert.rejects(v.verifyIdToken(t.id_token, 'someone-else', 'nonce-default-1'),
    { message: 'audience claim bsr-local does not match expected client id: someone-else' });
});

test('jwt-verifier: ID tokens from the org server verify against the org JWKS; its access tokens do not (as at Okta)', async () => {
  const t = await signIn({ prefix: '', nonce: 'nonce-org-1' });
  // The org server's keys are at /oauth2/v1/keys, not <issuer>/v1/keys, so the verifier is told where.
  const v = verifier({ issuer: baseUrl(), jwksUri: `${baseUrl()}/oauth2/v1/keys` });
  const jwt = await v.verifyIdToken(t.id_token, 'bsr-local', 'nonce-org-1');
  assert.equal(jwt.claims.iss, baseUrl());
  assert.equal(jwt.claims.aud, 'bsr-local');
  // Okta signs org-server access tokens with a key it does not publish: only /introspect can validate them.
  const kid = kidOf(t.access_token);
  await assert.rejects(v.verifyAccessToken(t.access_token, baseUrl()), keyNotFound(kid));
});

test('jwt-verifier: an expired access token is rejected', async () => {
  // Two hours in the past on the IdP's clock: the token expired an hour ago by real time.
  await control('POST', '/_mock/clock', { offset_seconds: -7200 });
  let t;
  try {
    t = await signIn({ prefix: '/oauth2/default' });
  } finally {
    await control('POST', '/_mock/clock', { offset_seconds: 0 });
  }
  await assert.rejects(verifier({ issuer: `${baseUrl()}/oauth2/default` }).verifyAccessToken(t.access_token, 'api://default'),
    { message: 'Jwt is expired' });
});

test('jwt-verifier: a token signed with a key that left the JWKS (two keyRotate calls) is rejected', async () => {
  const issuer = `${baseUrl()}/oauth2/default`;
  const old = await signIn({ prefix: '/oauth2/default' });
  const oldKid = kidOf(old.access_token);
  await verifier({ issuer }).verifyAccessToken(old.access_token, 'api://default');
  const rotate = () => control('POST', '/api/v1/authorizationServers/default/credentials/lifecycle/keyRotate', { use: 'sig' });
  // The first rotation keeps the old key in the JWKS as EXPIRED, so the token still verifies.
  const afterFirst = await rotate();
  assert.equal(afterFirst.find((k) => k.kid === oldKid).status, 'EXPIRED');
  await verifier({ issuer }).verifyAccessToken(old.access_token, 'api://default');
  // The second rotation drops it.
  const afterSecond = await rotate();
  assert.equal(afterSecond.find((k) => k.kid === oldKid), undefined);
  const jwks = await (await fetch(`${issuer}/v1/keys`)).json();
  assert.equal(jwks.keys.some((k) => k.kid === oldKid), false);
  await assert.rejects(verifier({ issuer }).verifyAccessToken(old.access_token, 'api://default'), keyNotFound(oldKid));
  // A token issued now is signed with the new ACTIVE key and verifies.
  const fresh = await signIn({ prefix: '/oauth2/default' });
  assert.notEqual(kidOf(fresh.access_token), oldKid);
  await verifier({ issuer }).verifyAccessToken(fresh.access_token, 'api://default');
});
