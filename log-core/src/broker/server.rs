//! The TCP server: accepts connections and serves each one in its own task, answering its
//! requests in order. A frame that is too large or does not decode closes that connection, with
//! the reason logged; nothing else is affected.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::Broker;
use crate::error::{Error, Result};
use crate::protocol::{decode_request, encode_response, frame_size, FrameError, Reply};

/// A running listener; dropping the handle does not stop it, [`ServerHandle::shutdown`] does.
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The address the listener is bound to (with the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and closes every connection; waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds the broker's listener and serves it on the current tokio runtime.
pub async fn start(broker: Arc<Broker>) -> Result<ServerHandle> {
    let addr = broker.config.listener.socket_addr()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io("bind listener", addr.to_string(), e))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| Error::io("read listener address", addr.to_string(), e))?;
    broker.set_bound_port(local_addr.port());
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(broker, listener, stop_rx));
    Ok(ServerHandle {
        local_addr,
        stop,
        task,
    })
}

async fn accept_loop(broker: Arc<Broker>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let broker = broker.clone();
                    let stop = stop.clone();
                    connections.spawn(async move {
                        if let Err(reason) = serve_connection(broker, stream, stop).await {
                            tracing::info!(%peer, %reason, "closed connection");
                        }
                    });
                }
                Err(err) => tracing::warn!(%err, "accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// How much a connection reads beyond the frame it needs (the next frames' share).
const READ_AHEAD: usize = 64 * 1024;

/// Frames up to this size are copied out of the read buffer; larger ones (produce requests) are
/// handed on as slices of it.
const OWN_ALLOCATION_BELOW: usize = 16 * 1024;

/// Why a connection ended, other than the client closing it.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode response: {0}")]
    Encode(String),
    #[error("{0}")]
    Refused(String),
}

async fn serve_connection(
    broker: Arc<Broker>,
    stream: TcpStream,
    stop: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    let client_host = stream
        .peer_addr()
        .map(|a| format!("/{}", a.ip()))
        .unwrap_or_default();
    stream.set_nodelay(true)?;
    serve_stream(broker, stream, client_host, stop).await
}

async fn serve_stream<S>(
    broker: Arc<Broker>,
    stream: S,
    client_host: String,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectionError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let max = broker.config.socket_request_max_bytes;
    // Frames are split off one read buffer: each read takes whatever the socket holds (often
    // several frames), and a frame's bytes are copied only once, from the kernel.
    let mut buffer = BytesMut::with_capacity(READ_AHEAD);
    loop {
        while buffer.len() < 4 {
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                read = reader.read_buf(&mut buffer) => {
                    if read? == 0 {
                        if buffer.is_empty() {
                            return Ok(());
                        }
                        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
                    }
                }
            }
        }
        let size = frame_size([buffer[0], buffer[1], buffer[2], buffer[3]], max)?;
        buffer.advance(4);
        if buffer.capacity() < size {
            // Room for the whole frame and a little more, so the next prefix comes with it.
            buffer.reserve(size.max(READ_AHEAD) - buffer.len());
        }
        while buffer.len() < size {
            if reader.read_buf(&mut buffer).await? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
        }
        // Small frames get their own allocation: a handler may keep slices of a request (a
        // group id, member metadata), and those must not pin the whole read buffer.
        let frame = if size <= OWN_ALLOCATION_BELOW {
            let frame = Bytes::copy_from_slice(&buffer[..size]);
            buffer.advance(size);
            frame
        } else {
            buffer.split_to(size).freeze()
        };
        if buffer.capacity() - buffer.len() < READ_AHEAD / 16 {
            buffer.reserve(READ_AHEAD);
        }
        let mut request = decode_request(frame)?;
        request.client_host = client_host.clone();
        let api_key = request.api_key;
        let version = request.header.request_api_version;
        let correlation_id = request.header.correlation_id;
        // An ApiVersions request of an unknown version is answered in version 0 (KIP-511).
        let response_version = if version > api_key.valid_versions().max {
            0
        } else {
            version
        };
        match broker.handle(request).await {
            Reply::Respond(response) => {
                let bytes = encode_response(api_key, response_version, correlation_id, &response)
                    .map_err(ConnectionError::Encode)?;
                writer.write_all(&bytes).await?;
                writer.flush().await?;
            }
            Reply::Nothing => {}
            Reply::Close(reason) => return Err(ConnectionError::Refused(reason)),
        }
    }
}
