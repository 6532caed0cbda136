//! Fetch (with long polling) and ListOffsets.

use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, ProducerId,
};
use kafka_protocol::ResponseError;

use super::Broker;
use crate::error::Error;
use crate::storage::log::FetchIsolation;

/// Longest a fetch waits, whatever the client asks (Kafka bounds it by the request timeout).
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Serves a fetch from the logs, waiting up to `max_wait_ms` for `min_bytes` to arrive.
pub async fn fetch(broker: &Broker, request: FetchRequest, version: i16) -> FetchResponse {
    let deadline =
        Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    loop {
        // Register for wake-ups before reading, so that an append in between is not missed.
        let appended = broker.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let (response, bytes, any_error) = read_once(broker, &request, version);
        let now = Instant::now();
        if bytes >= request.min_bytes.max(1) as usize || any_error || now >= deadline {
            return response;
        }
        let _ = tokio::time::timeout(deadline - now, appended).await;
    }
}

fn read_once(
    broker: &Broker,
    request: &FetchRequest,
    version: i16,
) -> (FetchResponse, usize, bool) {
    let mut remaining = request.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut any_error = false;
    // isolation_level 1 is read_committed: up to the last stable offset, with the aborted
    // transactions listed.
    let read_committed = request.isolation_level == 1;
    let isolation = if read_committed {
        FetchIsolation::Committed
    } else {
        FetchIsolation::HighWatermark
    };
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = if version >= 13 {
            broker.topic_name_by_id(topic.topic_id)
        } else {
            Some(topic.topic.0.to_string())
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let base = PartitionData::default()
                .with_partition_index(wanted.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_preferred_read_replica(BrokerId(-1));
            let log = name
                .as_deref()
                .and_then(|name| broker.log(name, wanted.partition));
            let Some(log) = log else {
                any_error = true;
                let code = if version >= 13 && name.is_none() {
                    ResponseError::UnknownTopicId
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                partitions.push(base.with_error_code(code.code()));
                continue;
            };
            let limit = (wanted.partition_max_bytes.max(0) as usize).min(remaining);
            let mut log = log.lock();
            // KIP-74: the first partition with data returns at least one whole batch.
            let result = log.read(wanted.fetch_offset, limit, isolation, total == 0);
            let last_stable_offset = log.last_stable_offset();
            let data = base
                .with_high_watermark(log.high_watermark())
                .with_last_stable_offset(last_stable_offset);
            let aborted = if read_committed {
                let upper = match &result {
                    Ok(read) => read
                        .records
                        .as_ref()
                        .map_or(wanted.fetch_offset, |_| last_stable_offset),
                    Err(_) => wanted.fetch_offset,
                };
                match log.aborted_transactions(wanted.fetch_offset, upper) {
                    Ok(list) => Some(
                        list.into_iter()
                            .map(|t| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(t.producer_id))
                                    .with_first_offset(t.first_offset)
                            })
                            .collect::<Vec<_>>(),
                    ),
                    Err(err) => {
                        tracing::warn!(%err, "could not read a transaction index");
                        Some(Vec::new())
                    }
                }
            } else {
                None
            };
            let data = data.with_aborted_transactions(aborted);
            // log_start_offset exists from v5; a field a version lacks must keep its default.
            let data = if version >= 5 {
                data.with_log_start_offset(log.log_start_offset())
            } else {
                data
            };
            drop(log);
            match result.and_then(|read| {
                read.records
                    .map(|slice| {
                        slice
                            .to_bytes()
                            .map_err(|e| Error::io("read segment", "fetch", e))
                    })
                    .transpose()
            }) {
                Ok(records) => {
                    let n = records.as_ref().map_or(0, |r| r.len());
                    total += n;
                    remaining = remaining.saturating_sub(n);
                    partitions.push(data.with_records(Some(records.unwrap_or_default())));
                }
                Err(err) => {
                    any_error = true;
                    partitions.push(
                        data.with_error_code(err.response_error().code())
                            .with_records(Some(Default::default())),
                    );
                }
            }
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        any_error,
    )
}

/// ListOffsets: earliest (-2), latest (-1) or the first offset at or after a timestamp.
pub fn list_offsets(
    broker: &Broker,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in topic.partitions {
            let base = ListOffsetsPartitionResponse::default()
                .with_partition_index(wanted.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let Some(log) = broker.log(&name, wanted.partition_index) else {
                partitions
                    .push(base.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            let mut log = log.lock();
            let epoch = log.leader_epochs().latest_epoch().unwrap_or(0);
            let found = match wanted.timestamp {
                // Consumers see the latest offset as the high watermark, or the last stable
                // offset under read_committed.
                -1 if request.isolation_level == 1 => Ok(Some((log.last_stable_offset(), -1))),
                -1 => Ok(Some((log.high_watermark(), -1))),
                timestamp => log.offset_for_timestamp(timestamp),
            };
            // leader_epoch exists from v4; a field a version lacks must keep its default.
            let epoch = if version >= 4 { epoch } else { -1 };
            partitions.push(match found {
                Ok(Some((offset, timestamp))) => base
                    .with_offset(offset)
                    .with_timestamp(timestamp)
                    .with_leader_epoch(epoch),
                Ok(None) => base,
                Err(err) => base.with_error_code(err.response_error().code()),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// OffsetForLeaderEpoch: where each asked-for epoch ends in the partition's log, from its
/// leader epoch cache (what a follower or a consumer uses to detect log truncation).
pub fn offset_for_leader_epoch(
    broker: &Broker,
    request: kafka_protocol::messages::OffsetForLeaderEpochRequest,
    _version: i16,
) -> kafka_protocol::messages::OffsetForLeaderEpochResponse {
    use kafka_protocol::messages::offset_for_leader_epoch_response::{
        EpochEndOffset, OffsetForLeaderTopicResult,
    };
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        let partitions = topic
            .partitions
            .iter()
            .map(|wanted| {
                let base = EpochEndOffset::default()
                    .with_partition(wanted.partition)
                    .with_leader_epoch(-1)
                    .with_end_offset(-1);
                let Some(log) = broker.log(&name, wanted.partition) else {
                    return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                };
                let log = log.lock();
                let current = log.leader_epochs().latest_epoch().unwrap_or(0);
                if wanted.current_leader_epoch > current {
                    return base.with_error_code(ResponseError::UnknownLeaderEpoch.code());
                }
                if wanted.current_leader_epoch >= 0 && wanted.current_leader_epoch < current {
                    return base.with_error_code(ResponseError::FencedLeaderEpoch.code());
                }
                let (epoch, end_offset) = log
                    .leader_epochs()
                    .end_offset_for(wanted.leader_epoch, log.log_end_offset());
                base.with_leader_epoch(epoch).with_end_offset(end_offset)
            })
            .collect();
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    kafka_protocol::messages::OffsetForLeaderEpochResponse::default().with_topics(topics)
}
