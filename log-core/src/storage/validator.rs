//! What a partition leader does to a producer's batches before it appends them, as Kafka's
//! `LogValidator` does: refuse keyless records on a compacted topic and timestamps outside the
//! topic's bounds (naming each record, KIP-467), recompress to the topic's `compression.type`,
//! and stamp `LogAppendTime`.
//!
//! The common case — the producer's codec is kept and timestamps are the producer's — touches
//! no record: the header's max timestamp bounds the check, and the bytes go to the segment as
//! they came. Records are decoded only to recompress, to name the records that failed, or when
//! `message.timestamp.before.max.ms` is set (a lower bound needs every timestamp).

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::{refresh_crc, validate_batches, BatchHeader, Origin};
use crate::config::{LogConfig, TimestampType, TopicCompression};
use crate::error::{Error, Result};

/// Attribute bit of a batch whose timestamps are the broker's append time.
const LOG_APPEND_TIME_ATTRIBUTE: i16 = 1 << 3;

/// Batches ready to append: the bytes (the producer's own when nothing changed), their
/// headers, and the append time stamped on them under `LogAppendTime`.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub bytes: Cow<'a, [u8]>,
    pub headers: Vec<BatchHeader>,
    pub log_append_time: Option<i64>,
}

/// Validates and transforms a producer's batches for a topic with `config`, at `now_ms`.
/// On error nothing has been written.
pub(crate) fn prepare<'a>(
    records: &'a [u8],
    headers: Vec<BatchHeader>,
    config: &LogConfig,
    now_ms: i64,
) -> Result<Prepared<'a>> {
    if config.cleanup_policy.compact {
        check_keys_present(records, &headers)?;
    }
    if config.message_timestamp_type == TimestampType::CreateTime {
        check_timestamps(records, &headers, config, now_ms)?;
    }
    let target = config.compression_type.codec();
    let recompress = target.is_some_and(|target| {
        headers
            .iter()
            .any(|h| !h.is_control() && h.compression() != Some(target))
    });
    let log_append_time = config.message_timestamp_type == TimestampType::LogAppendTime;
    if !recompress && !log_append_time {
        return Ok(Prepared {
            bytes: Cow::Borrowed(records),
            headers,
            log_append_time: None,
        });
    }
    let mut out = Vec::with_capacity(records.len());
    let mut position = 0;
    for header in &headers {
        let batch = &records[position..position + header.size()];
        let start = out.len();
        match target {
            Some(codec) if !header.is_control() && header.compression() != Some(codec) => {
                recompress_batch(batch, position, codec, config, &mut out)?
            }
            _ => out.extend_from_slice(batch),
        }
        if log_append_time && !header.is_control() {
            stamp_log_append_time(&mut out[start..], now_ms);
        }
        position += header.size();
    }
    // The new bytes are checked as a producer's would be: the size limit applies to what is
    // stored.
    let headers = validate_batches(&out, config.max_message_bytes, Origin::Client)?;
    Ok(Prepared {
        bytes: Cow::Owned(out),
        headers,
        log_append_time: log_append_time.then_some(now_ms),
    })
}

/// The records of one batch, decoded (decompressed).
pub(crate) fn decode(batch: &[u8], position: usize) -> Result<Vec<Record>> {
    let mut buf = Bytes::copy_from_slice(batch);
    RecordBatchDecoder::decode(&mut buf)
        .map(|set| set.records)
        .map_err(|e| Error::corrupt(position, format!("records do not decode: {e}")))
}

/// Rejects records without keys (compacted topics need them); the error lists every keyless
/// record's index, counted within its batch as Kafka counts them.
fn check_keys_present(records: &[u8], headers: &[BatchHeader]) -> Result<()> {
    let mut position = 0;
    let mut keyless = Vec::new();
    for header in headers {
        if !header.is_control() {
            let decoded = decode(&records[position..position + header.size()], position)?;
            keyless.extend(
                decoded
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.key.is_none())
                    .map(|(i, _)| i as i32),
            );
        }
        position += header.size();
    }
    if keyless.is_empty() {
        Ok(())
    } else {
        Err(Error::MissingKeyForCompactedTopic { indexes: keyless })
    }
}

/// `message.timestamp.before.max.ms` and `message.timestamp.after.max.ms` for CreateTime
/// topics: every record's timestamp must lie in `[now - before, now + after]`.
fn check_timestamps(
    records: &[u8],
    headers: &[BatchHeader],
    config: &LogConfig,
    now_ms: i64,
) -> Result<()> {
    let earliest = now_ms.saturating_sub(config.message_timestamp_before_max_ms);
    let latest = now_ms.saturating_add(config.message_timestamp_after_max_ms);
    let lower_bound_set = config.message_timestamp_before_max_ms < i64::MAX;
    let mut errors = Vec::new();
    let mut position = 0;
    for header in headers {
        let size = header.size();
        // The header's max timestamp is exact, so only a batch past the upper bound, or any
        // batch when a lower bound is set, needs its records read.
        if !header.is_control() && (header.max_timestamp > latest || lower_bound_set) {
            let decoded = decode(&records[position..position + size], position)?;
            for (index, record) in decoded.iter().enumerate() {
                // -1 is "no timestamp" (old clients); Kafka lets it through.
                if record.timestamp != -1
                    && (record.timestamp < earliest || record.timestamp > latest)
                {
                    errors.push((
                        index as i32,
                        format!(
                            "Timestamp {} of message with offset {index} is out of range. The timestamp should be within [{earliest}, {latest}]",
                            record.timestamp
                        ),
                    ));
                }
            }
        }
        position += size;
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidTimestamp { errors })
    }
}

/// Appends `batch` re-encoded with `codec` at the topic's level for it.
fn recompress_batch(
    batch: &[u8],
    position: usize,
    codec: Compression,
    config: &LogConfig,
    out: &mut Vec<u8>,
) -> Result<()> {
    let records = decode(batch, position)?;
    let options = RecordEncodeOptions {
        version: 2,
        compression: codec,
    };
    let mut encoded = BytesMut::with_capacity(batch.len());
    RecordBatchEncoder::encode_with_custom_compression(
        &mut encoded,
        records.iter(),
        &options,
        Some(
            |raw: &mut BytesMut, into: &mut BytesMut, codec: Compression| -> anyhow::Result<()> {
                compress(raw, into, codec, config)
            },
        ),
    )
    .map_err(|e| Error::corrupt(position, format!("recompressing to {codec:?} failed: {e}")))?;
    out.extend_from_slice(&encoded);
    Ok(())
}

/// Compresses `raw` into `into` with `codec` at the level the topic sets
/// (`compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`).
fn compress(
    raw: &mut BytesMut,
    into: &mut BytesMut,
    codec: Compression,
    config: &LogConfig,
) -> anyhow::Result<()> {
    use std::io::Write;
    match codec {
        Compression::None => into.extend_from_slice(raw),
        Compression::Gzip => {
            // -1 is the codec's default level (6), as Java's Deflater takes it.
            let level = match config.compression_gzip_level {
                -1 => flate2::Compression::default(),
                level => flate2::Compression::new(level as u32),
            };
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
            encoder.write_all(raw)?;
            into.extend_from_slice(&encoder.finish()?);
        }
        Compression::Lz4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .level(config.compression_lz4_level as u32)
                .block_mode(lz4::BlockMode::Independent)
                .build(Vec::new())?;
            encoder.write_all(raw)?;
            let (compressed, finished) = encoder.finish();
            finished?;
            into.extend_from_slice(&compressed);
        }
        Compression::Zstd => {
            into.extend_from_slice(&zstd::stream::encode_all(
                &raw[..],
                config.compression_zstd_level,
            )?);
        }
        // Snappy has no level: Kafka's own framing, as the protocol crate writes it.
        Compression::Snappy => {
            use kafka_protocol::compression::{Compressor, Snappy};
            <Snappy as Compressor<BytesMut>>::compress(into, |buf: &mut BytesMut| {
                buf.extend_from_slice(raw);
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Marks a batch's timestamps as the broker's append time: the timestamp type bit and the max
/// timestamp change, so the CRC is computed again (Kafka's `setMaxTimestamp`).
fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) | LOG_APPEND_TIME_ATTRIBUTE;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    refresh_crc(batch);
}

impl TopicCompression {
    /// The codec batches are stored with; None keeps the producer's.
    pub(crate) fn codec(self) -> Option<Compression> {
        match self {
            TopicCompression::Producer => None,
            TopicCompression::Uncompressed => Some(Compression::None),
            TopicCompression::Gzip => Some(Compression::Gzip),
            TopicCompression::Snappy => Some(Compression::Snappy),
            TopicCompression::Lz4 => Some(Compression::Lz4),
            TopicCompression::Zstd => Some(Compression::Zstd),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::test_support::encode_batch;

    fn config(pairs: &[(&str, &str)]) -> LogConfig {
        LogConfig::default()
            .with_overrides(pairs.iter().copied())
            .unwrap()
    }

    fn prepared(records: &[u8], config: &LogConfig, now_ms: i64) -> Result<Prepared<'static>> {
        let headers = validate_batches(records, config.max_message_bytes, Origin::Client)?;
        prepare(records, headers, config, now_ms).map(|p| Prepared {
            bytes: Cow::Owned(p.bytes.into_owned()),
            headers: p.headers,
            log_append_time: p.log_append_time,
        })
    }

    fn values(bytes: &[u8]) -> Vec<(Option<Bytes>, i64)> {
        let mut buf = Bytes::copy_from_slice(bytes);
        RecordBatchDecoder::decode_all(&mut buf)
            .unwrap()
            .into_iter()
            .flat_map(|set| set.records)
            .map(|r| (r.value, r.timestamp))
            .collect()
    }

    #[test]
    fn the_producers_codec_is_kept_without_touching_the_bytes() {
        let batch = encode_batch(&[(None, Some(b"a"), 5)], Compression::Gzip);
        let out = prepared(&batch, &config(&[]), 10).unwrap();
        assert!(matches!(out.bytes, Cow::Owned(_)), "test helper copies");
        let headers = validate_batches(&batch, 1 << 20, Origin::Client).unwrap();
        let kept = prepare(&batch, headers, &config(&[]), 10).unwrap();
        assert!(matches!(kept.bytes, Cow::Borrowed(_)));
        assert_eq!(kept.log_append_time, None);
        // The topic asking for the codec the batch has is no change either.
        let headers = validate_batches(&batch, 1 << 20, Origin::Client).unwrap();
        let same = prepare(
            &batch,
            headers,
            &config(&[("compression.type", "gzip")]),
            10,
        )
        .unwrap();
        assert!(matches!(same.bytes, Cow::Borrowed(_)));
    }

    #[test]
    fn batches_are_recompressed_to_the_topics_codec_at_its_level() {
        let records = [
            (Some(&b"k1"[..]), Some(&b"one"[..]), 5),
            (Some(&b"k2"[..]), Some(&b"two"[..]), 6),
        ];
        let batch = encode_batch(&records, Compression::Gzip);
        for (name, codec) in [
            ("lz4", Compression::Lz4),
            ("zstd", Compression::Zstd),
            ("snappy", Compression::Snappy),
            ("uncompressed", Compression::None),
        ] {
            let out = prepared(&batch, &config(&[("compression.type", name)]), 10).unwrap();
            assert_eq!(out.headers[0].compression(), Some(codec), "{name}");
            assert_eq!(out.headers[0].records_count, 2);
            assert_eq!(
                values(&out.bytes),
                vec![
                    (Some(Bytes::from_static(b"one")), 5),
                    (Some(Bytes::from_static(b"two")), 6)
                ],
                "{name}"
            );
        }
        let levels = config(&[
            ("compression.type", "zstd"),
            ("compression.zstd.level", "19"),
        ]);
        let out = prepared(&batch, &levels, 10).unwrap();
        assert_eq!(values(&out.bytes).len(), 2);
        let gzip = encode_batch(&records, Compression::None);
        let out = prepared(
            &gzip,
            &config(&[
                ("compression.type", "gzip"),
                ("compression.gzip.level", "1"),
            ]),
            10,
        )
        .unwrap();
        assert_eq!(out.headers[0].compression(), Some(Compression::Gzip));
        assert_eq!(values(&out.bytes).len(), 2);
    }

    #[test]
    fn log_append_time_stamps_the_batch_with_a_valid_crc() {
        let batch = encode_batch(
            &[(None, Some(b"a"), 5), (None, Some(b"b"), 7)],
            Compression::Lz4,
        );
        let out = prepared(
            &batch,
            &config(&[("message.timestamp.type", "LogAppendTime")]),
            1_000,
        )
        .unwrap();
        assert_eq!(out.log_append_time, Some(1_000));
        let header = out.headers[0];
        assert_eq!(header.max_timestamp, 1_000);
        assert_eq!(
            header.timestamp_type(),
            kafka_protocol::records::TimestampType::LogAppend
        );
        // validate_batches checked the CRC again; the records themselves are unchanged.
        assert_eq!(values(&out.bytes).len(), 2);
    }

    #[test]
    fn timestamps_outside_the_topics_bounds_name_each_record() {
        let now = 10_000_000;
        let batch = encode_batch(
            &[
                (None, Some(b"ok"), now),
                (None, Some(b"future"), now + 3_600_001),
                (None, Some(b"old"), now - 5_000),
            ],
            Compression::Snappy,
        );
        // Kafka 4's default: at most an hour ahead; no lower bound.
        let err = prepared(&batch, &config(&[]), now).unwrap_err();
        match &err {
            Error::InvalidTimestamp { errors } => {
                assert_eq!(errors.len(), 1);
                assert_eq!(errors[0].0, 1);
                assert!(errors[0].1.contains("out of range"), "{}", errors[0].1);
            }
            other => panic!("{other}"),
        }
        assert_eq!(
            err.response_error(),
            kafka_protocol::ResponseError::InvalidTimestamp
        );
        let bounded = config(&[
            ("message.timestamp.before.max.ms", "1000"),
            ("message.timestamp.after.max.ms", "9999999999"),
        ]);
        match prepared(&batch, &bounded, now).unwrap_err() {
            Error::InvalidTimestamp { errors } => {
                assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2])
            }
            other => panic!("{other}"),
        }
        // LogAppendTime topics take any producer timestamp.
        let append_time = config(&[("message.timestamp.type", "LogAppendTime")]);
        assert!(prepared(&batch, &append_time, now).is_ok());
    }
}
