//! The file connectors on a standalone worker and an embedded node: a file goes through a
//! source, a transform and a topic into a sink's file, equal line for line; a source
//! restarted (in a new worker on the same offset file) takes only the lines added since.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sluice_connect::connector::Props;
use sluice_connect::worker::{State, Worker, WorkerConfig};

fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn append_lines(path: &Path, range: std::ops::Range<usize>) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in range {
        // Varied lengths, a tab, a quote and non-ASCII text: the JSON envelope carries them.
        writeln!(file, "line {i}\t\"{}\" é{}", "x".repeat(i % 37), i * 7).unwrap();
    }
    file.sync_all().unwrap();
}

/// Waits (up to 30 s) until `path` holds `n` lines, and returns the file.
async fn wait_for_lines(path: &Path, n: usize) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines = text.lines().count();
        if lines >= n {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} has {lines} of {n} lines",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

mod common;

#[test]
fn a_file_is_copied_through_a_topic_and_a_restarted_source_neither_loses_nor_repeats_lines() {
    common::on_node(Duration::from_secs(90), |client, dir| async move {
        let input = dir.join("input.txt");
        let output = dir.join("output.txt");
        append_lines(&input, 0..1000);
        let client: Arc<sluice_log::client::Client> = client;
        let worker_props: BTreeMap<String, String> = props(&[
            ("bootstrap.servers", "in-process"),
            (
                "offset.storage.file.filename",
                dir.join("connect.offsets").to_str().unwrap(),
            ),
            ("offset.flush.interval.ms", "100"),
        ]);
        let config = WorkerConfig::from_props(&worker_props).unwrap();
        let worker =
            Worker::new(client.clone(), config.clone(), sluice_connectors::plugins()).unwrap();
        let source = props(&[
            ("connector.class", "FileStreamSource"),
            ("file", input.to_str().unwrap()),
            ("topic", "lines"),
            ("transforms", "route"),
            (
                "transforms.route.type",
                "org.apache.kafka.connect.transforms.RegexRouter",
            ),
            ("transforms.route.regex", "lines"),
            ("transforms.route.replacement", "copied-$0"),
        ]);
        worker
            .create_connector("file-in", source.clone())
            .await
            .unwrap();
        worker
            .create_connector(
                "file-out",
                props(&[
                    (
                        "connector.class",
                        "org.apache.kafka.connect.file.FileStreamSinkConnector",
                    ),
                    ("file", output.to_str().unwrap()),
                    ("topics", "copied-lines"),
                ]),
            )
            .await
            .unwrap();
        let copied = wait_for_lines(&output, 1000).await;
        assert_eq!(copied, std::fs::read_to_string(&input).unwrap());
        assert_eq!(
            worker.status("file-out").await.unwrap().tasks,
            vec![State::Running]
        );

        // The source stops (committing its offset); lines are added; a new worker on the same
        // offset file starts it again and copies only the new lines.
        worker.delete_connector("file-in").await.unwrap();
        append_lines(&input, 1000..1500);
        let restarted = Worker::new(client.clone(), config, sluice_connectors::plugins()).unwrap();
        restarted.create_connector("file-in", source).await.unwrap();
        let copied = wait_for_lines(&output, 1500).await;
        assert_eq!(copied, std::fs::read_to_string(&input).unwrap());
        restarted.shutdown().await.unwrap();
        worker.shutdown().await.unwrap();
    });
}
