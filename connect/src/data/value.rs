//! Connect's values: primitives, arrays, maps and structs. Logical types keep their physical
//! form (a date is an `Int32` of days, a decimal the `Bytes` of its unscaled value), as they are
//! on the wire; [`super::logical`] converts.

use bytes::Bytes;

use super::{Schema, SchemaRef, Type};
use crate::error::{ConnectError, Result};

/// A value, with or without a schema. Maps compare as maps: equal when they hold the same
/// entries, in any order (a map read back from JSON comes in key order).
#[derive(Debug, Clone)]
pub enum Value {
    /// No value (a tombstone, an unset optional field).
    Null,
    /// `int8`.
    Int8(i8),
    /// `int16`.
    Int16(i16),
    /// `int32` (and the logical `Date` and `Time`).
    Int32(i32),
    /// `int64` (and the logical `Timestamp`).
    Int64(i64),
    /// `float32`.
    Float32(f32),
    /// `float64`.
    Float64(f64),
    /// `boolean`.
    Boolean(bool),
    /// `string`.
    String(String),
    /// `bytes` (and the logical `Decimal`).
    Bytes(Bytes),
    /// `array`.
    Array(Vec<Value>),
    /// `map`, in insertion order (keys need not be hashable: Connect allows any schema).
    Map(Vec<(Value, Value)>),
    /// `struct`.
    Struct(Struct),
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Int8(a), Value::Int8(b)) => a == b,
            (Value::Int16(a), Value::Int16(b)) => a == b,
            (Value::Int32(a), Value::Int32(b)) => a == b,
            (Value::Int64(a), Value::Int64(b)) => a == b,
            (Value::Float32(a), Value::Float32(b)) => a == b,
            (Value::Float64(a), Value::Float64(b)) => a == b,
            (Value::Boolean(a), Value::Boolean(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len() && a.iter().all(|entry| b.contains(entry))
            }
            (Value::Struct(a), Value::Struct(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    /// The name of the value's type (`null` for [`Value::Null`]).
    pub fn type_name(&self) -> &'static str {
        match self.schema_type() {
            Some(ty) => ty.name(),
            None => "null",
        }
    }

    /// The type a schemaless value has (none for null).
    pub fn schema_type(&self) -> Option<Type> {
        Some(match self {
            Value::Null => return None,
            Value::Int8(_) => Type::Int8,
            Value::Int16(_) => Type::Int16,
            Value::Int32(_) => Type::Int32,
            Value::Int64(_) => Type::Int64,
            Value::Float32(_) => Type::Float32,
            Value::Float64(_) => Type::Float64,
            Value::Boolean(_) => Type::Boolean,
            Value::String(_) => Type::String,
            Value::Bytes(_) => Type::Bytes,
            Value::Array(_) => Type::Array,
            Value::Map(_) => Type::Map,
            Value::Struct(_) => Type::Struct,
        })
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The struct, if this is one.
    pub fn as_struct(&self) -> Option<&Struct> {
        match self {
            Value::Struct(s) => Some(s),
            _ => None,
        }
    }

    /// The value of string key `key` of a map.
    pub fn map_get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A map with string keys, from pairs.
    pub fn string_map<I, K>(entries: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::String(k.into()), v))
                .collect(),
        )
    }

    /// The value as an `i64`, if it is an integer of any width.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int8(v) => Some(i64::from(*v)),
            Value::Int16(v) => Some(i64::from(*v)),
            Value::Int32(v) => Some(i64::from(*v)),
            Value::Int64(v) => Some(*v),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

/// A struct value: a value for each field of its schema (Kafka Connect's `Struct`).
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    schema: SchemaRef,
    values: Vec<Value>,
}

impl Struct {
    /// An empty struct of `schema` (every field null until put).
    ///
    /// `schema` should be a struct schema; a struct of another schema has no fields to put.
    pub fn new(schema: SchemaRef) -> Struct {
        let values = vec![Value::Null; schema.fields.len()];
        Struct { schema, values }
    }

    /// A struct of `schema` holding `values`, one per field in field order, each checked
    /// against its field's schema (a connector building rows it read, without a look-up per
    /// field by name).
    pub fn from_values(schema: SchemaRef, values: Vec<Value>) -> Result<Struct> {
        if values.len() != schema.fields.len() {
            return Err(ConnectError::Data(format!(
                "struct {} has {} fields, not {}",
                schema.name.as_deref().unwrap_or("(unnamed)"),
                schema.fields.len(),
                values.len()
            )));
        }
        for (field, value) in schema.fields.iter().zip(&values) {
            field.schema.validate(value, &field.name)?;
        }
        Ok(Struct { schema, values })
    }

    /// The struct's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Sets field `name`, checking the value against the field's schema.
    pub fn put(&mut self, name: &str, value: Value) -> Result<&mut Struct> {
        let field = self.schema.field(name).ok_or_else(|| {
            ConnectError::Data(format!(
                "{name} is not a field of struct {}",
                self.schema.name.as_deref().unwrap_or("(unnamed)")
            ))
        })?;
        field.schema.validate(&value, name)?;
        let index = field.index;
        self.values[index] = value;
        Ok(self)
    }

    /// Field `name`'s value (its schema's default when unset), or `None` when the schema has no
    /// such field.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let field = self.schema.field(name)?;
        Some(self.get_at(field.index))
    }

    /// The value of the field at `index`, or its default when unset.
    pub fn get_at(&self, index: usize) -> &Value {
        match (self.values.get(index), self.schema.fields.get(index)) {
            (Some(Value::Null), Some(field)) => {
                field.schema.default.as_ref().unwrap_or(&Value::Null)
            }
            (Some(value), _) => value,
            (None, _) => &Value::Null,
        }
    }

    /// The values without defaults filled in, in field order.
    pub fn raw_values(&self) -> &[Value] {
        &self.values
    }

    /// Checks that every required field without a default is set.
    pub fn validate(&self) -> Result<()> {
        for field in &self.schema.fields {
            field
                .schema
                .validate(self.get_at(field.index), &field.name)?;
        }
        Ok(())
    }
}

/// Whether `schema` (when given) and `value` agree, so that a converter or transform may rely
/// on the value's shape.
pub fn validate_optional(schema: Option<&Schema>, value: &Value, at: &str) -> Result<()> {
    match schema {
        Some(schema) => schema.validate(value, at),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SchemaBuilder;

    #[test]
    fn a_struct_reads_defaults_for_unset_fields_and_refuses_unknown_ones() {
        let schema = SchemaBuilder::struct_()
            .field(
                "n",
                SchemaBuilder::int32()
                    .default_value(Value::Int32(7))
                    .build()
                    .unwrap(),
            )
            .field("s", SchemaBuilder::string().optional().build().unwrap())
            .build()
            .unwrap();
        let mut s = Struct::new(schema);
        assert_eq!(s.get("n"), Some(&Value::Int32(7)));
        assert_eq!(s.get("s"), Some(&Value::Null));
        assert_eq!(s.get("nope"), None);
        s.put("s", "x".into()).unwrap();
        assert!(s.put("n", Value::Int64(1)).is_err());
        let err = s.put("other", Value::Null).unwrap_err();
        assert!(err.to_string().contains("other is not a field"), "{err}");
        s.validate().unwrap();
    }

    #[test]
    fn maps_are_equal_in_any_order() {
        let a = Value::string_map([("x", Value::Int32(1)), ("y", Value::Int32(2))]);
        let b = Value::string_map([("y", Value::Int32(2)), ("x", Value::Int32(1))]);
        let c = Value::string_map([("y", Value::Int32(2)), ("x", Value::Int32(3))]);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
