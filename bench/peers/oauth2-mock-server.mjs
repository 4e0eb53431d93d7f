// oauth2-mock-server on 127.0.0.1:PORT, RS256-signed JWT access tokens for client_credentials.
import { OAuth2Server } from 'oauth2-mock-server';

const port = Number(process.env.PORT || 4401);
const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
await server.start(port, '127.0.0.1');
console.log(`listening on http://127.0.0.1:${port}`);
