//! The demo API (`turbulence-api-target`, local/api-target) as a process on
//! loopback, for the tests that attack it: started on a free port, stopped
//! when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::{workspace_root, Error, Result};

/// A running demo API.
pub struct DemoApi {
    child: Child,
    port: u16,
}

impl DemoApi {
    /// Starts the built `turbulence-api-target` in `mode` (`buggy` or
    /// `fixed`), one worker thread.
    pub fn start(mode: &str) -> Result<DemoApi> {
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join("target"));
        let bin = target.join("debug/turbulence-api-target");
        if !bin.exists() {
            return Err(Error::Unexpected(format!(
                "{} is missing: build it with `cargo build -p api-target` (scripts/test does)",
                bin.display()
            )));
        }
        let mut child = Command::new(&bin)
            .args(["--port", "0", "--mode", mode, "--workers", "1"])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Unexpected(format!("start {}: {e}", bin.display())))?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok());
        match (read, port) {
            (Some(Ok(_)), Some(port)) => Ok(DemoApi { child, port }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(Error::Unexpected(format!(
                    "the demo API did not say where it listens (first line {line:?})"
                )))
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET /admin/stats`: `{"mode", "requests", "by_status",
    /// "last_request_unix_ms"}`.
    pub fn stats(&self) -> Result<Value> {
        let io = |e: std::io::Error| Error::Unexpected(format!("demo API stats: {e}"));
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(io)?;
        write!(
            s,
            "GET /admin/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .map_err(io)?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).map_err(io)?;
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        serde_json::from_str(body)
            .map_err(|e| Error::Unexpected(format!("demo API stats: {e}: {answer}")))
    }
}

impl Drop for DemoApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
