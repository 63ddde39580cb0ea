//! Serving the admin UI's web app (the `ui/dist` directory of the npm
//! package `@socket.io/admin-ui`) from this server, behind HTTP Basic
//! authentication with the admin namespace's credentials.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use socketio_core::Value;

use super::auth::same_secret;
use super::options::{AdminAuth, AdminOptions};
use crate::web::Guard;
use crate::StaticFiles;

/// The realm browsers show when asking for the credentials.
const REALM: &str = "Socket.IO Admin UI";

/// Decides on a user name and password.
type CredentialCheck = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

impl StaticFiles {
    /// Serve the admin UI's web app from `dir` (the `ui/dist` directory
    /// of the npm package `@socket.io/admin-ui`, installed locally: no
    /// CDN) at `url` (say `/admin-ui`), asking browsers for HTTP Basic
    /// credentials checked as `options`' auth checks the admin namespace's:
    /// [`AdminAuth::basic`]'s username and password, or
    /// [`AdminAuth::check`] given `{"username": .., "password": ..}`; no
    /// credentials with [`AdminAuth::None`]. The UI then logs in to the
    /// admin namespace on its own.
    ///
    /// ```no_run
    /// use socketio::{AdminAuth, AdminOptions, Server, StaticFiles};
    ///
    /// let admin = AdminOptions::new(AdminAuth::basic("admin", "changeit"));
    /// let ui = "node_modules/@socket.io/admin-ui/ui/dist";
    /// let server = Server::builder()
    ///     .static_files(StaticFiles::new().admin_ui("/admin-ui", ui, &admin))
    ///     .build();
    /// server.instrument(admin).expect("instrumented once");
    /// ```
    pub fn admin_ui(self, url: &str, dir: impl AsRef<Path>, options: &AdminOptions) -> StaticFiles {
        let mut prefix = url.trim_end_matches('/').to_owned();
        if !prefix.starts_with('/') {
            prefix.insert(0, '/');
        }
        let files = self.dir(&prefix, dir);
        let check: CredentialCheck = match &options.auth {
            AdminAuth::None => return files,
            AdminAuth::Basic { username, password } => {
                let (username, password) = (username.clone(), password.clone());
                Arc::new(move |user, pass| {
                    same_secret(user, &username) & same_secret(pass, &password)
                })
            }
            AdminAuth::Check(check) => {
                let check = check.clone();
                Arc::new(move |user, pass| {
                    let login = json!({ "username": user, "password": pass });
                    socketio_core::value::to_value(&login).is_ok_and(|v: Value| check(&v))
                })
            }
        };
        files.guard(Guard {
            prefix,
            challenge: format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""),
            allows: Arc::new(move |authorization| {
                basic_credentials(authorization).is_some_and(|(user, pass)| check(&user, &pass))
            }),
        })
    }
}

/// The user and password of an `Authorization: Basic ..` header.
fn basic_credentials(authorization: Option<&str>) -> Option<(String, String)> {
    let (scheme, encoded) = authorization?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(decode_base64(encoded.trim())?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// Standard base64 (padding optional); `None` for anything else.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let digits = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in digits.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_headers_decode() {
        // "admin:s3cret", and one with a colon in the password.
        assert_eq!(
            basic_credentials(Some("Basic YWRtaW46czNjcmV0")),
            Some(("admin".into(), "s3cret".into()))
        );
        assert_eq!(
            basic_credentials(Some("basic YTpiOmM=")),
            Some(("a".into(), "b:c".into()))
        );
        assert_eq!(basic_credentials(Some("Bearer YWRtaW46czNjcmV0")), None);
        assert_eq!(basic_credentials(Some("Basic not*base64")), None);
        assert_eq!(basic_credentials(None), None);
    }
}
