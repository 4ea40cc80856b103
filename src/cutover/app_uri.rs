//! The connection string `switch` writes for the application. Given (`--app-uri`, a config
//! target's `app_uri`), it is written as it is. Otherwise it is derived from what the sink
//! holds now: the application's own database path and options (`retryWrites`, `w`,
//! `maxPoolSize`, `appName`, timeouts…) are kept, and what says *where and as whom* to
//! connect (scheme, hosts, credentials, TLS, `replicaSet`, `authSource`, …) comes from NEW's
//! URI. The pieces are cut from the text, never decoded and re-encoded, so an option the
//! application wrote is written back byte for byte.

use anyhow::Result;

/// URI options that belong to the connection to NEW (taken from `--to`), not to the
/// application (taken from the sink). Compared case-insensitively, as drivers do.
const CONNECTION_OPTIONS: &[&str] = &[
    "tls",
    "ssl",
    "tlscafile",
    "tlscertificatekeyfile",
    "tlscertificatekeyfilepassword",
    "tlsallowinvalidcertificates",
    "tlsallowinvalidhostnames",
    "tlsinsecure",
    "tlsdisableocspendpointcheck",
    "tlsdisablecertificaterevocationcheck",
    "replicaset",
    "authsource",
    "authmechanism",
    "authmechanismproperties",
    "directconnection",
    "loadbalanced",
    "srvservicename",
    "srvmaxhosts",
];

/// A MongoDB URI cut into its parts, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts<'a> {
    /// `mongodb://` or `mongodb+srv://`.
    pub scheme: &'a str,
    /// `user:password` (or `user`), without the `@`.
    pub userinfo: Option<&'a str>,
    pub hosts: &'a str,
    /// The default database, without the `/` (may be empty).
    pub path: &'a str,
    /// `key=value` pairs in their order.
    pub options: Vec<&'a str>,
}

pub fn parse(uri: &str) -> Option<Parts<'_>> {
    let scheme_end = uri.find("://")? + 3;
    let scheme = &uri[..scheme_end];
    if !scheme.eq_ignore_ascii_case("mongodb://") && !scheme.eq_ignore_ascii_case("mongodb+srv://")
    {
        return None;
    }
    let rest = &uri[scheme_end..];
    // The authority ends at the first '/' or '?' after the last '@' of the user part
    // (a password's '@' must be percent-encoded, but a '/' in it is often left as is, so
    // the user part is found first).
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let at = rest[..auth_end].rfind('@').or_else(|| {
        // A raw '/' in the password: the last '@' before the query then ends the user part.
        let q = rest.find('?').unwrap_or(rest.len());
        rest[..q].rfind('@')
    });
    let (userinfo, after_user) = match at {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let host_end = after_user.find(['/', '?']).unwrap_or(after_user.len());
    let hosts = &after_user[..host_end];
    if hosts.is_empty() {
        return None;
    }
    let tail = &after_user[host_end..];
    let (path, query) = match tail.strip_prefix('/') {
        Some(t) => match t.split_once('?') {
            Some((p, q)) => (p, q),
            None => (t, ""),
        },
        None => ("", tail.strip_prefix('?').unwrap_or("")),
    };
    let options = query.split('&').filter(|o| !o.is_empty()).collect();
    Some(Parts {
        scheme,
        userinfo,
        hosts,
        path,
        options,
    })
}

fn option_key(o: &str) -> String {
    o.split('=').next().unwrap_or("").to_ascii_lowercase()
}

fn is_connection_option(o: &str) -> bool {
    CONNECTION_OPTIONS.contains(&option_key(o).as_str())
}

/// The application's URI on NEW, from the one it holds now (`current`) and NEW's (`to`).
pub fn derive(current: &str, to: &str) -> Result<String> {
    let Some(cur) = parse(current) else {
        return Err(crate::exit::usage(
            "the value it holds now is not a mongodb:// or mongodb+srv:// URI, so the application's new URI \
             cannot be derived from it; give it with --app-uri URI (or app_uri on the config target)",
        ));
    };
    let Some(new) = parse(to) else {
        return Err(crate::exit::usage(
            "NEW (--to) is not a mongodb:// or mongodb+srv:// URI",
        ));
    };
    let mut options: Vec<&str> = cur
        .options
        .iter()
        .copied()
        .filter(|o| !is_connection_option(o))
        .collect();
    options.extend(
        new.options
            .iter()
            .copied()
            .filter(|o| is_connection_option(o)),
    );
    let mut out = String::from(new.scheme);
    if let Some(u) = new.userinfo {
        out.push_str(u);
        out.push('@');
    }
    out.push_str(new.hosts);
    if !cur.path.is_empty() || !options.is_empty() {
        out.push('/');
        out.push_str(cur.path);
    }
    if !options.is_empty() {
        out.push('?');
        out.push_str(&options.join("&"));
    }
    Ok(out)
}

/// The user name of a URI (percent-decoded), if it has one.
pub fn user(uri: &str) -> Option<String> {
    let u = parse(uri)?.userinfo?;
    let name = u.split(':').next().unwrap_or(u);
    Some(crate::redact::percent_decode(name))
}

/// The default database of a URI (its path), if any.
pub fn default_db(uri: &str) -> Option<String> {
    let p = parse(uri)?.path;
    (!p.is_empty()).then(|| crate::redact::percent_decode(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TO: &str = "mongodb+srv://tool:s3cr%2Ft@cluster0.abc.mongodb.net/?retryWrites=false&authSource=admin&tls=true&appName=mongoshift";

    #[test]
    fn keeps_the_apps_path_and_options_and_takes_the_connection_from_to() {
        let cur = "mongodb://app:old@legacy-host:27017,h2:27017/predixi?replicaSet=rs0&authSource=admin&retryWrites=true&w=majority&maxPoolSize=50";
        assert_eq!(
            derive(cur, TO).unwrap(),
            "mongodb+srv://tool:s3cr%2Ft@cluster0.abc.mongodb.net/predixi?retryWrites=true&w=majority&maxPoolSize=50&authSource=admin&tls=true"
        );
    }

    #[test]
    fn no_path_no_options() {
        assert_eq!(
            derive("mongodb://h:1", "mongodb://u:p@n:2").unwrap(),
            "mongodb://u:p@n:2"
        );
        assert_eq!(
            derive("mongodb://h:1/", "mongodb://n:2/?replicaSet=x").unwrap(),
            "mongodb://n:2/?replicaSet=x"
        );
        assert_eq!(
            derive("mongodb://h:1/app", "mongodb://n:2/other").unwrap(),
            "mongodb://n:2/app"
        );
    }

    #[test]
    fn option_names_are_case_insensitive() {
        assert_eq!(
            derive(
                "mongodb://h/?ReplicaSet=a&SSL=true&appName=x",
                "mongodb://n/?replicaSet=b"
            )
            .unwrap(),
            "mongodb://n/?appName=x&replicaSet=b"
        );
    }

    #[test]
    fn not_a_uri_asks_for_app_uri() {
        let e = derive("postgres://x", TO).unwrap_err();
        assert_eq!(crate::exit::code_for(&e), crate::exit::USAGE);
        assert!(e.to_string().contains("--app-uri"));
    }

    #[test]
    fn parts() {
        let p = parse("mongodb://a%40b:p/w@h1,h2/db?x=1&y=2").unwrap();
        assert_eq!(p.userinfo, Some("a%40b:p/w"));
        assert_eq!(p.hosts, "h1,h2");
        assert_eq!(p.path, "db");
        assert_eq!(p.options, vec!["x=1", "y=2"]);
        assert_eq!(user("mongodb://a%40b:p@h/").as_deref(), Some("a@b"));
        assert_eq!(
            default_db("mongodb://h/predixi?x=1").as_deref(),
            Some("predixi")
        );
        assert_eq!(default_db("mongodb://h/?x=1"), None);
    }
}
