//! RS256 signing of the JWTs a plan asks for. Runs outside the tenant lock: signing is the slow part.

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Map, Value};

use crate::core::flows::{MintPlan, at_hash};
use crate::keys::KeyMaterial;

/// Signs claims with a key, header `{"alg":"RS256","kid":…}` as Okta's.
pub fn sign(claims: &Map<String, Value>, key: &KeyMaterial) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    // Okta's JWT headers carry only `kid` and `alg`.
    header.typ = None;
    // Encoding a JSON map with a valid RSA key cannot fail; a failure would be a defect in the key setup.
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("RS256 signing with a loaded key")
}

/// The signed tokens of a plan.
pub struct Signed {
    pub access_token: String,
    pub id_token: Option<String>,
}

pub fn sign_plan(plan: &MintPlan) -> Signed {
    let access_token = sign(&plan.access_claims, &plan.access_key);
    let id_token = plan.id_claims.as_ref().map(|c| {
        let mut c = c.clone();
        c.insert("at_hash".into(), Value::String(at_hash(&access_token)));
        sign(&c, &plan.id_key)
    });
    Signed { access_token, id_token }
}
