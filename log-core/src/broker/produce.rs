//! Produce: validate and append each partition's batches as the producer sent them.

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Broker;
use crate::error::Error;
use crate::group::store::OFFSETS_TOPIC;
use crate::model::TopicPartition;
use crate::storage::batch::BatchHeader;
use crate::txn::store::TRANSACTION_STATE_TOPIC;

/// Why a produce to a partition failed: its error code and message, and (KIP-467) the index
/// and message of each record that made the batch fail.
type Failure = (ResponseError, String, Vec<(i32, String)>);

/// A failure with no record errors.
fn failure(code: ResponseError, message: impl Into<String>) -> Failure {
    (code, message.into(), Vec::new())
}

/// Kafka's answer to a rejected append: per-record errors where Kafka's `LogValidator` gives
/// them, so that a client fails just those records instead of retrying the batch.
fn append_failure(err: &Error, topic: &str, partition: i32) -> Failure {
    match err {
        Error::MissingKeyForCompactedTopic { indexes } => {
            let each = format!(
                "Compacted topic cannot accept message without key in topic partition {topic}-{partition}."
            );
            let shown: Vec<String> = indexes
                .iter()
                .take(3)
                .map(|i| format!("RecordError(batchIndex={i}, message='{each}')"))
                .collect();
            (
                err.response_error(),
                format!(
                    "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                    indexes.len(),
                    shown.join(", ")
                ),
                indexes.iter().map(|i| (*i, each.clone())).collect(),
            )
        }
        Error::InvalidTimestamp { errors } => (
            err.response_error(),
            "One or more records have been rejected due to invalid timestamp".to_string(),
            errors.clone(),
        ),
        other => failure(other.response_error(), other.to_string()),
    }
}

/// Appends every partition's records; None when `acks=0` (Kafka sends no response then).
pub fn produce(broker: &Broker, request: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let acks = request.acks;
    // As Kafka: transactional records in a request that names no transactional id fail the
    // whole request (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, on every partition).
    let missing_transactional_id = request
        .transactional_id
        .as_ref()
        .is_none_or(|id| id.0.is_empty())
        && request.topic_data.iter().any(|topic| {
            topic.partition_data.iter().any(|data| {
                data.records
                    .as_ref()
                    .and_then(|records| BatchHeader::parse(records))
                    .is_some_and(|h| h.is_transactional())
            })
        });
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut appended = false;
    for topic in request.topic_data {
        let name = if topic.name.0.is_empty() {
            broker.topic_name_by_id(topic.topic_id).unwrap_or_default()
        } else {
            topic.name.0.to_string()
        };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let base = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_log_append_time_ms(-1);
            let result: Result<(i64, i64, Option<i64>), Failure> = if missing_transactional_id {
                Err(failure(
                    ResponseError::TransactionalIdAuthorizationFailed,
                    "Transactional records were produced without a transactional id",
                ))
            } else if !matches!(acks, -1..=1) {
                Err(failure(
                    ResponseError::InvalidRequiredAcks,
                    format!("acks={acks} is not one of -1, 0, 1"),
                ))
            } else if name == OFFSETS_TOPIC || name == TRANSACTION_STATE_TOPIC {
                Err(failure(
                    ResponseError::InvalidTopicException,
                    format!("Cannot append to internal topic {name}"),
                ))
            } else if let Some(log) = broker.log(&name, data.index) {
                match data.records {
                    None => Err(failure(
                        ResponseError::CorruptMessage,
                        "the records field is null",
                    )),
                    Some(records) => {
                        let mut log = log.lock();
                        let transactional = BatchHeader::parse(&records)
                            .filter(|h| h.is_transactional() && h.producer_id >= 0);
                        // KIP-890 verification: a transactional batch must belong to an open
                        // transaction that added this partition, or it could never be ended.
                        let unverified = transactional.filter(|h| {
                            !log.producer_states().in_transaction(h.producer_id)
                                && !broker.transactions.verify(
                                    h.producer_id,
                                    h.producer_epoch,
                                    &TopicPartition::new(&name, data.index),
                                )
                        });
                        let appended_or_refused = match unverified {
                            None => log.append_as_leader(&records, 0),
                            Some(h) => Err(Error::TransactionVerification {
                                producer_id: h.producer_id,
                                partition: format!("{name}-{}", data.index),
                                // Kafka: TRANSACTION_ABORTABLE from v11 (KIP-890), before
                                // that INVALID_TXN_STATE.
                                abortable: version >= 11,
                            }),
                        };
                        match appended_or_refused {
                            Ok(info) => {
                                let end = log.log_end_offset();
                                log.set_high_watermark(end);
                                appended = true;
                                Ok((
                                    info.first_offset,
                                    info.log_start_offset,
                                    info.log_append_time,
                                ))
                            }
                            Err(err) => {
                                tracing::debug!(topic = %name, partition = data.index, %err, "produce rejected");
                                Err(append_failure(&err, &name, data.index))
                            }
                        }
                    }
                }
            } else {
                Err(failure(
                    ResponseError::UnknownTopicOrPartition,
                    "This server does not host this topic-partition.",
                ))
            };
            // Fields a version lacks must keep their defaults, or the encoder refuses them.
            partitions.push(match result {
                Ok((base_offset, log_start_offset, log_append_time)) => {
                    let ok = base.with_base_offset(base_offset);
                    // v2+: the time a LogAppendTime topic stamped on the batch.
                    let ok = match log_append_time {
                        Some(time) if version >= 2 => ok.with_log_append_time_ms(time),
                        _ => ok,
                    };
                    if version >= 5 {
                        ok.with_log_start_offset(log_start_offset)
                    } else {
                        ok
                    }
                }
                Err((code, message, record_errors)) => {
                    let failed = base.with_error_code(code.code()).with_base_offset(-1);
                    if version >= 8 {
                        let record_errors = record_errors
                            .into_iter()
                            .map(|(index, message)| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(index)
                                    .with_batch_index_error_message(Some(StrBytes::from_string(
                                        message,
                                    )))
                            })
                            .collect();
                        failed
                            .with_error_message(Some(StrBytes::from_string(message)))
                            .with_record_errors(record_errors)
                    } else {
                        failed
                    }
                }
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if appended {
        broker.appended.notify_waiters();
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}
