//! Query strings decoded the way browsers' `URLSearchParams` and Node's
//! `querystring` do (`application/x-www-form-urlencoded`): pairs split on
//! `&`, name and value split on the first `=`, `+` is a space, `%XX` is a
//! byte, a `%` not followed by two hex digits stays literal, and bytes that
//! are not UTF-8 become U+FFFD.

use std::borrow::Cow;

/// The first parameter named `name` in `query` (the part after `?`, without
/// it), compared after decoding, with its value decoded. `Some("")` for a
/// bare `name` or `name=`.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    query_pairs(query).find(|(n, _)| n == name).map(|(_, v)| v)
}

/// Iterates over the decoded (name, value) pairs of `query`, in order. Empty
/// segments (`a=1&&b=2`) are skipped.
pub fn query_pairs(query: &str) -> QueryPairs<'_> {
    QueryPairs { rest: query }
}

/// Iterator returned by [`query_pairs`].
#[derive(Debug, Clone)]
pub struct QueryPairs<'a> {
    rest: &'a str,
}

impl<'a> Iterator for QueryPairs<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (segment, rest) = match self.rest.find('&') {
                Some(amp) => (&self.rest[..amp], &self.rest[amp + 1..]),
                None => (self.rest, ""),
            };
            self.rest = rest;
            if segment.is_empty() {
                continue;
            }
            let (name, value) = match segment.find('=') {
                Some(eq) => (&segment[..eq], &segment[eq + 1..]),
                None => (segment, ""),
            };
            return Some((form_decode(name), form_decode(value)));
        }
    }
}

/// Decodes one form-encoded component: `+` to space, `%XX` to the byte,
/// invalid escapes kept literally, invalid UTF-8 replaced by U+FFFD. Borrows
/// when there is nothing to decode.
pub fn form_decode(component: &str) -> Cow<'_, str> {
    if !component.bytes().any(|b| b == b'+' || b == b'%') {
        return Cow::Borrowed(component);
    }
    let bytes = component.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                decoded.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(hi), Some(lo)) => {
                    decoded.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    decoded.push(b'%');
                    i += 1;
                }
            },
            other => {
                decoded.push(other);
                i += 1;
            }
        }
    }
    match String::from_utf8(decoded) {
        Ok(text) => Cow::Owned(text),
        Err(not_utf8) => Cow::Owned(String::from_utf8_lossy(not_utf8.as_bytes()).into_owned()),
    }
}

fn hex(digit: &u8) -> Option<u8> {
    (*digit as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_io_handshake_query() {
        let q = "EIO=4&transport=polling&t=N8hyd6w";
        assert_eq!(query_param(q, "EIO").as_deref(), Some("4"));
        assert_eq!(query_param(q, "transport").as_deref(), Some("polling"));
        assert_eq!(query_param(q, "t").as_deref(), Some("N8hyd6w"));
        assert_eq!(query_param(q, "sid"), None);
        assert!(matches!(query_param(q, "EIO"), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn escapes_and_plus() {
        let q = "sid=ab%2Bc%3D%3D&name=hello+world&utf8=%C3%A9t%C3%A9&bad=100%&half=%4&odd=%zz";
        assert_eq!(query_param(q, "sid").as_deref(), Some("ab+c=="));
        assert_eq!(query_param(q, "name").as_deref(), Some("hello world"));
        assert_eq!(query_param(q, "utf8").as_deref(), Some("été"));
        assert_eq!(query_param(q, "bad").as_deref(), Some("100%"));
        assert_eq!(query_param(q, "half").as_deref(), Some("%4"));
        assert_eq!(query_param(q, "odd").as_deref(), Some("%zz"));
        assert_eq!(form_decode("%FF").as_ref(), "\u{FFFD}");
    }

    #[test]
    fn names_are_decoded_and_first_wins() {
        let q = "a%20b=1&a+b=2&&flag&empty=&x=1=2";
        assert_eq!(query_param(q, "a b").as_deref(), Some("1"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "x").as_deref(), Some("1=2"));
        let pairs: Vec<(String, String)> = query_pairs(q)
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(pairs.len(), 5);
        assert_eq!(query_pairs("").count(), 0);
    }
}
