//! Admitting admin UI clients: credentials, then a session id the UI
//! keeps to reconnect without asking again (as the reference's
//! `session` event).

use std::collections::VecDeque;
use std::sync::Mutex;

use socketio_core::Value;

use super::options::AdminAuth;

/// Sessions remembered; the oldest is forgotten beyond (its UI then shows
/// the login form again).
const MAX_SESSIONS: usize = 64;

/// What [`Gate::admit`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Refused: wrong or missing credentials.
    Refused,
    /// Admitted, nothing to tell the UI.
    Admitted,
    /// Admitted on credentials: the UI is given this session id.
    NewSession(String),
}

/// Checks admin UI clients.
pub(crate) struct Gate {
    auth: AdminAuth,
    sessions: Mutex<VecDeque<String>>,
}

impl Gate {
    pub(crate) fn new(auth: AdminAuth) -> Gate {
        Gate {
            auth,
            sessions: Mutex::default(),
        }
    }

    /// Decide on a client's auth object.
    pub(crate) fn admit(&self, auth: Option<&Value>) -> Admission {
        let auth = auth.unwrap_or(&Value::Null);
        let valid = match &self.auth {
            AdminAuth::None => return Admission::Admitted,
            AdminAuth::Basic { username, password } => {
                let given = |key| auth.get(key).and_then(Value::as_str);
                given("username") == Some(username.as_str())
                    && given("password").is_some_and(|p| same_secret(p, password))
            }
            AdminAuth::Check(check) => check(auth),
        };
        if valid {
            return Admission::NewSession(self.new_session());
        }
        let session = auth.get("sessionId").and_then(Value::as_str);
        match session {
            Some(id) if self.knows(id) => Admission::Admitted,
            _ => Admission::Refused,
        }
    }

    fn knows(&self, id: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.iter().any(|s| same_secret(s, id))
    }

    fn new_session(&self) -> String {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() == MAX_SESSIONS {
            sessions.pop_front();
        }
        sessions.push_back(id.clone());
        id
    }
}

/// Compare secrets in time independent of where they differ.
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(pairs: &[(&str, &str)]) -> Value {
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        socketio_core::value::to_value(&map).unwrap()
    }

    #[test]
    fn basic_credentials_open_a_session_that_admits_later() {
        let gate = Gate::new(AdminAuth::basic("admin", "secret"));
        assert_eq!(gate.admit(None), Admission::Refused);
        let wrong = object(&[("username", "admin"), ("password", "secreT")]);
        assert_eq!(gate.admit(Some(&wrong)), Admission::Refused);
        let right = object(&[("username", "admin"), ("password", "secret")]);
        let Admission::NewSession(id) = gate.admit(Some(&right)) else {
            panic!("valid credentials refused");
        };
        let session = object(&[("sessionId", &id)]);
        assert_eq!(gate.admit(Some(&session)), Admission::Admitted);
        let forged = object(&[("sessionId", "00")]);
        assert_eq!(gate.admit(Some(&forged)), Admission::Refused);
    }

    #[test]
    fn sessions_are_bounded() {
        let gate = Gate::new(AdminAuth::check(|_| true));
        let Admission::NewSession(first) = gate.admit(None) else {
            panic!("check admitted nothing");
        };
        for _ in 0..MAX_SESSIONS {
            gate.admit(None);
        }
        assert!(!gate.knows(&first));
        assert_eq!(gate.sessions.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn none_admits_anyone_and_check_decides() {
        assert_eq!(Gate::new(AdminAuth::None).admit(None), Admission::Admitted);
        let gate = Gate::new(AdminAuth::check(|auth| {
            auth.get("token").and_then(Value::as_str) == Some("t")
        }));
        assert_eq!(
            gate.admit(Some(&object(&[("token", "x")]))),
            Admission::Refused
        );
        assert!(matches!(
            gate.admit(Some(&object(&[("token", "t")]))),
            Admission::NewSession(_)
        ));
    }
}
