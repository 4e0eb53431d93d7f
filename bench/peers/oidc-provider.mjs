// oidc-provider on 127.0.0.1:PORT: a client_credentials client whose access tokens are RS256 JWTs
// (resource indicators with accessTokenFormat jwt), so the work per request matches mock-idp's.
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 4402);
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'bench' };
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'svc-local',
    client_secret: 'svc-local-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  scopes: ['bsr.read'],
  features: {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'api://default',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'bsr.read', audience: 'api://default', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`));
