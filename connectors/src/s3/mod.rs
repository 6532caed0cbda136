//! The S3 connectors: [`S3SinkConnector`] writes topics into objects of an S3 bucket (AWS, or
//! any S3-compatible store through `store.url`: MinIO, Ceph, moto) with the layout, names and
//! config keys of Confluent's S3 sink; [`S3SourceConnector`] reads what the sink wrote back
//! into topics (Confluent's backup-and-restore use).
//!
//! Objects are `<topics.dir>/<topic>/<encoded partition>/<topic>+<kafka partition>+<start
//! offset>.<ext>`, the start offset zero-padded to `filename.offset.zero.pad.width` digits;
//! formats are JSON lines, Avro container files, Parquet and raw bytes (`format.class`).

mod format;
mod partitioner;
mod sink;
mod source;
mod store;

pub use format::{read_file, FileBuilder, Format, ParquetCodec};
pub use partitioner::Partitioner;
pub use sink::{S3SinkConnector, S3SinkTask};
pub use source::{S3SourceConnector, S3SourceTask};
pub use store::Store;

use sluice_connect::connector::Props;
use sluice_connect::{ConnectError, Result};

/// The names the runtime resolves to [`S3SinkConnector`] (Confluent's class last).
pub const SINK_CLASS_NAMES: &[&str] = &[
    "S3Sink",
    "S3SinkConnector",
    "io.confluent.connect.s3.S3SinkConnector",
];

/// The names the runtime resolves to [`S3SourceConnector`] (Confluent's class last).
pub const SOURCE_CLASS_NAMES: &[&str] = &[
    "S3Source",
    "S3SourceConnector",
    "io.confluent.connect.s3.source.S3SourceConnector",
];

const TOPICS_DIR: &str = "topics.dir";
const DIRECTORY_DELIM: &str = "directory.delim";
const FILE_DELIM: &str = "file.delim";
const PAD_WIDTH: &str = "filename.offset.zero.pad.width";
const FORMAT_CLASS: &str = "format.class";
const STORAGE_CLASS: &str = "storage.class";
const PARQUET_CODEC: &str = "parquet.codec";
const COMPRESSION: &str = "s3.compression.type";
const BYTEARRAY_SEPARATOR: &str = "format.bytearray.separator";

/// Confluent keys accepted and ignored, with why (a warning names them when set).
const IGNORED: &[(&str, &str)] = &[
    (
        "s3.ssea.name",
        "server-side encryption is the bucket's default here",
    ),
    (
        "s3.sse.customer.key",
        "server-side encryption with customer keys is not supported",
    ),
    (
        "s3.sse.kms.key.id",
        "server-side encryption with KMS keys is not supported",
    ),
    ("s3.acl.canned", "objects get the bucket's default ACL"),
    ("s3.proxy.url", "proxies are not supported"),
    ("s3.wan.mode", "transfer acceleration is not supported"),
    (
        "aws.credentials.provider.class",
        "credentials come from aws.access.key.id / aws.secret.access.key or the AWS_* environment",
    ),
    (
        "schema.compatibility",
        "a new schema always starts a new file (NONE)",
    ),
    ("avro.codec", "Avro files are written uncompressed (null)"),
    ("s3.object.tagging", "objects are not tagged"),
    ("store.kafka.keys", "only record values are written"),
    ("store.kafka.headers", "only record values are written"),
];

/// Logs a warning for each ignored key that is set.
fn check_ignored(props: &Props, connector: &str) {
    for (key, why) in IGNORED {
        if props.get(*key).is_some_and(|v| !v.trim().is_empty()) {
            tracing::warn!("{connector}: {key} is ignored: {why}");
        }
    }
}

/// Whole-file compression of JSON and byte files (`s3.compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// As written.
    None,
    /// Gzip (`.gz` appended to the name).
    Gzip,
}

impl Compression {
    fn parse(value: Option<&str>) -> Result<Compression> {
        match value.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("none") => Ok(Compression::None),
            Some("gzip") => Ok(Compression::Gzip),
            Some(other) => Err(ConnectError::config(
                COMPRESSION,
                other,
                "supported: none, gzip",
            )),
        }
    }

    /// The extension it adds to a file of `format`.
    fn extension(self, format: Format) -> &'static str {
        match (self, format) {
            (Compression::Gzip, Format::Json | Format::ByteArray) => ".gz",
            _ => "",
        }
    }

    /// Compresses a finished file of `format`.
    fn compress(self, format: Format, bytes: Vec<u8>) -> Result<Vec<u8>> {
        match (self, format) {
            (Compression::Gzip, Format::Json | Format::ByteArray) => sink::gzip(&bytes),
            _ => Ok(bytes),
        }
    }
}

/// The settings the sink and the source share.
#[derive(Debug, Clone)]
struct CommonConfig {
    topics_dir: String,
    file_delim: String,
    pad: usize,
    format: Format,
    codec: ParquetCodec,
    compression: Compression,
    separator: Vec<u8>,
}

impl CommonConfig {
    fn parse(props: &Props) -> Result<CommonConfig> {
        let get = |key: &str| props.get(key).map(|s| s.trim()).filter(|s| !s.is_empty());
        let format = Format::from_class(get(FORMAT_CLASS).ok_or_else(|| {
            ConnectError::config(
                FORMAT_CLASS,
                "",
                "Missing required configuration \"format.class\" which has no default value.",
            )
        })?)?;
        if let Some(storage) = get(STORAGE_CLASS) {
            if !storage.ends_with("S3Storage") {
                return Err(ConnectError::config(
                    STORAGE_CLASS,
                    storage,
                    "supported: io.confluent.connect.s3.storage.S3Storage",
                ));
            }
        }
        if let Some(delim) = get(DIRECTORY_DELIM) {
            if delim != "/" {
                return Err(ConnectError::config(
                    DIRECTORY_DELIM,
                    delim,
                    "only / is supported",
                ));
            }
        }
        let pad = store::number(props, PAD_WIDTH, 10)?;
        if !(0..=19).contains(&pad) {
            return Err(ConnectError::config(
                PAD_WIDTH,
                &pad.to_string(),
                "Value must be between 0 and 19",
            ));
        }
        let separator = props
            .get(BYTEARRAY_SEPARATOR)
            .map(|s| unescape(s))
            .unwrap_or_else(|| b"\n".to_vec());
        Ok(CommonConfig {
            topics_dir: get(TOPICS_DIR)
                .unwrap_or("topics")
                .trim_matches('/')
                .to_string(),
            file_delim: get(FILE_DELIM).unwrap_or("+").to_string(),
            pad: pad as usize,
            format,
            codec: ParquetCodec::parse(get(PARQUET_CODEC).unwrap_or("snappy"))?,
            compression: Compression::parse(get(COMPRESSION))?,
            separator,
        })
    }
}

/// `\n`, `\r`, `\t` and `\\` in a separator as the characters.
fn unescape(text: &str) -> Vec<u8> {
    text.replace("\\n", "\n")
        .replace("\\r", "\r")
        .replace("\\t", "\t")
        .replace("\\\\", "\\")
        .into_bytes()
}

/// A file's name: `<topic>+<partition>+<start offset, zero-padded>.<ext>`.
fn file_name(
    topic: &str,
    partition: i32,
    start: i64,
    delim: &str,
    pad: usize,
    extension: &str,
) -> String {
    format!("{topic}{delim}{partition}{delim}{start:0pad$}{extension}")
}

/// The topic, Kafka partition and start offset in a file name, if it is one of ours.
fn parse_file_name(name: &str, delim: &str) -> Option<(String, i32, i64)> {
    let mut parts = name.rsplitn(3, delim);
    let last = parts.next()?;
    let digits = &last[..last
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(last.len())];
    let start = digits.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let topic = parts.next()?.to_string();
    Some((topic, partition, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_confluents_and_read_back() {
        let name = file_name("orders", 3, 42, "+", 10, ".snappy.parquet");
        assert_eq!(name, "orders+3+0000000042.snappy.parquet");
        assert_eq!(parse_file_name(&name, "+"), Some(("orders".into(), 3, 42)));
        assert_eq!(
            parse_file_name("my+topic+0+0000000100.json.gz", "+"),
            Some(("my+topic".into(), 0, 100))
        );
        assert_eq!(
            parse_file_name("a.b+1+0000000007.avro", "+"),
            Some(("a.b".into(), 1, 7))
        );
        assert_eq!(parse_file_name("notes.txt", "+"), None);
    }
}
