//! Validation without building values: argument arrays, nesting depth
//! (a linear scan before any recursive parse) and placeholders.

use std::cell::Cell;
use std::fmt;

use super::decode::{bad_json, parse_array};
use crate::parser::args::Spans;
use crate::parser::DecodeError;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Check the arguments of a plain EVENT or ACK in full, for [`Args`]: the
/// same rules as binary packets get at decode time. `start` is where the
/// payload starts in `text`.
pub(crate) fn validate_args(
    text: &str,
    start: usize,
    has_name: bool,
    max_depth: usize,
) -> Result<Spans, DecodeError> {
    let payload = &text[start..];
    check_depth(payload, max_depth)?;
    let spans = parse_array(text, payload, has_name)?.spans;
    // The spans came from a pass that skips values without decoding them;
    // read each once more as a value would be, so what passes here also
    // converts (strings with lone surrogates do not, and serde_json's
    // recursion limit applies whatever `max_depth` is).
    for &(start, end) in &spans {
        let mut json = serde_json::Deserializer::from_str(&text[start as usize..end as usize]);
        Walk.deserialize(&mut json).map_err(bad_json)?;
    }
    Ok(spans)
}

/// Reads any JSON value in full, keeping nothing.
#[derive(Clone, Copy)]
struct Walk;

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// Reject nesting deeper than `max_depth` with a linear scan before any
/// recursive parsing. Brackets inside strings do not count; the JSON's
/// syntax is checked afterwards by the parser, so a malformed text only
/// makes this count meaningless, never unsafe.
pub(crate) fn check_depth(json: &str, max_depth: usize) -> Result<(), DecodeError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(DecodeError::BadPayload(format!(
                        "nesting deeper than {max_depth}"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Check every placeholder in `json` refers to an existing attachment.
pub(super) fn check_placeholders(json: &str, attachments: usize) -> Result<(), DecodeError> {
    let bad = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(json);
    let walked = PlaceholderWalk {
        attachments,
        bad: &bad,
    }
    .deserialize(&mut de);
    if bad.get() {
        return Err(DecodeError::BadPlaceholder);
    }
    walked.map_err(bad_json)?;
    Ok(())
}

/// Walks a JSON value checking placeholders; reports what it saw so a map
/// can tell `"_placeholder": true` and `"num": <integer>`.
#[derive(Clone, Copy)]
struct PlaceholderWalk<'c> {
    attachments: usize,
    bad: &'c Cell<bool>,
}

enum Seen {
    True,
    Index(u64),
    Other,
}

impl<'de> DeserializeSeed<'de> for PlaceholderWalk<'_> {
    type Value = Seen;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Seen, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PlaceholderWalk<'_> {
    type Value = Seen;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Seen, E> {
        Ok(if v { Seen::True } else { Seen::Other })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Seen, E> {
        Ok(Seen::Index(v))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Seen, E> {
        Ok(Seen::Other)
    }
    fn visit_f64<E>(self, v: f64) -> Result<Seen, E> {
        // `1.0` is the number 1 to JavaScript.
        if v >= 0.0 && v.fract() == 0.0 && v < 9_007_199_254_740_992.0 {
            Ok(Seen::Index(v as u64))
        } else {
            Ok(Seen::Other)
        }
    }
    fn visit_str<E>(self, _: &str) -> Result<Seen, E> {
        Ok(Seen::Other)
    }
    fn visit_unit<E>(self) -> Result<Seen, E> {
        Ok(Seen::Other)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Seen, S::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(Seen::Other)
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Seen, M::Error> {
        let mut placeholder = false;
        let mut num = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(self)?;
            // Later duplicates win, as with JSON.parse.
            match key {
                Key::Placeholder => placeholder = matches!(value, Seen::True),
                Key::Num => num = Some(value),
                Key::Other => {}
            }
        }
        if placeholder {
            match num {
                Some(Seen::Index(n)) if n < self.attachments as u64 => {}
                _ => {
                    self.bad.set(true);
                    return Err(de::Error::custom("invalid placeholder"));
                }
            }
        }
        Ok(Seen::Other)
    }
}

enum Key {
    Placeholder,
    Num,
    Other,
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "_placeholder" => Key::Placeholder,
            "num" => Key::Num,
            _ => Key::Other,
        })
    }
}
