//! One connection to one broker: typed requests in, typed responses out, pipelined. Versions are
//! negotiated with ApiVersions when the connection opens.
//!
//! Over a byte stream (TCP), a writer lock serialises frames and a reader task matches responses
//! to requests by correlation id, so many requests can be in flight (Kafka answers them in
//! order). An embedded client's connection instead hands requests to the in-process broker's
//! handlers as values ([`Connection::direct`]): no framing, encoding or copying.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::direct::{FromResponseKind, InProcess};
use crate::error::{Error, Result};
use crate::protocol::Reply;

type Pending = Arc<Mutex<Option<HashMap<i32, oneshot::Sender<Result<Bytes>>>>>>;

/// What a request type needs to travel either way.
pub trait ClientRequest: Request + Clone + Into<RequestKind> {}
impl<R: Request + Clone + Into<RequestKind>> ClientRequest for R {}

/// Highest versions the client uses, where it caps the kafka-protocol crate's: Produce and Fetch
/// stay at v12, the last versions that name topics (v13 names them by id).
fn client_max_version(api_key: ApiKey) -> i16 {
    match api_key {
        ApiKey::Produce | ApiKey::Fetch => 12,
        // The request shapes this client builds are those Sluice's broker reads: newer versions
        // of these change the shape (batched groups, topic ids, KIP-848 member epochs), and some
        // are past what the codec can encode (OffsetFetch v10 against Kafka 4).
        other => {
            crate::protocol::supported_versions(other)
                .unwrap_or_else(|| other.valid_versions())
                .max
        }
    }
}

enum PendingState {
    Direct(oneshot::Receiver<Reply>),
    Wire {
        rx: oneshot::Receiver<Result<Bytes>>,
        correlation_id: i32,
        pending: Pending,
    },
}

/// A request sent on a connection whose response has not been read yet.
pub struct PendingResponse<R: Request> {
    state: PendingState,
    _response: std::marker::PhantomData<fn() -> R>,
    api_key: ApiKey,
    version: i16,
    addr: String,
    timeout: Duration,
}

impl<R: Request> PendingResponse<R>
where
    R::Response: FromResponseKind,
{
    /// Waits (up to `request.timeout.ms`) for the response and decodes it.
    pub async fn wait(self) -> Result<R::Response> {
        let api_key = self.api_key;
        let (rx, correlation_id, pending) = match self.state {
            PendingState::Direct(rx) => {
                let reply = match tokio::time::timeout(self.timeout, rx).await {
                    Ok(Ok(reply)) => reply,
                    Ok(Err(_)) => {
                        return Err(Error::Connection {
                            addr: self.addr,
                            reason: "the broker stopped".into(),
                        })
                    }
                    Err(_) => {
                        return Err(Error::Timeout {
                            what: format!("{api_key:?} response from {}", self.addr),
                            after_ms: self.timeout.as_millis() as u64,
                        })
                    }
                };
                return match reply {
                    Reply::Respond(kind) => R::Response::from_kind(*kind).ok_or_else(|| {
                        Error::Protocol(format!(
                            "the broker answered {api_key:?} with another response"
                        ))
                    }),
                    Reply::Nothing => Err(Error::Protocol(format!(
                        "the broker sent no response to {api_key:?}"
                    ))),
                    Reply::Close(reason) => Err(Error::Connection {
                        addr: self.addr,
                        reason,
                    }),
                };
            }
            PendingState::Wire {
                rx,
                correlation_id,
                pending,
            } => (rx, correlation_id, pending),
        };
        let mut body = match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => {
                return Err(Error::Connection {
                    addr: self.addr,
                    reason: "connection closed".into(),
                })
            }
            Err(_) => {
                if let Some(pending) = pending.lock().as_mut() {
                    pending.remove(&correlation_id);
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

type SharedWriter = Arc<tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

/// Writes a whole frame even if the caller is cancelled (a timeout, an aborted task): half a
/// frame would corrupt every later exchange on the connection. The lock is taken here, so
/// frames go out in call order; the write itself runs in a task of its own.
async fn write_frame(writer: &SharedWriter, frame: bytes::Bytes) -> std::io::Result<()> {
    let mut guard = writer.clone().lock_owned().await;
    let write = tokio::spawn(async move { guard.write_all(&frame).await });
    match write.await {
        Ok(written) => written,
        Err(err) => Err(std::io::Error::other(err.to_string())),
    }
}

enum Transport {
    Wire {
        writer: SharedWriter,
        pending: Pending,
        reader: tokio::task::JoinHandle<()>,
    },
    /// Requests go, in order, to a task that hands them to the broker's handlers (so that the
    /// client encodes the next batch while the broker appends the last one).
    Direct {
        requests:
            tokio::sync::mpsc::UnboundedSender<(crate::protocol::Request, oneshot::Sender<Reply>)>,
        worker: tokio::task::JoinHandle<()>,
    },
}

/// An open, version-negotiated connection.
pub struct Connection {
    addr: String,
    client_id: StrBytes,
    next_correlation_id: AtomicI32,
    versions: HashMap<i16, (i16, i16)>,
    request_timeout: Duration,
    transport: Transport,
}

impl Drop for Connection {
    fn drop(&mut self) {
        match &self.transport {
            Transport::Wire { reader, .. } => reader.abort(),
            Transport::Direct { worker, .. } => worker.abort(),
        }
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

    /// A connection over any byte stream, with versions negotiated. `addr` names the peer.
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
            next_correlation_id: AtomicI32::new(1),
            versions: HashMap::new(),
            request_timeout,
            transport: Transport::Wire {
                writer: Arc::new(tokio::sync::Mutex::new(Box::new(writer))),
                pending,
                reader,
            },
        };
        connection.negotiate().await?;
        Ok(connection)
    }

    /// A connection to a broker in this process: requests are handed to its handlers as values,
    /// in order, by a task on the broker's runtime.
    pub async fn direct(
        broker: &InProcess,
        addr: &str,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Connection> {
        let (requests, queue) = tokio::sync::mpsc::unbounded_channel();
        let worker = broker.serve(queue);
        let mut connection = Connection {
            addr: addr.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            next_correlation_id: AtomicI32::new(1),
            versions: HashMap::new(),
            request_timeout,
            transport: Transport::Direct { requests, worker },
        };
        connection.negotiate().await?;
        Ok(connection)
    }

    async fn negotiate(&mut self) -> Result<()> {
        // ApiVersions v3 is what current clients send first; brokers that only know v0 answer
        // UNSUPPORTED_VERSION in v0, and we retry with v0.
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut response: ApiVersionsResponse = self.send_versioned(&request, 3).await?;
        if response.error_code == kafka_protocol::ResponseError::UnsupportedVersion.code() {
            response = self
                .send_versioned(&ApiVersionsRequest::default(), 0)
                .await?;
        }
        if let Some(err) = Error::from_code(response.error_code, None) {
            return Err(err);
        }
        self.versions = response
            .api_keys
            .iter()
            .map(|api| (api.api_key, (api.min_version, api.max_version)))
            .collect();
        Ok(())
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

    fn api_key_of<R: Request>() -> Result<ApiKey> {
        ApiKey::try_from(R::KEY).map_err(|_| Error::Protocol(format!("unknown API key {}", R::KEY)))
    }

    /// Sends a request at the negotiated version and waits for its response.
    pub async fn send<R: ClientRequest>(&self, request: &R) -> Result<R::Response>
    where
        R::Response: FromResponseKind,
    {
        let version = self.version_for(Self::api_key_of::<R>()?)?;
        self.send_versioned(request, version).await
    }

    /// Sends a request and waits up to `timeout` (instead of `request.timeout.ms`) for the
    /// response: for requests the broker may hold longer, like JoinGroup.
    pub async fn send_with_timeout<R: ClientRequest>(
        &self,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response>
    where
        R::Response: FromResponseKind,
    {
        let mut pending = self.start(request).await?;
        pending.timeout = timeout;
        pending.wait().await
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub async fn send_no_response<R: ClientRequest>(&self, request: &R) -> Result<()>
    where
        R::Response: FromResponseKind,
    {
        let version = self.version_for(Self::api_key_of::<R>()?)?;
        match &self.transport {
            Transport::Direct { requests, .. } => {
                let (tx, _rx) = oneshot::channel();
                requests
                    .send((self.direct_request(request, version), tx))
                    .map_err(|_| Error::Connection {
                        addr: self.addr.clone(),
                        reason: "the broker stopped".into(),
                    })
            }
            Transport::Wire { .. } => {
                let (_, frame) = self.frame(request, version)?;
                self.write(frame.freeze()).await
            }
        }
    }

    /// Sends a request at `version` and waits for its response.
    pub async fn send_versioned<R: ClientRequest>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response>
    where
        R::Response: FromResponseKind,
    {
        self.start_versioned(request, version).await?.wait().await
    }

    /// Sends a request at the negotiated version and returns its pending response: requests
    /// started one after another are handled (and answered) in that order.
    pub async fn start<R: ClientRequest>(&self, request: &R) -> Result<PendingResponse<R>>
    where
        R::Response: FromResponseKind,
    {
        let version = self.version_for(Self::api_key_of::<R>()?)?;
        self.start_versioned(request, version).await
    }

    fn direct_request<R: ClientRequest>(
        &self,
        request: &R,
        version: i16,
    ) -> crate::protocol::Request {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        crate::protocol::Request {
            header: RequestHeader::default()
                .with_request_api_key(R::KEY)
                .with_request_api_version(version)
                .with_correlation_id(correlation_id)
                .with_client_id(Some(self.client_id.clone())),
            api_key: ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions),
            body: request.clone().into(),
            client_host: "/in-process".into(),
        }
    }

    async fn start_versioned<R: ClientRequest>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<PendingResponse<R>>
    where
        R::Response: FromResponseKind,
    {
        let api_key = Self::api_key_of::<R>()?;
        let (writer, pending) = match &self.transport {
            Transport::Direct { requests, .. } => {
                let (tx, rx) = oneshot::channel();
                requests
                    .send((self.direct_request(request, version), tx))
                    .map_err(|_| Error::Connection {
                        addr: self.addr.clone(),
                        reason: "the broker stopped".into(),
                    })?;
                return Ok(PendingResponse {
                    state: PendingState::Direct(rx),
                    _response: std::marker::PhantomData,
                    api_key,
                    version,
                    addr: self.addr.clone(),
                    timeout: self.request_timeout,
                });
            }
            Transport::Wire {
                writer, pending, ..
            } => (writer, pending),
        };
        let (correlation_id, frame) = self.frame(request, version)?;
        let (tx, rx) = oneshot::channel();
        match pending.lock().as_mut() {
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
        let written = write_frame(writer, frame.freeze()).await;
        if let Err(err) = written {
            if let Some(pending) = pending.lock().as_mut() {
                pending.remove(&correlation_id);
            }
            return Err(Error::Connection {
                addr: self.addr.clone(),
                reason: err.to_string(),
            });
        }
        Ok(PendingResponse {
            _response: std::marker::PhantomData,
            state: PendingState::Wire {
                rx,
                correlation_id,
                pending: pending.clone(),
            },
            api_key,
            version,
            addr: self.addr.clone(),
            timeout: self.request_timeout,
        })
    }

    fn frame<R: Request>(&self, request: &R, version: i16) -> Result<(i32, BytesMut)> {
        let api_key = Self::api_key_of::<R>()?;
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

    async fn write(&self, frame: bytes::Bytes) -> Result<()> {
        let Transport::Wire { writer, .. } = &self.transport else {
            return Err(Error::Protocol("no stream to write to".into()));
        };
        write_frame(writer, frame)
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
