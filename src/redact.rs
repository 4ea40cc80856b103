//! The one place credentials are scrubbed for display.
//!
//! Two layers: URIs are rendered with their password masked, and every secret
//! the process has seen (URI passwords, S3 secret keys, session tokens) is
//! registered so that any text printed — including error messages from the
//! driver or the AWS SDK — can be scrubbed of it before it leaves the process.

use std::sync::{Mutex, OnceLock};

const MASK: &str = "****";

/// Query options in a MongoDB URI whose values are secrets.
const SECRET_QUERY_KEYS: &[&str] = &[
    "authmechanismproperties",
    "tlscertificatekeyfilepassword",
    "sslclientcertificatekeypassword",
    "password",
];

fn registry() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Remember a secret so that `scrub` removes it from any text.
pub fn register_secret(secret: &str) {
    // Very short strings would mask ordinary words; such passwords are still
    // hidden in URIs by `uri`, which works by position, not by value.
    if secret.len() < 4 {
        return;
    }
    let mut secrets = registry().lock().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_string());
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Register the password (raw and percent-decoded) and secret query options of a URI.
pub fn register_uri(uri: &str) {
    if let Some(pw) = split_uri(uri).password {
        register_secret(pw);
        register_secret(&percent_decode(pw));
    }
    if let Some((_, query)) = uri.split_once('?') {
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=') {
                if SECRET_QUERY_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                    register_secret(v);
                    register_secret(&percent_decode(v));
                }
            }
        }
    }
}

struct UriParts<'a> {
    /// Byte range of the password inside the URI.
    password_range: Option<(usize, usize)>,
    password: Option<&'a str>,
    /// Byte offset where the host list starts (after `@`, or after the scheme).
    hosts_start: usize,
    hosts_end: usize,
}

/// Splits anything that looks like a connection string, however malformed: a missing
/// `:` or `/` in the scheme (`mongodb//u:p@h`, `mongodb:/u:p@h`), no scheme at all
/// (`u:p@h`), or an unescaped `/` in the password. Credentials are what stands before the
/// last `@` ahead of the query, so a password is masked whatever else is wrong.
fn split_uri(uri: &str) -> UriParts<'_> {
    let start = authority_start(uri);
    let query = uri[start..].find('?').map_or(uri.len(), |i| start + i);
    let region = &uri[start..query];
    let (password_range, hosts_start) = match region.rfind('@') {
        Some(at) => {
            let userinfo = &region[..at];
            let range = userinfo
                .find(':')
                .map(|colon| (start + colon + 1, start + at));
            (range, start + at + 1)
        }
        None => (None, start),
    };
    let hosts_end = uri[hosts_start..query]
        .find('/')
        .map_or(query, |i| hosts_start + i);
    UriParts {
        password_range,
        password: password_range.map(|(a, b)| &uri[a..b]),
        hosts_start,
        hosts_end,
    }
}

/// Where the authority (userinfo and hosts) begins: after `://`, or after a misspelled
/// `mongodb[+srv]` scheme and whatever `:` and `/` follow it, else at the start.
fn authority_start(uri: &str) -> usize {
    if let Some(i) = uri.find("://") {
        return i + 3;
    }
    let lower = uri.to_ascii_lowercase();
    for scheme in ["mongodb+srv", "mongodb"] {
        if lower.starts_with(scheme) {
            let rest = &uri[scheme.len()..];
            let skipped = rest.len() - rest.trim_start_matches([':', '/']).len();
            if skipped > 0 {
                return scheme.len() + skipped;
            }
        }
    }
    0
}

/// A URI fit for display: password and secret query options masked.
pub fn uri(uri: &str) -> String {
    let mut out = uri.to_string();
    if let Some((start, end)) = split_uri(uri).password_range {
        out.replace_range(start..end, MASK);
    }
    if let Some((base, query)) = out.clone().split_once('?') {
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if SECRET_QUERY_KEYS.contains(&k.to_ascii_lowercase().as_str()) => {
                    format!("{k}={MASK}")
                }
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{base}?{}", masked.join("&"));
    }
    out
}

/// The comma-separated host list of a URI, without credentials.
pub fn hosts(uri: &str) -> String {
    let p = split_uri(uri);
    if p.hosts_end > p.hosts_start {
        uri[p.hosts_start..p.hosts_end].to_string()
    } else {
        MASK.to_string()
    }
}

/// Remove every registered secret, and any password embedded in a URI, from `text`.
pub fn scrub(text: &str) -> String {
    let mut out = mask_embedded_uris(text);
    let secrets = registry().lock().unwrap_or_else(|e| e.into_inner());
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// A document value (an `_id`) shown without its content, for `verify --redact-values`:
/// its BSON type and the first 12 hex digits of the SHA-256 of its bytes, so that one
/// difference can still be matched across runs and sides. Not encryption: a guessable value
/// (a small number) can be found by hashing guesses.
pub fn value(v: &mongodb::bson::Bson) -> serde_json::Value {
    use sha2::{Digest, Sha256};
    let bytes = mongodb::bson::to_vec(&mongodb::bson::doc! { "v": v.clone() }).unwrap_or_default();
    let hex: String = Sha256::digest(&bytes)[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    serde_json::json!({ "$redacted": format!("{:?}:{hex}", v.element_type()) })
}

/// Masks `scheme://user:password@` wherever it appears in free text.
fn mask_embedded_uris(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(idx) = rest.find("://") {
        let (head, tail) = rest.split_at(idx + 3);
        out.push_str(head);
        // Userinfo cannot contain whitespace, quotes or '/'; stop at the first of those.
        let stop = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '"' | '\'' | '>' | ')'))
            .unwrap_or(tail.len());
        let authority = &tail[..stop];
        match (authority.rfind('@'), authority.find(':')) {
            // A `${VAR}` reference is not a password: a command we print reads it from the
            // environment (`cli::side_arg`), and masking it would break the command.
            (Some(at), Some(colon)) if colon < at && !is_var_ref(&authority[colon + 1..at]) => {
                out.push_str(&authority[..=colon]);
                out.push_str(MASK);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[stop..];
    }
    out.push_str(rest);
    out
}

fn is_var_ref(s: &str) -> bool {
    s.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// URI userinfo is percent-encoded like a path segment (`+` is itself, not a space);
/// anything that does not decode to UTF-8 is kept as written.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None if b[i] == b'%' => return s.to_string(),
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_password_in_uri() {
        assert_eq!(
            uri("mongodb://app:s3cr3t@127.0.0.1:1/db?authSource=admin"),
            "mongodb://app:****@127.0.0.1:1/db?authSource=admin"
        );
        assert_eq!(uri("mongodb://h1,h2/"), "mongodb://h1,h2/");
        assert_eq!(uri("mongodb://user@h1/"), "mongodb://user@h1/");
        // '@' inside a password must be percent-encoded, but a lone '@' in the path is not userinfo.
        assert_eq!(
            uri("mongodb+srv://a:p%40ss@cluster0.example.net/?retryWrites=true"),
            "mongodb+srv://a:****@cluster0.example.net/?retryWrites=true"
        );
    }

    #[test]
    fn a_password_read_from_the_environment_is_not_masked_in_text() {
        assert_eq!(
            scrub("run `mongoshift freeze --uri \"mongodb://root:${MONGOSHIFT_PASSWORD}@h:1/?tls=true\" --off`"),
            "run `mongoshift freeze --uri \"mongodb://root:${MONGOSHIFT_PASSWORD}@h:1/?tls=true\" --off`"
        );
        assert_eq!(scrub("mongodb://root:pw@h:1/"), "mongodb://root:****@h:1/");
    }

    #[test]
    fn masks_secret_query_options() {
        let u = "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok123";
        assert_eq!(
            uri(u),
            "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=****"
        );
    }

    #[test]
    fn hosts_only() {
        assert_eq!(hosts("mongodb://app:pw@a:1,b:2/db?x=1"), "a:1,b:2");
        assert_eq!(hosts("mongodb://a:1"), "a:1");
    }

    #[test]
    fn scrub_removes_registered_and_embedded() {
        register_uri("mongodb://u:Zq9%21secret@h/");
        let text = "auth failed for Zq9!secret and Zq9%21secret at mongodb://x:other@h2/";
        let s = scrub(text);
        assert!(!s.contains("Zq9"), "{s}");
        assert!(!s.contains("other"), "{s}");
        assert!(s.contains("mongodb://x:****@h2/"), "{s}");
    }

    #[test]
    fn masks_passwords_in_malformed_uris() {
        for (raw, shown) in [
            (
                "mongodb//user:Secret123@127.0.0.1:27518/",
                "mongodb//user:****@127.0.0.1:27518/",
            ),
            (
                "mongodb:/user:Secret123@127.0.0.1:27518/",
                "mongodb:/user:****@127.0.0.1:27518/",
            ),
            ("user:Secret123@127.0.0.1", "user:****@127.0.0.1"),
            (
                "mongodb://user:Sec/ret123@h:1/db?x=1",
                "mongodb://user:****@h:1/db?x=1",
            ),
            ("mongodb:user:Secret123@h", "mongodb:user:****@h"),
            (
                "MONGODB+SRV//user:Secret123@c.example.net",
                "MONGODB+SRV//user:****@c.example.net",
            ),
        ] {
            assert_eq!(uri(raw), shown, "{raw}");
            register_uri(raw);
            let s = scrub(&format!("invalid URI {raw}: no scheme"));
            assert!(!s.contains("Secret123") && !s.contains("Sec/ret123"), "{s}");
        }
        assert_eq!(
            hosts("mongodb//user:Secret123@127.0.0.1:27518/"),
            "127.0.0.1:27518"
        );
        assert_eq!(hosts("user:pw@h1,h2"), "h1,h2");
        assert_eq!(uri("127.0.0.1:27017"), "127.0.0.1:27017");
    }

    #[test]
    fn short_secrets_are_not_registered_but_uri_masking_still_works() {
        register_secret("ab");
        assert_eq!(scrub("about"), "about");
        assert_eq!(uri("mongodb://u:ab@h/"), "mongodb://u:****@h/");
    }

    #[test]
    fn redacted_values_keep_type_and_identity_but_not_content() {
        use mongodb::bson::Bson;
        let a = value(&Bson::String("alice@example.com".into()));
        assert!(!a.to_string().contains("alice"), "{a}");
        assert!(a["$redacted"].as_str().unwrap().starts_with("String:"));
        assert_eq!(a, value(&Bson::String("alice@example.com".into())));
        assert_ne!(value(&Bson::Int32(1)), value(&Bson::Double(1.0)));
    }
}
