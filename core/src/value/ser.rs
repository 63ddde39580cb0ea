//! Any `Serialize` into a [`Value`] ([`to_value`]), with
//! `serde_json`'s data model.

use bytes::Bytes;
use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, Serializer};

use super::{Map, Value, ValueError};

/// Convert any serializable value into a [`Value`].
///
/// The data model follows `serde_json::to_value`: `serialize_bytes` becomes
/// [`Value::Binary`], unit and `None` become [`Value::Null`], structs become
/// objects, enums are externally tagged (`"Unit"`, `{"Newtype": v}`,
/// `{"Tuple": [..]}`, `{"Struct": {..}}`), and map keys must be strings,
/// numbers, booleans or chars (the latter three are turned into text).
/// Integers beyond the 64-bit range are an error.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ValueSerializer)
}

/// The serializer behind [`to_value`].
struct ValueSerializer;

fn out_of_range() -> ValueError {
    ValueError("integer out of the 64-bit range".to_owned())
}

impl Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantSeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantMapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        if let Ok(n) = i64::try_from(v) {
            Ok(Value::from(n))
        } else if let Ok(n) = u64::try_from(v) {
            Ok(Value::from(n))
        } else {
            Err(out_of_range())
        }
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        u64::try_from(v)
            .map(Value::from)
            .map_err(|_| out_of_range())
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::from(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Binary(Bytes::copy_from_slice(v)))
    }
    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, ValueError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::from(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Value, ValueError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, ValueError> {
        Ok(Value::Object(vec![(variant.to_owned(), to_value(v)?)]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSeqBuilder, ValueError> {
        Ok(VariantSeqBuilder {
            variant,
            items: SeqBuilder(Vec::with_capacity(len)),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, ValueError> {
        Ok(MapBuilder {
            entries: Vec::with_capacity(len.unwrap_or(0)),
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapBuilder, ValueError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantMapBuilder, ValueError> {
        Ok(VariantMapBuilder {
            variant,
            fields: self.serialize_map(Some(len))?,
        })
    }
}

/// Arrays, tuples and tuple structs under construction.
struct SeqBuilder(Vec<Value>);

impl SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        self.0.push(to_value(v)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Array(self.0))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        SerializeSeq::end(self)
    }
}

/// `{"Variant": [..]}` under construction.
struct VariantSeqBuilder {
    variant: &'static str,
    items: SeqBuilder,
}

impl ser::SerializeTupleVariant for VariantSeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        SerializeSeq::serialize_element(&mut self.items, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        let items = SerializeSeq::end(self.items)?;
        Ok(Value::Object(vec![(self.variant.to_owned(), items)]))
    }
}

/// Maps and structs under construction.
struct MapBuilder {
    entries: Map,
    key: Option<String>,
}

impl SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.key = Some(key.serialize(MapKeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ValueError("map value serialized before its key".to_owned()))?;
        self.entries.push((key, to_value(v)?));
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Object(self.entries))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), ValueError> {
        self.entries.push((key.to_owned(), to_value(v)?));
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Object(self.entries))
    }
}

/// `{"Variant": {..}}` under construction.
struct VariantMapBuilder {
    variant: &'static str,
    fields: MapBuilder,
}

impl ser::SerializeStructVariant for VariantMapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), ValueError> {
        ser::SerializeStruct::serialize_field(&mut self.fields, key, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        let fields = ser::SerializeStruct::end(self.fields)?;
        Ok(Value::Object(vec![(self.variant.to_owned(), fields)]))
    }
}

fn key_must_be_a_string() -> ValueError {
    ValueError("map key must be a string".to_owned())
}

/// Turns a map key into its text the way `serde_json` does: strings as they
/// are, integers, finite floats, booleans and chars as their text, unit
/// variants as their name; anything else is an error.
pub(crate) struct MapKeySerializer;

impl Serializer for MapKeySerializer {
    type Ok = String;
    type Error = ValueError;
    type SerializeSeq = ser::Impossible<String, ValueError>;
    type SerializeTuple = ser::Impossible<String, ValueError>;
    type SerializeTupleStruct = ser::Impossible<String, ValueError>;
    type SerializeTupleVariant = ser::Impossible<String, ValueError>;
    type SerializeMap = ser::Impossible<String, ValueError>;
    type SerializeStruct = ser::Impossible<String, ValueError>;
    type SerializeStructVariant = ser::Impossible<String, ValueError>;

    fn serialize_bool(self, v: bool) -> Result<String, ValueError> {
        Ok(if v { "true" } else { "false" }.to_owned())
    }
    fn serialize_i8(self, v: i8) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_i16(self, v: i16) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_i32(self, v: i32) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_i64(self, v: i64) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_i128(self, v: i128) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_u8(self, v: u8) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_u16(self, v: u16) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_u32(self, v: u32) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_u64(self, v: u64) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_u128(self, v: u128) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_f32(self, v: f32) -> Result<String, ValueError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<String, ValueError> {
        // serde_json refuses non-finite float keys: they have no JSON text.
        if v.is_finite() {
            Ok(number_text(v))
        } else {
            Err(key_must_be_a_string())
        }
    }
    fn serialize_char(self, v: char) -> Result<String, ValueError> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String, ValueError> {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, ValueError> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String, ValueError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, ValueError> {
        Err(key_must_be_a_string())
    }
}

/// The decimal text of a number the way JavaScript's `String(n)` writes it
/// for the common cases: integral values without a fraction, others with
/// Rust's shortest round-trip form.
pub(crate) fn number_text(v: f64) -> String {
    // Below 2^53 an integral f64 is exactly an i64, and JS prints it plainly.
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        itoa::Buffer::new().format(v as i64).to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        v.to_string()
    }
}
