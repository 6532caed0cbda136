//! Kafka v2 record batches as bytes: the fixed 61-byte header read in place, validation (magic,
//! lengths, CRC-32C), and the two header fields the log rewrites (base offset, leader epoch).
//!
//! The append path never decodes records: a batch is stored as the bytes the producer sent.
//! Layout (big-endian), from Kafka's `DefaultRecordBatch`:
//!
//! ```text
//! 0  baseOffset int64        27 baseTimestamp int64
//! 8  batchLength int32       35 maxTimestamp int64
//! 12 partitionLeaderEpoch    43 producerId int64
//! 16 magic int8 (= 2)        51 producerEpoch int16
//! 17 crc uint32 (CRC-32C of  53 baseSequence int32
//!    bytes 21..end)          57 recordsCount int32
//! 21 attributes int16        61 records...
//! 23 lastOffsetDelta int32
//! ```

use kafka_protocol::records::{Compression, TimestampType};

use crate::error::{Error, Result};

/// Bytes before `batchLength` counts: base offset and the length itself.
pub const LOG_OVERHEAD: usize = 12;
/// Size of a v2 batch header, records excluded.
pub const BATCH_HEADER_LEN: usize = 61;
/// The only batch format the log stores.
pub const MAGIC_V2: i8 = 2;

const CRC_START: usize = 21;

/// The header of one v2 record batch, read from its first 61 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the length field; the batch occupies `LOG_OVERHEAD + batch_length` bytes.
    pub batch_length: i32,
    /// Leader epoch of the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Format version; always 2 here.
    pub magic: i8,
    /// CRC-32C of the bytes from `attributes` to the end of the batch.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// Last offset minus base offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp of the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

fn i16_at(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}
fn i32_at(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
fn i64_at(buf: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(bytes)
}

impl BatchHeader {
    /// Reads a header from the start of `buf`, which must hold at least [`BATCH_HEADER_LEN`]
    /// bytes. Checks nothing but the length.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < BATCH_HEADER_LEN {
            return None;
        }
        Some(BatchHeader {
            base_offset: i64_at(buf, 0),
            batch_length: i32_at(buf, 8),
            partition_leader_epoch: i32_at(buf, 12),
            magic: buf[16] as i8,
            crc: i32_at(buf, 17) as u32,
            attributes: i16_at(buf, 21),
            last_offset_delta: i32_at(buf, 23),
            base_timestamp: i64_at(buf, 27),
            max_timestamp: i64_at(buf, 35),
            producer_id: i64_at(buf, 43),
            producer_epoch: i16_at(buf, 51),
            base_sequence: i32_at(buf, 53),
            records_count: i32_at(buf, 57),
        })
    }

    /// Total bytes the batch occupies in a log.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// Offset of the last record (gaps allowed after compaction).
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// The compression codec named by the attributes, if it is one Kafka defines.
    pub fn compression(&self) -> Option<Compression> {
        Some(match self.attributes & 0x7 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }

    /// Whether timestamps are the producer's (`CreateTime`) or the broker's (`LogAppendTime`).
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & (1 << 3) != 0 {
            TimestampType::LogAppend
        } else {
            TimestampType::Creation
        }
    }

    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & (1 << 4) != 0
    }

    /// A control batch (transaction marker), not user data.
    pub fn is_control(&self) -> bool {
        self.attributes & (1 << 5) != 0
    }
}

/// Zigzag varint (Kafka's record encoding); None if truncated or too long.
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let raw = read_unsigned_varint(buf, pos, 5)?;
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

pub(crate) fn read_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let raw = read_unsigned_varint(buf, pos, 10)?;
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn read_unsigned_varint(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Option<u64> {
    let mut value = 0u64;
    for idx in 0..max_bytes {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * idx);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A transaction marker as a control record holds it: COMMIT (true) or ABORT, and the
/// coordinator epoch.
pub type ControlMarker = (bool, i32);

/// The control record of a control batch's body (the bytes after the batch header). None if it
/// is not a transaction marker.
pub fn control_marker(body: &[u8]) -> Option<ControlMarker> {
    let mut pos = 0usize;
    read_varint(body, &mut pos)?; // record length
    pos += 1; // attributes
    read_varlong(body, &mut pos)?;
    read_varint(body, &mut pos)?;
    let key_len = read_varint(body, &mut pos)?;
    if key_len < 4 {
        return None;
    }
    let key = body.get(pos..pos + 4)?;
    pos += key_len as usize;
    let kind = i16::from_be_bytes([key[2], key[3]]);
    let value_len = read_varint(body, &mut pos)?;
    let coordinator_epoch = if value_len >= 6 {
        let v = body.get(pos..pos + 6)?;
        i32::from_be_bytes([v[2], v[3], v[4], v[5]])
    } else {
        -1
    };
    match kind {
        0 => Some((false, coordinator_epoch)),
        1 => Some((true, coordinator_epoch)),
        _ => None,
    }
}

/// A control batch holding one transaction marker (COMMIT or ABORT) for a producer, as Kafka's
/// coordinator writes it: transactional and control attributes, sequence -1, one record whose
/// key is (version 0, type) and value (version 0, coordinator epoch).
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let mut record = vec![0u8, 0, 0, 8]; // attributes, timestamp delta, offset delta, key length 4
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&i16::from(commit).to_be_bytes());
    record.push(12); // value length 6
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&coordinator_epoch.to_be_bytes());
    record.push(0); // no headers
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + 1 + record.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset, assigned on append
    out.extend_from_slice(&0i32.to_be_bytes()); // batch length, below
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    out.extend_from_slice(&(0x10i16 | 0x20).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&producer_id.to_be_bytes());
    out.extend_from_slice(&producer_epoch.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    out.push((record.len() as u8) << 1); // record length, zigzag
    out.extend_from_slice(&record);
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// How strictly [`validate_batches`] checks offsets inside batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From a producer: batches are dense (`recordsCount = lastOffsetDelta + 1`) and non-empty;
    /// the log assigns offsets.
    Client,
    /// From a leader or the cleaner: offsets are already assigned, gaps are allowed.
    Replication,
}

/// Validates every batch in `buf` and returns their headers. Checks that lengths tile the buffer
/// exactly, the magic is 2, the codec is known, the CRC-32C matches, counts are sane and no batch
/// exceeds `max_message_bytes`. Errors name the byte position of the bad batch.
pub fn validate_batches(
    buf: &[u8],
    max_message_bytes: usize,
    origin: Origin,
) -> Result<Vec<BatchHeader>> {
    if buf.is_empty() {
        return Err(Error::corrupt(0, "no record batches"));
    }
    let mut headers = Vec::with_capacity(buf.len() / 16384 + 1);
    let mut position = 0;
    while position < buf.len() {
        let rest = &buf[position..];
        let header = BatchHeader::parse(rest).ok_or_else(|| {
            Error::corrupt(
                position,
                format!(
                    "{} bytes left, a batch header needs {BATCH_HEADER_LEN}",
                    rest.len()
                ),
            )
        })?;
        let size = check_header(&header, position)?;
        if size > rest.len() {
            return Err(Error::corrupt(
                position,
                format!(
                    "batch length says {size} bytes but only {} remain",
                    rest.len()
                ),
            ));
        }
        if size > max_message_bytes {
            return Err(Error::BatchTooLarge {
                size,
                max: max_message_bytes,
            });
        }
        let computed = crc32c::crc32c(&rest[CRC_START..size]);
        if computed != header.crc {
            return Err(Error::corrupt(
                position,
                format!(
                    "CRC-32C mismatch: stored {:#010x}, computed {computed:#010x}",
                    header.crc
                ),
            ));
        }
        if origin == Origin::Client {
            if header.records_count == 0 {
                return Err(Error::corrupt(position, "batch holds no records"));
            }
            if i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1 {
                return Err(Error::corrupt(
                    position,
                    format!(
                        "lastOffsetDelta {} does not match recordsCount {}",
                        header.last_offset_delta, header.records_count
                    ),
                ));
            }
        }
        headers.push(header);
        position += size;
    }
    Ok(headers)
}

/// Checks the header fields that need no other bytes; returns the batch size.
pub(crate) fn check_header(header: &BatchHeader, position: usize) -> Result<usize> {
    if header.magic != MAGIC_V2 {
        return Err(Error::corrupt(
            position,
            format!(
                "unsupported magic {} (only v2 record batches are stored)",
                header.magic
            ),
        ));
    }
    if (header.batch_length as i64) < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i64 {
        return Err(Error::corrupt(
            position,
            format!("batch length {} is too small", header.batch_length),
        ));
    }
    if header.compression().is_none() {
        return Err(Error::corrupt(
            position,
            format!("unknown compression codec {}", header.attributes & 7),
        ));
    }
    if header.last_offset_delta < 0 || header.records_count < 0 {
        return Err(Error::corrupt(
            position,
            "negative lastOffsetDelta or recordsCount",
        ));
    }
    if i64::from(header.records_count) > i64::from(header.last_offset_delta) + 1 {
        return Err(Error::corrupt(
            position,
            "more records than offsets in the batch",
        ));
    }
    Ok(header.size())
}

/// Checks a whole batch read back from disk: header fields and CRC.
pub(crate) fn check_stored_batch(batch: &[u8]) -> std::result::Result<BatchHeader, String> {
    let header = BatchHeader::parse(batch).ok_or("short batch header")?;
    let size = check_header(&header, 0).map_err(|e| e.to_string())?;
    if size != batch.len() {
        return Err(format!(
            "batch length {size} does not match {} bytes read",
            batch.len()
        ));
    }
    let computed = crc32c::crc32c(&batch[CRC_START..]);
    if computed != header.crc {
        return Err(format!(
            "CRC-32C mismatch: stored {:#010x}, computed {computed:#010x}",
            header.crc
        ));
    }
    Ok(header)
}

/// Rewrites the base offset and leader epoch of the batch at the start of `batch`. Both lie
/// before the CRC-covered bytes, so the CRC stays valid.
pub fn set_base_offset_and_epoch(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Writes the CRC of a batch whose CRC-covered bytes were changed (the cleaner does this).
pub(crate) fn refresh_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Builds real v2 batches with the kafka-protocol encoder, as a producer would.
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// One record for [`encode_batch`]: key, value (None = tombstone), timestamp.
    pub type TestRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);

    /// A record without an idempotent producer, at `idx` in its batch.
    fn record(idx: usize, key: Option<&[u8]>, value: Option<&[u8]>, timestamp: i64) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: idx as i64,
            // The encoder splits batches where offset - sequence changes; this keeps one
            // batch with base sequence -1 (no idempotent producer).
            sequence: idx as i32 - 1,
            timestamp,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: Default::default(),
        }
    }

    fn encode(records: &[Record], compression: Compression) -> BytesMut {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode test batch");
        buf
    }

    /// Encodes records into one batch with base offset 0, as a producer sends it.
    pub fn encode_batch(records: &[TestRecord<'_>], compression: Compression) -> BytesMut {
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(idx, (key, value, timestamp))| record(idx, *key, *value, *timestamp))
            .collect();
        encode(&records, compression)
    }

    /// A batch of an idempotent producer: `values` with sequence numbers from `base_sequence`,
    /// compressed with `compression`.
    pub fn idempotent_batch(
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        values: &[&[u8]],
        compression: Compression,
    ) -> BytesMut {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(idx, value)| Record {
                producer_id,
                producer_epoch: epoch,
                sequence: base_sequence.wrapping_add(idx as i32),
                ..record(idx, None, Some(value), 1_000)
            })
            .collect();
        encode(&records, compression)
    }

    /// A batch of a transactional producer: keyed records with sequence numbers from
    /// `base_sequence`.
    pub fn transactional_batch(
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        records: &[(&[u8], &[u8])],
    ) -> BytesMut {
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(idx, (key, value))| Record {
                transactional: true,
                producer_id,
                producer_epoch: epoch,
                sequence: base_sequence.wrapping_add(idx as i32),
                ..record(idx, Some(key), Some(value), 1_000)
            })
            .collect();
        encode(&records, Compression::None)
    }

    /// A batch of `count` keyless records of `value_len` bytes each.
    pub fn value_batch(count: usize, value_len: usize, timestamp: i64) -> BytesMut {
        let value = vec![b'v'; value_len];
        let records: Vec<TestRecord<'_>> = (0..count)
            .map(|_| (None, Some(&value[..]), timestamp))
            .collect();
        encode_batch(&records, Compression::None)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn validates_a_producer_batch_and_reads_its_header() {
        let batch = encode_batch(
            &[(Some(b"k"), Some(b"v"), 10), (None, Some(b"w"), 20)],
            Compression::None,
        );
        let headers = validate_batches(&batch, 1 << 20, Origin::Client).unwrap();
        assert_eq!(headers.len(), 1);
        let header = headers[0];
        assert_eq!(header.records_count, 2);
        assert_eq!(header.last_offset_delta, 1);
        assert_eq!(header.max_timestamp, 20);
        assert_eq!(header.size(), batch.len());
        assert_eq!(header.compression(), Some(Compression::None));
    }

    #[test]
    fn rejects_bad_crc_magic_length_and_size_naming_the_problem() {
        let good = encode_batch(&[(Some(b"k"), Some(b"value"), 1)], Compression::None);

        let mut bad_crc = good.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 0xff;
        let err = validate_batches(&bad_crc, 1 << 20, Origin::Client).unwrap_err();
        assert!(err.to_string().contains("CRC-32C mismatch"), "{err}");

        let mut bad_magic = good.clone();
        bad_magic[16] = 1;
        let err = validate_batches(&bad_magic, 1 << 20, Origin::Client).unwrap_err();
        assert!(err.to_string().contains("magic 1"), "{err}");

        let mut lying_length = good.clone();
        lying_length[8..12].copy_from_slice(&(good.len() as i32).to_be_bytes());
        let err = validate_batches(&lying_length, 1 << 20, Origin::Client).unwrap_err();
        assert!(err.to_string().contains("only"), "{err}");

        let err = validate_batches(&good, 10, Origin::Client).unwrap_err();
        assert!(matches!(err, Error::BatchTooLarge { .. }), "{err}");

        let err = validate_batches(&good[..30], 1 << 20, Origin::Client).unwrap_err();
        assert!(err.to_string().contains("header needs"), "{err}");
    }

    #[test]
    fn rewriting_offset_and_epoch_keeps_the_crc_valid() {
        let mut batch = encode_batch(&[(Some(b"k"), Some(b"v"), 1)], Compression::Gzip);
        set_base_offset_and_epoch(&mut batch, 1234, 7);
        let header = validate_batches(&batch, 1 << 20, Origin::Client).unwrap()[0];
        assert_eq!(header.base_offset, 1234);
        assert_eq!(header.partition_leader_epoch, 7);
    }

    proptest! {
        #[test]
        fn any_single_byte_flip_in_crc_covered_bytes_is_rejected(
            values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
            flip_at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let records: Vec<TestRecord<'_>> =
                values.iter().map(|v| (Some(&v[..]), Some(&v[..]), 5)).collect();
            let mut batch = encode_batch(&records, Compression::None);
            let at = CRC_START + flip_at.index(batch.len() - CRC_START);
            batch[at] ^= flip;
            prop_assert!(validate_batches(&batch, 1 << 20, Origin::Client).is_err());
        }

        #[test]
        fn headers_of_many_batches_round_trip(counts in proptest::collection::vec(1usize..20, 1..10)) {
            let mut buf = bytes::BytesMut::new();
            for count in &counts {
                buf.extend_from_slice(&value_batch(*count, 10, 3));
            }
            let headers = validate_batches(&buf, 1 << 20, Origin::Client).unwrap();
            prop_assert_eq!(headers.len(), counts.len());
            for (header, count) in headers.iter().zip(&counts) {
                prop_assert_eq!(header.records_count as usize, *count);
            }
        }
    }
}
