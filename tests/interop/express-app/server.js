// An Express app signed in through @okta/oidc-middleware, exactly as Okta's own samples wire it, used
// unmodified against mock-idp: by tests/tests/interop_node.rs, and by the scenario runner as an external
// target (tests/interop/express-target.yaml).
//
// Configuration (environment):
//   ISSUER         the Okta issuer: the org server (http://127.0.0.1:8080) or a custom one (…/oauth2/default)
//   CLIENT_ID      the app's client id (bsr-local)
//   CLIENT_SECRET  its secret (bsr-local-secret)
//   PORT           where to listen on 127.0.0.1; 0 picks a free port (default 4100)
//   APP_BASE_URL   the app's URL as browsers see it (default http://127.0.0.1:<port>); the IdP app must have
//                  <APP_BASE_URL>/authorization-code/callback as a sign-in redirect URI and
//                  <APP_BASE_URL>/logout/callback as a sign-out redirect URI
//   SCOPE          the scopes to ask for (default "openid profile email")
//   OKTA_TESTING_DISABLE_HTTPS_CHECK=1
//                  the middleware's own testing flag, needed for an http:// issuer; leave it unset for an
//                  https issuer (mock-idp --tls, with NODE_EXTRA_CA_CERTS naming its certificate)
//
// Routes: /login and /authorization-code/callback (the middleware's), GET /whoami (200 {email, sub, name}
// from userinfo when signed in, else 401 JSON), GET /signout (the middleware's forceLogoutAndRevoke: revokes
// the tokens and ends the Okta session), /logout/callback (a signed-out page).
// Prints `listening on http://127.0.0.1:PORT` once the middleware has read the issuer's discovery document.

'use strict';

const http = require('node:http');
const express = require('express');
const session = require('express-session');
const { ExpressOIDC } = require('@okta/oidc-middleware');

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`express-app: environment variable ${name} is required`);
    process.exit(2);
  }
  return v;
}

const issuer = required('ISSUER');
const clientId = required('CLIENT_ID');
const clientSecret = required('CLIENT_SECRET');
const port = Number(process.env.PORT ?? '4100');
const scope = process.env.SCOPE || 'openid profile email';

const app = express();
app.use(session({
  // A per-process secret: sessions do not need to outlive the process.
  secret: require('node:crypto').randomBytes(32).toString('hex'),
  resave: false,
  saveUninitialized: false,
  cookie: { httpOnly: true, sameSite: 'lax' },
}));

const server = http.createServer(app);

// The middleware needs the app's base URL (its redirect URIs) when it is built, and with PORT=0 the port is
// known only once the server listens, so it is built in the listen callback.
server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  const appBaseUrl = (process.env.APP_BASE_URL || `http://127.0.0.1:${actual}`).replace(/\/+$/, '');
  const options = {
    issuer,
    client_id: clientId,
    client_secret: clientSecret,
    appBaseUrl,
    scope,
    routes: {
      loginCallback: { path: '/authorization-code/callback', afterCallback: '/' },
      logoutCallback: { path: '/logout/callback' },
    },
  };
  if (process.env.OKTA_TESTING_DISABLE_HTTPS_CHECK === '1') {
    options.testing = { disableHttpsCheck: true };
  }
  let oidc;
  try {
    oidc = new ExpressOIDC(options);
  } catch (e) {
    console.error(`express-app: the middleware refused its configuration: ${e.message}`);
    process.exit(2);
  }

  app.use(oidc.router);

  app.get('/', (req, res) => {
    const who = req.userContext && req.userContext.userinfo;
    res.type('html').send(who
      ? `<!doctype html><title>Signed in</title><p id="user">${escapeHtml(who.email || who.sub)}</p><a href="/signout">Sign out</a>`
      : '<!doctype html><title>Home</title><p id="anonymous">Not signed in.</p><a href="/login">Sign in</a>');
  });

  app.get('/whoami', (req, res) => {
    const who = req.userContext && req.userContext.userinfo;
    if (!who) {
      return res.status(401).json({ error: 'not_signed_in' });
    }
    return res.json({ email: who.email ?? null, sub: who.sub, name: who.name ?? null });
  });

  app.get('/signout', oidc.forceLogoutAndRevoke());

  app.get('/logout/callback', (req, res) => {
    res.type('html').send('<!doctype html><title>Signed out</title><p id="signed-out">You are signed out.</p>');
  });

  // The middleware's callback errors (access_denied for an unassigned user, a bad state) arrive here with
  // status 401; they are shown as a page instead of Express's stack trace.
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    const status = res.statusCode >= 400 ? res.statusCode : 500;
    res.status(status).type('html').send(`<!doctype html><title>Sign-in failed</title><p id="error">${escapeHtml(err.message || String(err))}</p>`);
  });

  let ready = false;
  oidc.on('ready', () => {
    ready = true;
    console.log(`listening on http://127.0.0.1:${actual}`);
  });
  oidc.on('error', (err) => {
    // Before `ready` this is a discovery failure, which leaves the app useless; after it, a failed revoke
    // during sign-out, which the middleware reports and carries on from.
    console.error(`express-app: oidc-middleware error: ${err && err.message ? err.message : err}`);
    if (!ready) {
      process.exit(1);
    }
  });
});

server.on('error', (e) => {
  console.error(`express-app: cannot listen on 127.0.0.1:${port}: ${e.message}`);
  process.exit(1);
});

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// Stop cleanly when the test or the runner is done with the app.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
