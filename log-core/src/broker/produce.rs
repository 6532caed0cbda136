//! Produce: validate and append each partition's batches as the producer sent them.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Broker;

/// Appends every partition's records; None when `acks=0` (Kafka sends no response then).
pub fn produce(broker: &Broker, request: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let acks = request.acks;
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
            let result = if !matches!(acks, -1..=1) {
                Err((
                    ResponseError::InvalidRequiredAcks,
                    format!("acks={acks} is not one of -1, 0, 1"),
                ))
            } else if let Some(log) = broker.log(&name, data.index) {
                match data.records {
                    None => Err((
                        ResponseError::CorruptMessage,
                        "the records field is null".to_string(),
                    )),
                    Some(records) => {
                        let mut log = log.lock();
                        match log.append_as_leader(&records, 0) {
                            Ok(info) => {
                                let end = log.log_end_offset();
                                log.set_high_watermark(end);
                                appended = true;
                                Ok((info.first_offset, info.log_start_offset))
                            }
                            Err(err) => {
                                tracing::debug!(topic = %name, partition = data.index, %err, "produce rejected");
                                Err((err.response_error(), err.to_string()))
                            }
                        }
                    }
                }
            } else {
                Err((
                    ResponseError::UnknownTopicOrPartition,
                    "This server does not host this topic-partition.".to_string(),
                ))
            };
            // Fields a version lacks must keep their defaults, or the encoder refuses them.
            partitions.push(match result {
                Ok((base_offset, log_start_offset)) => {
                    let ok = base.with_base_offset(base_offset);
                    if version >= 5 {
                        ok.with_log_start_offset(log_start_offset)
                    } else {
                        ok
                    }
                }
                Err((code, message)) => {
                    let failed = base.with_error_code(code.code()).with_base_offset(-1);
                    if version >= 8 {
                        failed.with_error_message(Some(StrBytes::from_string(message)))
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
