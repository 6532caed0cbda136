//! Malformed input: truncated frames, random bytes, lying sizes. Each closes its own connection
//! and nothing else; a real client keeps working.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::fixtures::{run_bounded, TestBroker};

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Sends `bytes` and reads until the broker closes the connection (or answers); bounded.
fn send_garbage(broker: &TestBroker, bytes: &[u8]) {
    let mut stream = TcpStream::connect(broker.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
}

#[test]
fn garbage_frames_close_only_their_connection() {
    let broker = TestBroker::start(&[("socket.request.max.bytes", "1000000")]);
    // An ApiVersions v3 request as librdkafka sends it first, to truncate and corrupt.
    let valid: Vec<u8> = {
        let body = [
            0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x04, b'k', b'c', b'a', b't',
            0x00, 0x04, b'k', b'c', b'a', 0x00, 0x02, b'1', 0x00,
        ];
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        frame
    };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..300 {
        let garbage: Vec<u8> = match round % 5 {
            0 => valid[..(xorshift(&mut state) as usize % valid.len())].to_vec(),
            1 => {
                let mut v = valid.clone();
                let at = 4 + xorshift(&mut state) as usize % (v.len() - 4);
                v[at] ^= (xorshift(&mut state) % 255 + 1) as u8;
                v
            }
            2 => (0..xorshift(&mut state) % 200)
                .map(|_| xorshift(&mut state) as u8)
                .collect(),
            3 => [(2_000_000i32).to_be_bytes().to_vec(), vec![0; 16]].concat(),
            _ => [(-5i32).to_be_bytes().to_vec(), vec![1; 8]].concat(),
        };
        send_garbage(&broker, &garbage);
    }
    // A real client still works.
    let bootstrap = broker.bootstrap();
    let out = run_bounded(
        60,
        "kcat",
        &["-b", &bootstrap, "-P", "-t", "after-garbage"],
        b"still here\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_bounded(
        60,
        "kcat",
        &[
            "-b",
            &bootstrap,
            "-C",
            "-t",
            "after-garbage",
            "-o",
            "beginning",
            "-c",
            "1",
            "-f",
            "%s\n",
        ],
        b"",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still here\n");
}

#[test]
fn apis_not_served_yet_answer_an_error_or_close_only_their_connection() {
    use kafka_protocol::messages::{AlterReplicaLogDirsRequest, ApiKey, SaslHandshakeRequest};
    use sluice_log::client::Connection;
    let broker = TestBroker::start(&[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bootstrap = broker.bootstrap();
        let timeout = Duration::from_secs(10);
        let connection = Connection::connect(&bootstrap, "test", timeout)
            .await
            .unwrap();
        // Not advertised, so a well-behaved client would not send it: the client refuses...
        assert!(connection.version_for(ApiKey::SaslHandshake).is_err());
        // ... and a client that sends it anyway gets an error it understands.
        let response = connection
            .send_versioned(&SaslHandshakeRequest::default(), 1)
            .await
            .unwrap();
        assert_eq!(
            response.error_code,
            kafka_protocol::ResponseError::UnsupportedSaslMechanism.code()
        );
        // A response without an error code to carry it: the connection closes, and only it.
        assert!(connection
            .send_versioned(&AlterReplicaLogDirsRequest::default(), 1)
            .await
            .is_err());
        let fresh = Connection::connect(&bootstrap, "test", timeout)
            .await
            .unwrap();
        assert!(fresh.version_for(ApiKey::Metadata).is_ok());
    });
}
