//! `sluice delete-records`, as kafka-delete-records does it: the records of each partition
//! below an offset are deleted (the partition's log start offset moves up to it).

use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

use super::{runtime, Connect};

#[derive(Debug, clap::Args)]
pub struct DeleteRecordsArgs {
    #[command(flatten)]
    connect: Connect,
    /// Kafka's JSON file of what to delete:
    /// `{"partitions": [{"topic": "t", "partition": 0, "offset": 3}], "version": 1}`
    /// (offset -1: everything up to the high watermark).
    #[arg(
        long = "offset-json-file",
        value_name = "FILE",
        required_unless_present = "topic"
    )]
    offset_json_file: Option<PathBuf>,
    /// Or one topic's partition: delete below `--offset` in `--topic`/`--partition`.
    #[arg(long, requires = "offset", conflicts_with = "offset_json_file")]
    topic: Option<String>,
    /// The partition (with `--topic`).
    #[arg(long, default_value_t = 0)]
    partition: i32,
    /// The offset below which records go (with `--topic`; -1: the high watermark).
    #[arg(long, allow_hyphen_values = true)]
    offset: Option<i64>,
}

/// Kafka's offset JSON file.
#[derive(Debug, Deserialize)]
struct OffsetFile {
    partitions: Vec<PartitionOffset>,
    #[serde(default = "version_one")]
    version: i32,
}

fn version_one() -> i32 {
    1
}

#[derive(Debug, Deserialize)]
struct PartitionOffset {
    topic: String,
    partition: i32,
    offset: i64,
}

/// What to delete, from the arguments.
fn wanted(args: &DeleteRecordsArgs) -> anyhow::Result<Vec<PartitionOffset>> {
    if let Some(topic) = &args.topic {
        return Ok(vec![PartitionOffset {
            topic: topic.clone(),
            partition: args.partition,
            offset: args.offset.unwrap_or(-1),
        }]);
    }
    let path = args
        .offset_json_file
        .as_ref()
        .context("give --offset-json-file or --topic")?;
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    parse_offset_file(&text).with_context(|| format!("{}", path.display()))
}

fn parse_offset_file(text: &str) -> anyhow::Result<Vec<PartitionOffset>> {
    let file: OffsetFile = serde_json::from_str(text).context(
        "expected {\"partitions\": [{\"topic\": ..., \"partition\": ..., \"offset\": ...}], \"version\": 1}",
    )?;
    anyhow::ensure!(
        file.version == 1,
        "unsupported version {} (Kafka's format is version 1)",
        file.version
    );
    let mut seen = std::collections::BTreeSet::new();
    for p in &file.partitions {
        anyhow::ensure!(
            seen.insert((p.topic.clone(), p.partition)),
            "offset json file contains duplicate topic partitions: {}-{}",
            p.topic,
            p.partition
        );
    }
    Ok(file.partitions)
}

pub fn run(args: DeleteRecordsArgs) -> anyhow::Result<()> {
    let wanted = wanted(&args)?;
    runtime()?.block_on(async move {
        let client = args.connect.client().await?;
        println!("Executing records delete operation");
        let mut failed = 0;
        let mut lines = Vec::with_capacity(wanted.len());
        for p in &wanted {
            match client.delete_records(&p.topic, p.partition, p.offset).await {
                Ok(low) => lines.push(format!(
                    "partition: {}-{}\tlow_watermark: {low}",
                    p.topic, p.partition
                )),
                Err(err) => {
                    failed += 1;
                    lines.push(format!(
                        "partition: {}-{}\terror: {err}",
                        p.topic, p.partition
                    ));
                }
            }
        }
        println!("Records delete operation completed:");
        for line in lines {
            println!("{line}");
        }
        anyhow::ensure!(failed == 0, "{failed} partition(s) failed");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kafkas_offset_file_and_names_what_is_wrong() {
        let parsed = parse_offset_file(
            r#"{"partitions": [{"topic": "t", "partition": 1, "offset": 3}], "version": 1}"#,
        )
        .unwrap();
        assert_eq!(
            (
                parsed[0].topic.as_str(),
                parsed[0].partition,
                parsed[0].offset
            ),
            ("t", 1, 3)
        );
        let dup = parse_offset_file(
            r#"{"partitions": [{"topic": "t", "partition": 0, "offset": 3}, {"topic": "t", "partition": 0, "offset": 4}]}"#,
        )
        .unwrap_err();
        assert!(format!("{dup:#}").contains("duplicate"), "{dup:#}");
        let bad = parse_offset_file(r#"{"partitions": [{"topic": "t"}]}"#).unwrap_err();
        assert!(format!("{bad:#}").contains("partition"), "{bad:#}");
        let version = parse_offset_file(r#"{"partitions": [], "version": 2}"#).unwrap_err();
        assert!(format!("{version:#}").contains("version 2"), "{version:#}");
    }
}
