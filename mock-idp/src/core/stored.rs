//! serde helpers for the state file of `mock-idp --state`: the fields whose types deliberately have no serde
//! implementation of their own ([`Secret`], so an API answer cannot serialise a password by accident, and
//! [`FamilyId`], whose module uses nothing but `std`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ids::Secret;
use super::refresh::FamilyId;

/// `Option<Secret>` as an optional string (the state file holds secrets; it is written with mode 0600).
pub mod opt_secret {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().map(Secret::expose).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Secret::new))
    }
}

/// `Option<FamilyId>` as an optional number.
pub mod opt_family {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<FamilyId>, s: S) -> Result<S::Ok, S::Error> {
        v.map(|f| f.0).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FamilyId>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(FamilyId))
    }
}
