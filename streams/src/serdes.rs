//! Serdes: how keys and values become bytes on a topic and back, with Kafka Streams' wire
//! formats (`Serdes.String()` is UTF-8, `Serdes.Integer()` four big-endian bytes,
//! `Serdes.Long()` eight, and so on), JSON through serde, and any other by implementing
//! [`Serde`]. A `None` payload (a tombstone, or a record without a key) reaches the serde as
//! `None`; types that have no "absent" value refuse it with an error, `Option<T>` accepts it.

use std::marker::PhantomData;

use bytes::Bytes;

use crate::error::{Result, StreamsError};

/// Turns values of `T` into bytes and back. Implementations are shared by every task of a
/// topology, so they are `Send + Sync` and keep no per-record state.
pub trait Serde<T>: Send + Sync {
    /// The bytes of `value` for `topic`, or `None` for an absent payload.
    fn serialize(&self, topic: &str, value: &T) -> std::result::Result<Option<Bytes>, String>;
    /// The value of `bytes` (None when the record has no key or is a tombstone).
    fn deserialize(&self, topic: &str, bytes: Option<&Bytes>) -> std::result::Result<T, String>;
}

/// Serialises the key or value of a record, naming the record's part on failure.
pub(crate) fn serialize<T>(
    serde: &dyn Serde<T>,
    topic: &str,
    part: &'static str,
    value: &T,
) -> Result<Option<Bytes>> {
    serde
        .serialize(topic, value)
        .map_err(|reason| StreamsError::Serde {
            action: "serialize",
            part,
            topic: topic.to_string(),
            reason,
        })
}

/// Deserialises the key or value of a record, naming the record's part on failure.
pub(crate) fn deserialize<T>(
    serde: &dyn Serde<T>,
    topic: &str,
    part: &'static str,
    bytes: Option<&Bytes>,
) -> Result<T> {
    serde
        .deserialize(topic, bytes)
        .map_err(|reason| StreamsError::Serde {
            action: "deserialize",
            part,
            topic: topic.to_string(),
            reason,
        })
}

fn present(bytes: Option<&Bytes>) -> std::result::Result<&Bytes, String> {
    bytes.ok_or_else(|| "no bytes (a null key or a tombstone); use an Option<T> serde".to_string())
}

/// Raw bytes, as they are (`Serdes.ByteArray()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde<Bytes> for BytesSerde {
    fn serialize(&self, _topic: &str, value: &Bytes) -> std::result::Result<Option<Bytes>, String> {
        Ok(Some(value.clone()))
    }
    fn deserialize(
        &self,
        _topic: &str,
        bytes: Option<&Bytes>,
    ) -> std::result::Result<Bytes, String> {
        present(bytes).cloned()
    }
}

/// UTF-8 text (`Serdes.String()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serialize(
        &self,
        _topic: &str,
        value: &String,
    ) -> std::result::Result<Option<Bytes>, String> {
        Ok(Some(Bytes::copy_from_slice(value.as_bytes())))
    }
    fn deserialize(
        &self,
        _topic: &str,
        bytes: Option<&Bytes>,
    ) -> std::result::Result<String, String> {
        String::from_utf8(present(bytes)?.to_vec()).map_err(|e| format!("not UTF-8: {e}"))
    }
}

macro_rules! big_endian_serde {
    ($name:ident, $ty:ty, $java:literal) => {
        #[doc = concat!("`", stringify!($ty), "` as ", $java, " writes it: big-endian, fixed width.")]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serde<$ty> for $name {
            fn serialize(
                &self,
                _topic: &str,
                value: &$ty,
            ) -> std::result::Result<Option<Bytes>, String> {
                Ok(Some(Bytes::copy_from_slice(&value.to_be_bytes())))
            }
            fn deserialize(
                &self,
                _topic: &str,
                bytes: Option<&Bytes>,
            ) -> std::result::Result<$ty, String> {
                let bytes = present(bytes)?;
                let array: [u8; std::mem::size_of::<$ty>()] =
                    bytes.as_ref().try_into().map_err(|_| {
                        format!("{} bytes, not {}", bytes.len(), std::mem::size_of::<$ty>())
                    })?;
                Ok(<$ty>::from_be_bytes(array))
            }
        }
    };
}

big_endian_serde!(I16Serde, i16, "`Serdes.Short()`");
big_endian_serde!(I32Serde, i32, "`Serdes.Integer()`");
big_endian_serde!(I64Serde, i64, "`Serdes.Long()`");
big_endian_serde!(F32Serde, f32, "`Serdes.Float()`");
big_endian_serde!(F64Serde, f64, "`Serdes.Double()`");

/// No payload at all (`Serdes.Void()`): for records whose key or value does not matter.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitSerde;

impl Serde<()> for UnitSerde {
    fn serialize(&self, _topic: &str, _value: &()) -> std::result::Result<Option<Bytes>, String> {
        Ok(None)
    }
    fn deserialize(&self, _topic: &str, _bytes: Option<&Bytes>) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// A serde that also accepts absent payloads: `None` ↔ no bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionSerde<S>(pub S);

impl<T, S: Serde<T>> Serde<Option<T>> for OptionSerde<S> {
    fn serialize(
        &self,
        topic: &str,
        value: &Option<T>,
    ) -> std::result::Result<Option<Bytes>, String> {
        match value {
            Some(value) => self.0.serialize(topic, value),
            None => Ok(None),
        }
    }
    fn deserialize(
        &self,
        topic: &str,
        bytes: Option<&Bytes>,
    ) -> std::result::Result<Option<T>, String> {
        match bytes {
            Some(_) => self.0.deserialize(topic, bytes).map(Some),
            None => Ok(None),
        }
    }
}

/// JSON through serde (the bytes Kafka's `JsonSerializer` writes for the same document).
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> JsonSerde<T> {
    /// A JSON serde for `T`.
    pub fn new() -> JsonSerde<T> {
        JsonSerde(PhantomData)
    }
}

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        JsonSerde::new()
    }
}

impl<T> Clone for JsonSerde<T> {
    fn clone(&self) -> Self {
        JsonSerde::new()
    }
}

impl<T> Serde<T> for JsonSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, _topic: &str, value: &T) -> std::result::Result<Option<Bytes>, String> {
        serde_json::to_vec(value)
            .map(|bytes| Some(Bytes::from(bytes)))
            .map_err(|e| e.to_string())
    }
    fn deserialize(&self, _topic: &str, bytes: Option<&Bytes>) -> std::result::Result<T, String> {
        serde_json::from_slice(present(bytes)?).map_err(|e| format!("not the expected JSON: {e}"))
    }
}

/// Avro through apache-avro and serde: values written as binary Avro datums with a writer
/// schema, read with it (and resolved to a reader schema when given, Avro's schema
/// evolution). Optionally framed as Confluent's serializers frame them — a zero magic byte and
/// the 4-byte big-endian schema id before the datum — so that topics written by Kafka's
/// `KafkaAvroSerializer` with that schema read back (there is no schema registry yet: other ids
/// are refused with an error naming them).
pub struct AvroSerde<T> {
    writer: apache_avro::Schema,
    reader: Option<apache_avro::Schema>,
    schema_id: Option<u32>,
    _type: PhantomData<fn() -> T>,
}

/// Parses an Avro schema (JSON), naming the problem if it is not one.
fn avro_schema(json: &str) -> Result<apache_avro::Schema> {
    apache_avro::Schema::parse_str(json).map_err(|err| StreamsError::Config {
        key: "avro schema".into(),
        value: json.chars().take(80).collect(),
        reason: err.to_string(),
    })
}

impl<T> AvroSerde<T> {
    /// Values written and read with `writer_schema` (Avro's JSON schema).
    pub fn new(writer_schema: &str) -> Result<AvroSerde<T>> {
        Ok(AvroSerde {
            writer: avro_schema(writer_schema)?,
            reader: None,
            schema_id: None,
            _type: PhantomData,
        })
    }

    /// Reads datums written with the writer schema as `reader_schema` (fields added with
    /// defaults, removed, promoted, as Avro's resolution rules allow).
    pub fn with_reader_schema(mut self, reader_schema: &str) -> Result<AvroSerde<T>> {
        self.reader = Some(avro_schema(reader_schema)?);
        Ok(self)
    }

    /// Frames each datum as Confluent's serializers do, with schema id `id`.
    pub fn with_confluent_framing(mut self, id: u32) -> AvroSerde<T> {
        self.schema_id = Some(id);
        self
    }
}

impl<T> Serde<T> for AvroSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, _topic: &str, value: &T) -> std::result::Result<Option<Bytes>, String> {
        let value = apache_avro::to_value(value).map_err(|e| format!("not Avro: {e}"))?;
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&self.writer)
            .build()
            .map_err(|e| e.to_string())?;
        let datum = writer
            .write_value_to_vec(value)
            .map_err(|e| format!("does not fit the writer schema: {e}"))?;
        let Some(id) = self.schema_id else {
            return Ok(Some(Bytes::from(datum)));
        };
        let mut framed = Vec::with_capacity(5 + datum.len());
        framed.push(0);
        framed.extend_from_slice(&id.to_be_bytes());
        framed.extend_from_slice(&datum);
        Ok(Some(Bytes::from(framed)))
    }

    fn deserialize(&self, _topic: &str, bytes: Option<&Bytes>) -> std::result::Result<T, String> {
        let mut datum: &[u8] = present(bytes)?;
        if let Some(id) = self.schema_id {
            match datum {
                [0, a, b, c, d, rest @ ..] => {
                    let found = u32::from_be_bytes([*a, *b, *c, *d]);
                    if found != id {
                        return Err(format!(
                            "written with schema id {found}, not {id} (no schema registry to look it up)"
                        ));
                    }
                    datum = rest;
                }
                _ => return Err("not Confluent-framed Avro (no magic byte and schema id)".into()),
            }
        }
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&self.writer)
            .maybe_reader_schema(self.reader.as_ref())
            .build()
            .map_err(|e| e.to_string())?;
        let value = reader
            .read_value(&mut datum)
            .map_err(|e| format!("not an Avro datum of the writer schema: {e}"))?;
        apache_avro::from_value(&value).map_err(|e| format!("does not fit the type: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: PartialEq + std::fmt::Debug>(serde: &dyn Serde<T>, value: T) -> Option<Bytes> {
        let bytes = serde.serialize("t", &value).unwrap();
        assert_eq!(serde.deserialize("t", bytes.as_ref()).unwrap(), value);
        bytes
    }

    #[test]
    fn integers_are_big_endian_like_kafkas_serdes() {
        assert_eq!(
            round_trip(&I32Serde, 1),
            Some(Bytes::from_static(&[0, 0, 0, 1]))
        );
        assert_eq!(
            round_trip(&I64Serde, -2),
            Some(Bytes::from_static(&[
                255, 255, 255, 255, 255, 255, 255, 254
            ]))
        );
        assert_eq!(
            round_trip(&I16Serde, 258),
            Some(Bytes::from_static(&[1, 2]))
        );
        round_trip(&F64Serde, 1.5);
        round_trip(&F32Serde, -0.25);
        let err = I32Serde
            .deserialize("t", Some(&Bytes::from_static(&[1, 2])))
            .unwrap_err();
        assert!(err.contains("2 bytes, not 4"), "{err}");
    }

    #[test]
    fn strings_bytes_json_and_absent_payloads() {
        assert_eq!(
            round_trip(&StringSerde, "héllo".to_string()),
            Some(Bytes::from("héllo"))
        );
        assert!(StringSerde
            .deserialize("t", Some(&Bytes::from_static(&[0xff])))
            .unwrap_err()
            .contains("UTF-8"));
        assert!(StringSerde
            .deserialize("t", None)
            .unwrap_err()
            .contains("Option"));
        round_trip(&BytesSerde, Bytes::from_static(b"\x00\x01"));
        assert_eq!(round_trip(&OptionSerde(StringSerde), None), None);
        round_trip(&OptionSerde(StringSerde), Some("x".to_string()));
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct View {
            user: String,
            page: u32,
        }
        let bytes = round_trip(
            &JsonSerde::new(),
            View {
                user: "u".into(),
                page: 3,
            },
        );
        assert_eq!(bytes, Some(Bytes::from_static(br#"{"user":"u","page":3}"#)));
        let err = JsonSerde::<View>::new()
            .deserialize("t", Some(&Bytes::from_static(b"{")))
            .unwrap_err();
        assert!(err.contains("JSON"), "{err}");
        assert_eq!(round_trip(&UnitSerde, ()), None);
    }

    #[test]
    fn avro_datums_follow_the_writer_schema_and_resolve_to_a_reader_schema() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Click {
            user: String,
            page: i32,
        }
        let writer = r#"{"type": "record", "name": "Click", "fields": [
            {"name": "user", "type": "string"}, {"name": "page", "type": "int"}]}"#;
        let serde = AvroSerde::<Click>::new(writer).unwrap();
        let click = Click {
            user: "ann".into(),
            page: 3,
        };
        // Avro's binary encoding: a zigzag-varint length and the bytes, then a zigzag int.
        assert_eq!(
            round_trip(&serde, click),
            Some(Bytes::from_static(&[6, b'a', b'n', b'n', 6]))
        );
        // A newer reader schema with a field that has a default.
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct ClickV2 {
            user: String,
            page: i32,
            referrer: String,
        }
        let reader = r#"{"type": "record", "name": "Click", "fields": [
            {"name": "user", "type": "string"}, {"name": "page", "type": "int"},
            {"name": "referrer", "type": "string", "default": "none"}]}"#;
        let v2 = AvroSerde::<ClickV2>::new(writer)
            .unwrap()
            .with_reader_schema(reader)
            .unwrap();
        let read = v2
            .deserialize("t", Some(&Bytes::from_static(&[6, b'a', b'n', b'n', 6])))
            .unwrap();
        assert_eq!(read.referrer, "none");
        // Confluent's framing: magic byte, schema id, datum.
        let framed = AvroSerde::<Click>::new(writer)
            .unwrap()
            .with_confluent_framing(42);
        let bytes = round_trip(
            &framed,
            Click {
                user: "b".into(),
                page: 1,
            },
        )
        .unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 42]);
        let other = AvroSerde::<Click>::new(writer)
            .unwrap()
            .with_confluent_framing(7);
        assert!(other
            .deserialize("t", Some(&bytes))
            .unwrap_err()
            .contains("schema id 42"));
        assert!(serde
            .deserialize("t", Some(&Bytes::from_static(&[7])))
            .unwrap_err()
            .contains("Avro"));
        assert!(AvroSerde::<Click>::new("{not a schema")
            .err()
            .is_some_and(|e| e.to_string().contains("avro schema")));
    }
}
