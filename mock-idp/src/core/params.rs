//! Request parameters (query string or form body) with Okta's duplicate-parameter rule.

use std::collections::BTreeMap;

use super::errors::{DUPLICATE_PARAMS, OAuthError};

/// Parameters of one request; a name given twice is refused, as Okta refuses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text.
    pub fn parse(raw: &str) -> Result<Self, OAuthError> {
        Self::from_pairs(form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())))
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, OAuthError> {
        let mut m = BTreeMap::new();
        for (k, v) in pairs {
            if m.insert(k, v).is_some() {
                return Err(OAuthError::invalid_request(DUPLICATE_PARAMS));
            }
        }
        Ok(Params(m))
    }

    /// The value, with an empty value treated as absent (as Okta treats `state=`).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn contains(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    /// Merges another set (query into body); a name in both is a duplicate.
    pub fn merge(mut self, other: Params) -> Result<Self, OAuthError> {
        for (k, v) in other.0 {
            if self.0.insert(k, v).is_some() {
                return Err(OAuthError::invalid_request(DUPLICATE_PARAMS));
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_with_oktas_text() {
        let e = Params::parse("a=1&b=2&a=3").unwrap_err();
        assert_eq!(e.description, "The request contained multiple parameters with the same name.");
        let p = Params::parse("a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert!(p.contains("b"));
        assert_eq!(p.get("c"), Some("x y"));
    }
}
