//! How a virtual user talks to the target: one keep-alive HTTP/1.1
//! connection per user, driven inside the user's own task (no connection
//! task, no pool lock, no cross-task wake-up per request), reconnecting
//! whenever the server closes it.

use crate::client::{connect_error_kind, error_chain, hyper_error_kind, Connector};
use crate::error::ErrorKind;
use crate::template::{Prepared, SAMPLE_BODY_BYTES};
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::time::Duration;
use tokio::net::TcpStream;
use tower_service::Service as _;

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: u16,
    /// When asked for: the first [`SAMPLE_BODY_BYTES`] bytes of the body,
    /// and its full length.
    pub body: Option<(Vec<u8>, usize)>,
}

/// A request that got no complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

/// Opens one connection per virtual user.
pub(crate) trait Transport: Send + Sync + 'static {
    type Conn: Exchange;
    fn open(&self) -> Self::Conn;
}

/// One user's connection: a request in, its complete response out.
pub(crate) trait Exchange: Send + 'static {
    fn exchange(
        &mut self,
        request: &Prepared,
        keep_body: bool,
    ) -> impl Future<Output = Result<Reply, Failure>> + Send;
}

/// The real transport.
pub(crate) struct Http {
    connector: Connector,
    origin: Uri,
    timeout: Duration,
}

impl Http {
    pub fn new(connector: Connector, origin: Uri, timeout: Duration) -> Http {
        Http {
            connector,
            origin,
            timeout,
        }
    }
}

impl Transport for Http {
    type Conn = HttpUser;

    fn open(&self) -> HttpUser {
        HttpUser {
            connector: self.connector.clone(),
            origin: self.origin.clone(),
            timeout: self.timeout,
            live: None,
        }
    }
}

type Io = MaybeHttpsStream<TokioIo<TcpStream>>;

/// A user's connection, opened on first use and after every close.
pub(crate) struct HttpUser {
    connector: Connector,
    origin: Uri,
    timeout: Duration,
    live: Option<Live>,
}

struct Live {
    sender: SendRequest<Full<Bytes>>,
    conn: Pin<Box<Connection<Io, Full<Bytes>>>>,
    /// The connection future has finished (the server closed it).
    done: bool,
}

/// Polls `conn` (reads and writes happen there) and then `fut`, in one
/// task: a response read by the connection completes `fut` in the same
/// poll.
async fn drive<F: Future>(
    conn: &mut Pin<Box<Connection<Io, Full<Bytes>>>>,
    done: &mut bool,
    fut: F,
) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if !*done && conn.as_mut().poll(cx).is_ready() {
            *done = true;
        }
        fut.as_mut().poll(cx)
    })
    .await
}

impl Exchange for HttpUser {
    async fn exchange(&mut self, request: &Prepared, keep_body: bool) -> Result<Reply, Failure> {
        match tokio::time::timeout(self.timeout, self.attempt(request, keep_body)).await {
            Ok(result) => result,
            Err(_) => {
                // Mid-request: the connection's state is unknown.
                self.live = None;
                Err(Failure {
                    kind: ErrorKind::Timeout,
                    message: format!(
                        "no complete response within {} ms",
                        self.timeout.as_millis()
                    ),
                })
            }
        }
    }
}

impl HttpUser {
    async fn connect(&mut self) -> Result<Live, Failure> {
        let connector = &mut self.connector;
        let origin = self.origin.clone();
        let connected = async {
            poll_fn(|cx| connector.poll_ready(cx)).await?;
            connector.call(origin).await
        };
        let stream = connected.await.map_err(|e| Failure {
            kind: connect_error_kind(e.as_ref()),
            message: error_chain(e.as_ref()),
        })?;
        let (sender, conn) = http1::handshake(stream).await.map_err(|e| Failure {
            kind: hyper_error_kind(&e),
            message: error_chain(&e),
        })?;
        Ok(Live {
            sender,
            conn: Box::pin(conn),
            done: false,
        })
    }

    async fn attempt(&mut self, request: &Prepared, keep_body: bool) -> Result<Reply, Failure> {
        // At most twice: a kept-alive connection the server closed in the
        // meantime is replaced without counting an error.
        loop {
            let fresh = self.live.is_none();
            if fresh {
                self.live = Some(self.connect().await?);
            }
            let Live { sender, conn, done } = self.live.as_mut().expect("just connected");
            let ready = drive(conn, done, poll_fn(|cx| sender.poll_ready(cx))).await;
            if ready.is_err() {
                self.live = None;
                if fresh {
                    return Err(Failure {
                        kind: ErrorKind::Io,
                        message: "the connection closed before the request was sent".into(),
                    });
                }
                continue;
            }
            let exchange = async {
                let response = sender.send_request(request.request()).await?;
                let status = response.status().as_u16();
                let mut body = response.into_body();
                let mut kept = keep_body.then(|| (Vec::new(), 0usize));
                while let Some(frame) = body.frame().await {
                    if let (Some((prefix, total)), Some(data)) = (kept.as_mut(), frame?.data_ref())
                    {
                        let room = SAMPLE_BODY_BYTES.saturating_sub(prefix.len());
                        prefix.extend_from_slice(&data[..room.min(data.len())]);
                        *total += data.len();
                    }
                }
                Ok::<_, hyper::Error>(Reply { status, body: kept })
            };
            let result = drive(conn, done, exchange).await;
            let closed = *done;
            match result {
                Ok(reply) => {
                    if closed {
                        self.live = None;
                    }
                    return Ok(reply);
                }
                Err(e) => {
                    self.live = None;
                    if e.is_canceled() && !fresh {
                        continue;
                    }
                    return Err(Failure {
                        kind: hyper_error_kind(&e),
                        message: error_chain(&e),
                    });
                }
            }
        }
    }
}
