//! Connect's schemas: a type, optionality, a default, a name/version/doc, parameters, and the
//! parts of composite types (a struct's fields, an array's items, a map's keys and values).

use std::sync::Arc;

use super::Value;
use crate::error::{ConnectError, Result};

/// A schema, shared: records, structs and transforms hand the same schema around.
pub type SchemaRef = Arc<Schema>;

/// The physical type of a schema (Kafka Connect's `Schema.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// 8-bit signed integer.
    Int8,
    /// 16-bit signed integer.
    Int16,
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
    /// 32-bit IEEE 754 float.
    Float32,
    /// 64-bit IEEE 754 float.
    Float64,
    /// Boolean.
    Boolean,
    /// UTF-8 string.
    String,
    /// Byte array.
    Bytes,
    /// A list of values of one schema.
    Array,
    /// Keys of one schema to values of another.
    Map,
    /// Named fields, each with its schema.
    Struct,
}

impl Type {
    /// Connect's lower-case name (`int32`, `struct`, ...), as in JSON schemas and SMT configs.
    pub fn name(self) -> &'static str {
        match self {
            Type::Int8 => "int8",
            Type::Int16 => "int16",
            Type::Int32 => "int32",
            Type::Int64 => "int64",
            Type::Float32 => "float32",
            Type::Float64 => "float64",
            Type::Boolean => "boolean",
            Type::String => "string",
            Type::Bytes => "bytes",
            Type::Array => "array",
            Type::Map => "map",
            Type::Struct => "struct",
        }
    }

    /// The type named `name` (case-insensitive, as Connect reads them).
    pub fn from_name(name: &str) -> Option<Type> {
        Some(match name.to_ascii_lowercase().as_str() {
            "int8" => Type::Int8,
            "int16" => Type::Int16,
            "int32" => Type::Int32,
            "int64" => Type::Int64,
            "float32" => Type::Float32,
            "float64" => Type::Float64,
            "boolean" => Type::Boolean,
            "string" => Type::String,
            "bytes" => Type::Bytes,
            "array" => Type::Array,
            "map" => Type::Map,
            "struct" => Type::Struct,
            _ => return None,
        })
    }

    /// Whether the type has no parts (everything but array, map and struct).
    pub fn is_primitive(self) -> bool {
        !matches!(self, Type::Array | Type::Map | Type::Struct)
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A field of a struct schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// Its position in the struct.
    pub index: usize,
    /// Its schema.
    pub schema: SchemaRef,
}

/// A schema (Kafka Connect's `ConnectSchema`). Build one with [`SchemaBuilder`].
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// The physical type.
    pub ty: Type,
    /// Whether null is a valid value.
    pub optional: bool,
    /// The value that stands for a missing one.
    pub default: Option<Value>,
    /// The schema's name (logical types are named ones: `org.apache.kafka.connect.data.Date`).
    pub name: Option<String>,
    /// The schema's version.
    pub version: Option<i32>,
    /// Documentation.
    pub doc: Option<String>,
    /// Parameters, in the order they were set (a decimal's `scale`, say).
    pub parameters: Vec<(String, String)>,
    /// A struct's fields, in order.
    pub fields: Vec<Field>,
    /// A map's key schema.
    pub key_schema: Option<SchemaRef>,
    /// An array's item schema, or a map's value schema.
    pub value_schema: Option<SchemaRef>,
}

impl Schema {
    /// The field named `name` of a struct schema.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The parameter `key`.
    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A required primitive schema of type `ty`.
    pub fn primitive(ty: Type) -> SchemaRef {
        Arc::new(SchemaBuilder::new(ty).build_unchecked())
    }

    /// An optional primitive schema of type `ty`.
    pub fn optional_primitive(ty: Type) -> SchemaRef {
        Arc::new(SchemaBuilder::new(ty).optional().build_unchecked())
    }

    /// A builder that starts as a copy of this schema (Kafka's `SchemaUtil.copySchemaBasics`
    /// plus the parts), to change some of it.
    pub fn to_builder(&self) -> SchemaBuilder {
        SchemaBuilder {
            schema: self.clone(),
        }
    }

    /// Checks that `value` fits this schema (Kafka's `ConnectSchema.validateValue`): its type,
    /// null only where optional, and every part, recursively. `at` names the place for errors.
    pub fn validate(&self, value: &Value, at: &str) -> Result<()> {
        let ok = match (self.ty, value) {
            (_, Value::Null) => {
                if self.optional || self.default.is_some() {
                    return Ok(());
                }
                return Err(ConnectError::Data(format!(
                    "{at}: null for a required {} schema",
                    self.ty
                )));
            }
            (Type::Int8, Value::Int8(_))
            | (Type::Int16, Value::Int16(_))
            | (Type::Int32, Value::Int32(_))
            | (Type::Int64, Value::Int64(_))
            | (Type::Float32, Value::Float32(_))
            | (Type::Float64, Value::Float64(_))
            | (Type::Boolean, Value::Boolean(_))
            | (Type::String, Value::String(_))
            | (Type::Bytes, Value::Bytes(_)) => true,
            (Type::Array, Value::Array(items)) => {
                let Some(item_schema) = &self.value_schema else {
                    return Err(ConnectError::Schema(format!(
                        "{at}: an array schema without an item schema"
                    )));
                };
                for (i, item) in items.iter().enumerate() {
                    item_schema.validate(item, &format!("{at}[{i}]"))?;
                }
                true
            }
            (Type::Map, Value::Map(entries)) => {
                let (Some(keys), Some(values)) = (&self.key_schema, &self.value_schema) else {
                    return Err(ConnectError::Schema(format!(
                        "{at}: a map schema without key and value schemas"
                    )));
                };
                for (key, value) in entries {
                    keys.validate(key, &format!("{at} (a key)"))?;
                    values.validate(value, &format!("{at} (a value)"))?;
                }
                true
            }
            (Type::Struct, Value::Struct(s)) => {
                if s.schema().as_ref() != self {
                    return Err(ConnectError::Data(format!(
                        "{at}: a struct of another schema ({})",
                        s.schema().name.as_deref().unwrap_or("unnamed")
                    )));
                }
                s.validate()?;
                true
            }
            _ => false,
        };
        if !ok {
            return Err(ConnectError::Data(format!(
                "{at}: a {} value for a {} schema",
                value.type_name(),
                self.ty
            )));
        }
        super::logical::validate(self, value, at)
    }
}

/// Builds schemas (Kafka Connect's `SchemaBuilder`).
#[derive(Debug, Clone)]
pub struct SchemaBuilder {
    schema: Schema,
}

impl SchemaBuilder {
    /// A required schema of type `ty`, with nothing else set.
    pub fn new(ty: Type) -> SchemaBuilder {
        SchemaBuilder {
            schema: Schema {
                ty,
                optional: false,
                default: None,
                name: None,
                version: None,
                doc: None,
                parameters: Vec::new(),
                fields: Vec::new(),
                key_schema: None,
                value_schema: None,
            },
        }
    }

    /// An `int8` schema.
    pub fn int8() -> SchemaBuilder {
        SchemaBuilder::new(Type::Int8)
    }
    /// An `int16` schema.
    pub fn int16() -> SchemaBuilder {
        SchemaBuilder::new(Type::Int16)
    }
    /// An `int32` schema.
    pub fn int32() -> SchemaBuilder {
        SchemaBuilder::new(Type::Int32)
    }
    /// An `int64` schema.
    pub fn int64() -> SchemaBuilder {
        SchemaBuilder::new(Type::Int64)
    }
    /// A `float32` schema.
    pub fn float32() -> SchemaBuilder {
        SchemaBuilder::new(Type::Float32)
    }
    /// A `float64` schema.
    pub fn float64() -> SchemaBuilder {
        SchemaBuilder::new(Type::Float64)
    }
    /// A `boolean` schema.
    pub fn boolean() -> SchemaBuilder {
        SchemaBuilder::new(Type::Boolean)
    }
    /// A `string` schema.
    pub fn string() -> SchemaBuilder {
        SchemaBuilder::new(Type::String)
    }
    /// A `bytes` schema.
    pub fn bytes() -> SchemaBuilder {
        SchemaBuilder::new(Type::Bytes)
    }
    /// A `struct` schema; add fields with [`field`](Self::field).
    pub fn struct_() -> SchemaBuilder {
        SchemaBuilder::new(Type::Struct)
    }

    /// An array of `items`.
    pub fn array(items: SchemaRef) -> SchemaBuilder {
        let mut builder = SchemaBuilder::new(Type::Array);
        builder.schema.value_schema = Some(items);
        builder
    }

    /// A map of `keys` to `values`.
    pub fn map(keys: SchemaRef, values: SchemaRef) -> SchemaBuilder {
        let mut builder = SchemaBuilder::new(Type::Map);
        builder.schema.key_schema = Some(keys);
        builder.schema.value_schema = Some(values);
        builder
    }

    /// Null is a valid value.
    pub fn optional(mut self) -> SchemaBuilder {
        self.schema.optional = true;
        self
    }

    /// Null is not a valid value (the default).
    pub fn required(mut self) -> SchemaBuilder {
        self.schema.optional = false;
        self
    }

    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> SchemaBuilder {
        self.schema.name = Some(name.into());
        self
    }

    /// Sets or clears the name.
    pub fn maybe_name(mut self, name: Option<String>) -> SchemaBuilder {
        self.schema.name = name;
        self
    }

    /// Sets the version.
    pub fn version(mut self, version: i32) -> SchemaBuilder {
        self.schema.version = Some(version);
        self
    }

    /// Sets or clears the version.
    pub fn maybe_version(mut self, version: Option<i32>) -> SchemaBuilder {
        self.schema.version = version;
        self
    }

    /// Sets the documentation.
    pub fn doc(mut self, doc: impl Into<String>) -> SchemaBuilder {
        self.schema.doc = Some(doc.into());
        self
    }

    /// Sets a parameter (replacing one of the same key, in place).
    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<String>) -> SchemaBuilder {
        let (key, value) = (key.into(), value.into());
        match self.schema.parameters.iter_mut().find(|(k, _)| *k == key) {
            Some(existing) => existing.1 = value,
            None => self.schema.parameters.push((key, value)),
        }
        self
    }

    /// Sets the default value (checked against the schema by [`build`](Self::build)).
    pub fn default_value(mut self, value: Value) -> SchemaBuilder {
        self.schema.default = Some(value);
        self
    }

    /// Clears the default value.
    pub fn no_default(mut self) -> SchemaBuilder {
        self.schema.default = None;
        self
    }

    /// Appends a field to a struct schema (checked by [`build`](Self::build)).
    pub fn field(mut self, name: impl Into<String>, schema: SchemaRef) -> SchemaBuilder {
        let index = self.schema.fields.len();
        self.schema.fields.push(Field {
            name: name.into(),
            index,
            schema,
        });
        self
    }

    /// The struct fields added so far.
    pub fn fields(&self) -> &[Field] {
        &self.schema.fields
    }

    /// The schema, checked: fields only on structs and each name once, parts where the type
    /// needs them, and a default that fits.
    pub fn build(self) -> Result<SchemaRef> {
        let schema = self.schema;
        if !schema.fields.is_empty() && schema.ty != Type::Struct {
            return Err(ConnectError::Schema(format!(
                "a {} schema cannot have fields",
                schema.ty
            )));
        }
        for (i, field) in schema.fields.iter().enumerate() {
            if schema.fields[..i].iter().any(|f| f.name == field.name) {
                return Err(ConnectError::Schema(format!(
                    "field {} is declared twice",
                    field.name
                )));
            }
        }
        match schema.ty {
            Type::Array if schema.value_schema.is_none() => {
                return Err(ConnectError::Schema(
                    "an array schema needs an item schema".into(),
                ))
            }
            Type::Map if schema.key_schema.is_none() || schema.value_schema.is_none() => {
                return Err(ConnectError::Schema(
                    "a map schema needs key and value schemas".into(),
                ))
            }
            _ => {}
        }
        if let Some(default) = &schema.default {
            let mut without = schema.clone();
            without.default = None;
            without.validate(default, "the default value")?;
        }
        Ok(Arc::new(schema))
    }

    /// The schema, unchecked, for the builders here whose result is valid by construction.
    pub(crate) fn build_unchecked(self) -> Schema {
        self.schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Struct;

    #[test]
    fn builders_check_what_they_build() {
        let point = SchemaBuilder::struct_()
            .name("point")
            .field("x", Schema::primitive(Type::Int32))
            .field("y", Schema::optional_primitive(Type::Int32))
            .build()
            .unwrap();
        assert_eq!(point.field("y").unwrap().index, 1);
        let twice = SchemaBuilder::struct_()
            .field("x", Schema::primitive(Type::Int32))
            .field("x", Schema::primitive(Type::Int64))
            .build()
            .unwrap_err();
        assert!(
            twice.to_string().contains("field x is declared twice"),
            "{twice}"
        );
        let bad_default = SchemaBuilder::int32()
            .default_value(Value::String("one".into()))
            .build()
            .unwrap_err();
        assert!(
            bad_default.to_string().contains("string value for a int32"),
            "{bad_default}"
        );
        assert!(SchemaBuilder::new(Type::Array).build().is_err());
        assert_eq!(Type::from_name("INT64"), Some(Type::Int64));
        assert_eq!(Type::from_name("uuid"), None);
    }

    #[test]
    fn values_are_validated_against_their_schemas() {
        let point = SchemaBuilder::struct_()
            .field("x", Schema::primitive(Type::Int32))
            .build()
            .unwrap();
        let list = SchemaBuilder::array(point.clone()).build().unwrap();
        let mut p = Struct::new(point.clone());
        p.put("x", Value::Int32(1)).unwrap();
        list.validate(&Value::Array(vec![Value::Struct(p)]), "v")
            .unwrap();
        let empty = Struct::new(point);
        let err = list
            .validate(&Value::Array(vec![Value::Struct(empty)]), "v")
            .unwrap_err();
        assert!(err.to_string().contains("x"), "{err}");
        let err = Schema::primitive(Type::Int32)
            .validate(&Value::Null, "v")
            .unwrap_err();
        assert!(
            err.to_string().contains("null for a required int32"),
            "{err}"
        );
    }
}
