//! In-process servers on 127.0.0.1:0 for the socket tests.
#![allow(dead_code)]

use api_target::{App, Mode};
use load::Limits;
use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// The demo API in `mode` (valid token `demo-token`) and its base URL.
pub async fn target(mode: Mode) -> (Arc<App>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Arc::new(App::new(mode, "demo-token"));
    tokio::spawn(api_target::serve(listener, app.clone()));
    (app, url)
}

/// Accepts connections and never answers.
pub async fn silent() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

/// Answers every connection's first request with `response`, then closes.
pub async fn raw(response: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(response).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

/// A URL on which nothing listens.
pub async fn refused() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

pub fn limits() -> Limits {
    Limits {
        allowed_hosts: vec!["127.0.0.1".into()],
        // The local stack's opt-out: the target is on loopback.
        allow_loopback: true,
        max_rps: 100_000.0,
        ..Limits::default()
    }
}
