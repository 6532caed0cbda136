//! One connection to one broker: typed requests in, typed responses out, pipelined. Versions are
//! negotiated with ApiVersions when the connection opens.
//!
//! A writer lock serialises frames; a reader task matches responses to requests by correlation
//! id, so many requests can be in flight on one connection (Kafka answers them in order).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

type Pending = Arc<Mutex<Option<HashMap<i32, oneshot::Sender<Result<Bytes>>>>>>;

/// Highest versions the client uses, where it caps the kafka-protocol crate's: Produce and Fetch
/// stay at v12, the last versions that name topics (v13 names them by id).
fn client_max_version(api_key: ApiKey) -> i16 {
    match api_key {
        ApiKey::Produce | ApiKey::Fetch => 12,
        other => other.valid_versions().max,
    }
}

/// A request written to a connection whose response has not been read yet.
pub struct PendingResponse<R: Request> {
    rx: oneshot::Receiver<Result<Bytes>>,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    addr: String,
    timeout: Duration,
    pending: Pending,
    _response: std::marker::PhantomData<fn() -> R>,
}

impl<R: Request> PendingResponse<R> {
    /// Waits (up to `request.timeout.ms`) for the response and decodes it.
    pub async fn wait(self) -> Result<R::Response> {
        let api_key = self.api_key;
        let mut body = match tokio::time::timeout(self.timeout, self.rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => {
                return Err(Error::Connection {
                    addr: self.addr,
                    reason: "connection closed".into(),
                })
            }
            Err(_) => {
                if let Some(pending) = self.pending.lock().as_mut() {
                    pending.remove(&self.correlation_id);
                }
                return Err(Error::Timeout {
                    what: format!("{api_key:?} response from {}", self.addr),
                    after_ms: self.timeout.as_millis() as u64,
                });
            }
        };
        ResponseHeader::decode(&mut body, api_key.response_header_version(self.version))
            .map_err(|e| Error::Protocol(format!("{api_key:?} response header: {e}")))?;
        R::Response::decode(&mut body, self.version)
            .map_err(|e| Error::Protocol(format!("{api_key:?} v{} response: {e}", self.version)))
    }
}

/// An open, version-negotiated connection.
pub struct Connection {
    addr: String,
    client_id: StrBytes,
    writer: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    pending: Pending,
    next_correlation_id: AtomicI32,
    versions: HashMap<i16, (i16, i16)>,
    request_timeout: Duration,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Connects to `addr` (`host:port`) and negotiates API versions.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Connection> {
        let connect = TcpStream::connect(addr);
        let stream = tokio::time::timeout(request_timeout, connect)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("connection to {addr}"),
                after_ms: request_timeout.as_millis() as u64,
            })?
            .map_err(|e| Error::Connection {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        stream.set_nodelay(true).map_err(|e| Error::Connection {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        Connection::over(stream, addr, client_id, request_timeout).await
    }

    /// A connection over any byte stream (TCP, or an in-process pipe to an embedded broker),
    /// with versions negotiated. `addr` names the peer in errors.
    pub async fn over<S>(
        stream: S,
        addr: &str,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Connection>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let reader = tokio::spawn(read_responses(
            BufReader::with_capacity(256 * 1024, reader),
            pending.clone(),
            addr.to_string(),
        ));
        let mut connection = Connection {
            addr: addr.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            writer: tokio::sync::Mutex::new(Box::new(writer)),
            pending,
            next_correlation_id: AtomicI32::new(1),
            versions: HashMap::new(),
            request_timeout,
            reader,
        };
        // ApiVersions v3 is what current clients send first; brokers that only know v0 answer
        // UNSUPPORTED_VERSION in v0, and we retry with v0.
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut response: ApiVersionsResponse = connection.send_versioned(&request, 3).await?;
        if response.error_code == kafka_protocol::ResponseError::UnsupportedVersion.code() {
            response = connection
                .send_versioned(&ApiVersionsRequest::default(), 0)
                .await?;
        }
        if let Some(err) = Error::from_code(response.error_code, None) {
            return Err(err);
        }
        connection.versions = response
            .api_keys
            .iter()
            .map(|api| (api.api_key, (api.min_version, api.max_version)))
            .collect();
        Ok(connection)
    }

    /// The broker address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The version to use for `api_key`: the highest both sides speak.
    pub fn version_for(&self, api_key: ApiKey) -> Result<i16> {
        let ours = api_key.valid_versions();
        let ours_max = client_max_version(api_key);
        let &(theirs_min, theirs_max) = self.versions.get(&(api_key as i16)).ok_or_else(|| {
            Error::Protocol(format!("broker {} does not support {api_key:?}", self.addr))
        })?;
        let version = ours_max.min(theirs_max);
        if version < ours.min.max(theirs_min) {
            return Err(Error::Protocol(format!(
                "no common version of {api_key:?} with broker {} (it speaks {theirs_min}..{theirs_max}, we speak {}..{ours_max})",
                self.addr, ours.min
            )));
        }
        Ok(version)
    }

    /// Sends a request at the negotiated version and waits for its response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        let api_key = ApiKey::try_from(R::KEY)
            .map_err(|_| Error::Protocol(format!("unknown API key {}", R::KEY)))?;
        let version = self.version_for(api_key)?;
        self.send_versioned(request, version).await
    }

    /// Sends a request and waits up to `timeout` (instead of `request.timeout.ms`) for the
    /// response: for requests the broker may hold longer, like JoinGroup.
    pub async fn send_with_timeout<R: Request>(
        &self,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response> {
        let mut pending = self.start(request).await?;
        pending.timeout = timeout;
        pending.wait().await
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub async fn send_no_response<R: Request>(&self, request: &R) -> Result<()> {
        let api_key = ApiKey::try_from(R::KEY)
            .map_err(|_| Error::Protocol(format!("unknown API key {}", R::KEY)))?;
        let version = self.version_for(api_key)?;
        let (_, frame) = self.frame(request, version)?;
        self.write(&frame).await
    }

    /// Sends a request at `version` and waits for its response.
    pub async fn send_versioned<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response> {
        self.start_versioned(request, version).await?.wait().await
    }

    /// Writes a request at the negotiated version and returns its pending response: requests
    /// started one after another are sent (and answered) in that order.
    pub async fn start<R: Request>(&self, request: &R) -> Result<PendingResponse<R>> {
        let api_key = ApiKey::try_from(R::KEY)
            .map_err(|_| Error::Protocol(format!("unknown API key {}", R::KEY)))?;
        let version = self.version_for(api_key)?;
        self.start_versioned(request, version).await
    }

    async fn start_versioned<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<PendingResponse<R>> {
        let api_key = ApiKey::try_from(R::KEY)
            .map_err(|_| Error::Protocol(format!("unknown API key {}", R::KEY)))?;
        let (correlation_id, frame) = self.frame(request, version)?;
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().as_mut() {
            Some(pending) => {
                pending.insert(correlation_id, tx);
            }
            None => {
                return Err(Error::Connection {
                    addr: self.addr.clone(),
                    reason: "connection closed".into(),
                })
            }
        }
        if let Err(err) = self.write(&frame).await {
            if let Some(pending) = self.pending.lock().as_mut() {
                pending.remove(&correlation_id);
            }
            return Err(err);
        }
        Ok(PendingResponse {
            rx,
            api_key,
            version,
            correlation_id,
            addr: self.addr.clone(),
            timeout: self.request_timeout,
            pending: self.pending.clone(),
            _response: std::marker::PhantomData,
        })
    }

    fn frame<R: Request>(&self, request: &R, version: i16) -> Result<(i32, BytesMut)> {
        let api_key = ApiKey::try_from(R::KEY)
            .map_err(|_| Error::Protocol(format!("unknown API key {}", R::KEY)))?;
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        // Sized exactly: growing the buffer would copy a produce request's records again at
        // each doubling.
        let header_version = api_key.request_header_version(version);
        let size = header.compute_size(header_version).unwrap_or(64)
            + request.compute_size(version).unwrap_or(256);
        let mut frame = BytesMut::with_capacity(4 + size);
        frame.put_i32(0);
        header
            .encode(&mut frame, header_version)
            .map_err(|e| Error::Protocol(format!("encode {api_key:?} header: {e}")))?;
        request
            .encode(&mut frame, version)
            .map_err(|e| Error::Protocol(format!("encode {api_key:?} v{version}: {e}")))?;
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        Ok((correlation_id, frame))
    }

    async fn write(&self, frame: &[u8]) -> Result<()> {
        let mut writer = self.writer.lock().await;
        writer
            .write_all(frame)
            .await
            .map_err(|e| Error::Connection {
                addr: self.addr.clone(),
                reason: e.to_string(),
            })
    }
}

async fn read_responses<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    pending: Pending,
    addr: String,
) {
    let failure = loop {
        let mut prefix = [0u8; 4];
        if let Err(err) = reader.read_exact(&mut prefix).await {
            break err.to_string();
        }
        let size = i32::from_be_bytes(prefix);
        if size < 4 {
            break format!("bad response size {size}");
        }
        let mut frame = BytesMut::zeroed(size as usize);
        if let Err(err) = reader.read_exact(&mut frame).await {
            break err.to_string();
        }
        let correlation_id = (&frame[..4]).get_i32();
        let waiter = pending
            .lock()
            .as_mut()
            .and_then(|p| p.remove(&correlation_id));
        if let Some(waiter) = waiter {
            let _ = waiter.send(Ok(frame.freeze()));
        }
    };
    // Fail everything still waiting, and refuse new requests.
    if let Some(waiters) = pending.lock().take() {
        for (_, waiter) in waiters {
            let _ = waiter.send(Err(Error::Connection {
                addr: addr.clone(),
                reason: failure.clone(),
            }));
        }
    }
}
