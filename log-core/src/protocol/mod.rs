//! The Kafka wire protocol without I/O: size-prefixed frames in, decoded requests out; responses
//! in, frames out. Codecs are the kafka-protocol crate's, generated from Kafka's message specs.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Encodable, VersionRange};

/// Why a frame could not be turned into a request. The connection is closed with this reason.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative or above `socket.request.max.bytes`.
    #[error("request of {size} bytes is over socket.request.max.bytes ({max})")]
    TooLarge {
        /// Size from the prefix.
        size: i64,
        /// The limit.
        max: usize,
    },
    /// The API key is not one Kafka defines.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// The version is not one this broker speaks for that API.
    #[error("unsupported version {version} of {api_key:?}")]
    UnsupportedVersion {
        /// The API.
        api_key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The bytes do not decode as the header or body they claim to be.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which part.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
}

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    /// Its header (API key, version, correlation id, client id).
    pub header: RequestHeader,
    /// Which API.
    pub api_key: ApiKey,
    /// Its body.
    pub body: RequestKind,
    /// The client's address, as the server saw it (empty when not known).
    pub client_host: String,
}

/// What the connection does after a request: the broker's answer, whichever transport carried
/// the request (a socket, or an in-process client's channel).
#[derive(Debug)]
pub enum Reply {
    /// Send this response (boxed: responses are large, the other variants small).
    Respond(Box<ResponseKind>),
    /// Send nothing (Produce with `acks=0`).
    Nothing,
    /// Close the connection, for this reason.
    Close(String),
}

/// The APIs this broker implements, and the versions it speaks: the kafka-protocol crate's
/// ranges (which cover what current librdkafka, Java, kafka-python and aiokafka negotiate).
pub fn supported_versions(api_key: ApiKey) -> Option<VersionRange> {
    match api_key {
        ApiKey::ApiVersions
        | ApiKey::Metadata
        | ApiKey::Produce
        | ApiKey::Fetch
        | ApiKey::ListOffsets
        | ApiKey::CreateTopics
        | ApiKey::DeleteTopics
        | ApiKey::OffsetForLeaderEpoch
        | ApiKey::DescribeConfigs
        | ApiKey::AlterConfigs
        | ApiKey::IncrementalAlterConfigs
        | ApiKey::CreatePartitions
        | ApiKey::DescribeCluster
        | ApiKey::JoinGroup
        | ApiKey::SyncGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::ListGroups
        | ApiKey::DeleteGroups
        | ApiKey::DeleteRecords
        | ApiKey::DescribeProducers
        | ApiKey::ElectLeaders
        | ApiKey::AddOffsetsToTxn
        | ApiKey::WriteTxnMarkers
        | ApiKey::DescribeTransactions
        | ApiKey::OffsetDelete => Some(api_key.valid_versions()),
        // Transaction version 1 (KIP-98 with KIP-890 part 1): EndTxn v5, TxnOffsetCommit v5
        // and AddPartitionsToTxn v5 are transaction version 2's (an epoch bump per
        // transaction), which this node does not advertise.
        ApiKey::AddPartitionsToTxn => Some(VersionRange { min: 0, max: 4 }),
        // v6 is KIP-939's two-phase commit, which the codec's request does not encode.
        ApiKey::InitProducerId => Some(VersionRange { min: 0, max: 5 }),
        ApiKey::EndTxn => Some(VersionRange { min: 0, max: 4 }),
        ApiKey::TxnOffsetCommit => Some(VersionRange { min: 0, max: 4 }),
        // Capped below the codec's maximum where newer versions change the request's shape
        // (topic ids, batched groups, KIP-848 member epochs).
        ApiKey::FindCoordinator => Some(VersionRange { min: 0, max: 6 }),
        ApiKey::OffsetCommit => Some(VersionRange { min: 2, max: 9 }),
        ApiKey::OffsetFetch => Some(VersionRange { min: 1, max: 7 }),
        ApiKey::DescribeGroups => Some(VersionRange { min: 0, max: 5 }),
        ApiKey::ListTransactions => Some(VersionRange { min: 0, max: 2 }),
        _ => None,
    }
}

/// Reads the size prefix of a frame: `Ok(Some(n))` once 4 bytes are there.
pub fn frame_size(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let size = i32::from_be_bytes(prefix);
    if size < 0 || size as usize > max {
        return Err(FrameError::TooLarge {
            size: i64::from(size),
            max,
        });
    }
    Ok(size as usize)
}

/// Decodes a request frame (without its size prefix).
///
/// An ApiVersions request of a version above ours still decodes (its header is version-stable),
/// so that the broker can answer UNSUPPORTED_VERSION with the versions it has, as Kafka does.
pub fn decode_request(mut frame: Bytes) -> Result<Request, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::Malformed {
            what: "request header",
            reason: format!("{} bytes", frame.len()),
        });
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| FrameError::UnknownApiKey(raw_key))?;
    let in_range = supported_versions(api_key)
        .is_some_and(|range| range.min <= version && version <= range.max);
    if api_key == ApiKey::ApiVersions && !in_range {
        // Only the header's first fields are read; the body may be of a version we do not know.
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let header = RequestHeader::default()
            .with_request_api_key(raw_key)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id);
        return Ok(Request {
            header,
            api_key,
            body: RequestKind::ApiVersions(Default::default()),
            client_host: String::new(),
        });
    }
    // APIs this broker does not serve are still decoded when the codec knows the version, so
    // that the broker can answer UNSUPPORTED_VERSION where the response has a place for it.
    let codec_range = api_key.valid_versions();
    if !(in_range || (codec_range.min <= version && version <= codec_range.max)) {
        return Err(FrameError::UnsupportedVersion { api_key, version });
    }
    let header_version = api_key.request_header_version(version);
    let header =
        <RequestHeader as kafka_protocol::protocol::Decodable>::decode(&mut frame, header_version)
            .map_err(|e| FrameError::Malformed {
                what: "request header",
                reason: e.to_string(),
            })?;
    let body =
        RequestKind::decode(api_key, &mut frame, version).map_err(|e| FrameError::Malformed {
            what: "request body",
            reason: e.to_string(),
        })?;
    if frame.has_remaining() {
        tracing::debug!(
            ?api_key,
            version,
            trailing = frame.remaining(),
            "ignoring trailing request bytes"
        );
    }
    Ok(Request {
        header,
        api_key,
        body,
        client_host: String::new(),
    })
}

/// Encodes a response frame, size prefix included.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> anyhow_free::Result<BytesMut> {
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0);
    let header_version = api_key.response_header_version(version);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, header_version)
        .map_err(|e| e.to_string())?;
    body.encode(&mut out, version).map_err(|e| e.to_string())?;
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out)
}

/// Encode errors are only displayed (they mean a response does not fit its version).
pub mod anyhow_free {
    /// Result with a displayable error.
    pub type Result<T> = std::result::Result<T, String>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::StrBytes;

    fn frame(api_key: ApiKey, version: i16, body: &impl Encodable) -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("test")))
            .encode(&mut buf, api_key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn decodes_requests_and_rejects_what_it_cannot() {
        let request =
            decode_request(frame(ApiKey::Metadata, 12, &MetadataRequest::default())).unwrap();
        assert_eq!(request.header.correlation_id, 42);
        assert!(matches!(request.body, RequestKind::Metadata(_)));

        // A future ApiVersions version still gets an answer.
        let request = decode_request(frame(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default(),
        ))
        .unwrap();
        assert_eq!(request.api_key, ApiKey::ApiVersions);
        let mut future = frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).to_vec();
        future[3] = 99;
        let request = decode_request(Bytes::from(future)).unwrap();
        assert_eq!(request.header.request_api_version, 99);

        let mut truncated = frame(ApiKey::Metadata, 12, &MetadataRequest::default()).to_vec();
        truncated.truncate(12);
        assert!(matches!(
            decode_request(Bytes::from(truncated)),
            Err(FrameError::Malformed { .. })
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[0x7f, 0, 0, 0, 0, 0, 0, 1])),
            Err(FrameError::UnknownApiKey(_))
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 3, 0x7f, 0, 0, 0, 0, 1])),
            Err(FrameError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            frame_size((-1i32).to_be_bytes(), 100),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            frame_size(101i32.to_be_bytes(), 100),
            Err(FrameError::TooLarge { .. })
        ));
    }
}
