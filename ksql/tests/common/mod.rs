//! The fixture of the ksql server's integration tests: a server over a fresh embedded node,
//! called over HTTP as its clients call it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value as Json};
use sluice_ksql::engine::Engine;
use sluice_ksql::rest::KsqlServer;
use sluice_log::client::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs `scenario` against a server on a fresh embedded node, bounded by 60 s — or, with
/// `SLUICE_TEST_BOOTSTRAP` set, on the external broker it names (Apache Kafka, from
/// `compat/kafka/run-layers.sh`), emptied first: the same statements against Kafka.
pub fn on_server<F, Fut>(scenario: F)
where
    F: FnOnce(String, Arc<Client>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let external = sluice_log::testing::external_bootstrap();
    let node = match &external {
        Some(_) => None,
        None => Some(
            sluice_log::Sluice::embedded(dir.path().join("node"))
                .start()
                .unwrap(),
        ),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(async {
            let client = match (&node, &external) {
                (Some(node), _) => node.client().await.unwrap(),
                (None, Some(bootstrap)) => {
                    sluice_log::testing::reset_external_broker(bootstrap)
                        .await
                        .unwrap();
                    Client::connect(bootstrap, sluice_log::client::ClientOptions::default())
                        .await
                        .unwrap()
                }
                (None, None) => unreachable!("a node or an external broker"),
            };
            let server = serve(&client, "default_").await;
            let base = server.local_addr().to_string();
            let outcome =
                tokio::time::timeout(Duration::from_secs(60), scenario(base, client)).await;
            server.shutdown().await;
            outcome
        })
        .expect("the scenario finishes within 60 s");
    if let Some(node) = node {
        node.shutdown().unwrap();
    }
}

/// A server for `service_id` on `client`'s cluster, on an ephemeral port.
pub async fn serve(client: &Arc<Client>, service_id: &str) -> KsqlServer {
    let engine = Engine::start(client.clone(), service_id).await.unwrap();
    KsqlServer::start(Arc::new(engine), "127.0.0.1:0")
        .await
        .unwrap()
}

pub fn names(entity: &Json, list: &str) -> Vec<String> {
    entity[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// An HTTP/1.1 request: the status and the body as JSON.
pub async fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Json) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/vnd.ksql.v1+json\r\nAccept: application/vnd.ksql.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/vnd.ksql.v1+json"),
        "{head}"
    );
    (status, serde_json::from_str(body).unwrap())
}

pub async fn ksql(addr: &str, statements: &str) -> (u16, Json) {
    let body = json!({"ksql": statements, "streamsProperties": {}}).to_string();
    http(addr, "POST", "/ksql", Some(&body)).await
}

pub async fn partitions(client: &Client, topic: &str) -> Option<usize> {
    let topics = client
        .describe_topics(Some(&[topic.to_string()]))
        .await
        .ok()?;
    topics
        .iter()
        .find(|t| t.name == topic && !t.partitions.is_empty())
        .map(|t| t.partitions.len())
}

/// `POST /ksql` with streams properties.
pub async fn ksql_with(addr: &str, statements: &str, properties: Json) -> (u16, Json) {
    let body = json!({"ksql": statements, "streamsProperties": properties}).to_string();
    http(addr, "POST", "/ksql", Some(&body)).await
}

/// A record to produce: partition (None: by key), key, value, timestamp.
pub struct Input {
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp: Option<i64>,
}

/// Produces `records` to `topic` and waits for every acknowledgement.
pub async fn produce(client: &Arc<Client>, topic: &str, records: Vec<Input>) {
    use sluice_log::client::producer::{Producer, ProducerConfig, ProducerRecord};
    let producer = Producer::new(client.clone(), ProducerConfig::default());
    let mut deliveries = Vec::new();
    for record in records {
        let delivery = producer
            .send(ProducerRecord {
                topic: topic.into(),
                partition: record.partition,
                key: record.key,
                value: record.value,
                timestamp: record.timestamp,
                ..Default::default()
            })
            .await
            .unwrap();
        deliveries.push(delivery);
    }
    producer.flush().await;
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    producer.close().await;
}

/// A record read back.
#[derive(Debug, Clone)]
pub struct Output {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp: i64,
}

/// Reads `topic` from the start of every partition until `n` records came or `within` passed.
pub async fn consume(client: &Arc<Client>, topic: &str, n: usize, within: Duration) -> Vec<Output> {
    use sluice_log::client::consumer::{Consumer, ConsumerConfig, StartOffset};
    use sluice_log::TopicPartition;
    let deadline = tokio::time::Instant::now() + within;
    // The topic may be created by the statement under test a moment after it answers.
    let count = loop {
        if let Some(n) = partitions(client, topic).await {
            break n as i32;
        }
        if tokio::time::Instant::now() >= deadline {
            return Vec::new();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let assignments = (0..count)
        .map(|p| (TopicPartition::new(topic, p), StartOffset::Beginning))
        .collect();
    let mut consumer = Consumer::assign(
        client.clone(),
        assignments,
        ConsumerConfig {
            max_wait: Duration::from_millis(100),
            ..ConsumerConfig::default()
        },
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    while out.len() < n && tokio::time::Instant::now() < deadline {
        for r in consumer
            .poll_timeout(500, Duration::from_millis(200))
            .await
            .unwrap()
        {
            out.push(Output {
                partition: r.partition,
                offset: r.offset,
                key: r.key,
                value: r.value,
                timestamp: r.timestamp,
            });
        }
    }
    out
}

/// The end offset of each partition of `topic`, summed: how many records it holds.
pub async fn record_count(client: &Client, topic: &str) -> i64 {
    let mut total = 0;
    for p in 0..partitions(client, topic).await.unwrap_or(0) as i32 {
        total += client.list_offset(topic, p, -1).await.unwrap_or(0);
    }
    total
}

/// A streamed response of a query endpoint, read as it comes.
pub struct Streamed {
    pub status: u16,
    pub head: String,
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
    /// The chunked body decoded so far and not yet taken.
    body: Vec<u8>,
    /// Whether the last chunk (or the connection's end) came.
    ended: bool,
    /// The body's length when it is not chunked.
    length: Option<usize>,
}

impl Streamed {
    /// Posts `body` to `path` over HTTP/1.1 and reads the response's head.
    pub async fn post(addr: &str, path: &str, body: &str, accept: &str) -> Streamed {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: {accept}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buffer = Vec::new();
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed before the response's head");
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        buffer.drain(..head_end + 4);
        let length = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        });
        Streamed {
            length,
            status,
            head,
            stream,
            buffer,
            body: Vec::new(),
            ended: false,
        }
    }

    /// Decodes whole chunks from the buffer; false once the last chunk came.
    fn decode_chunks(&mut self) -> bool {
        if let Some(length) = self.length {
            // Not chunked: the body is `length` bytes.
            let taken = self.buffer.len().min(length);
            self.body.extend(self.buffer.drain(..taken));
            self.length = Some(length - taken);
            return length - taken > 0;
        }
        loop {
            let Some(line_end) = self.buffer.windows(2).position(|w| w == b"\r\n") else {
                return true;
            };
            let size_text = String::from_utf8_lossy(&self.buffer[..line_end]).to_string();
            let size = usize::from_str_radix(size_text.trim(), 16).unwrap();
            if self.buffer.len() < line_end + 2 + size + 2 {
                return true;
            }
            self.body
                .extend_from_slice(&self.buffer[line_end + 2..line_end + 2 + size]);
            self.buffer.drain(..line_end + 2 + size + 2);
            if size == 0 {
                return false;
            }
        }
    }

    /// The body's next line (without its newline), or None once the body has ended.
    pub async fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.body.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.body.drain(..=at).collect();
                return Some(String::from_utf8_lossy(&line[..line.len() - 1]).to_string());
            }
            if self.ended {
                if self.body.is_empty() {
                    return None;
                }
                let rest: Vec<u8> = self.body.drain(..).collect();
                return Some(String::from_utf8_lossy(&rest).to_string());
            }
            self.ended = !self.decode_chunks();
            if self.ended || self.body.contains(&b'\n') {
                continue;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                self.ended = true;
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
}

/// An HTTP/1.1 POST of `body`: the status and the body as text (any content type).
pub async fn http_raw(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).to_string();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}
