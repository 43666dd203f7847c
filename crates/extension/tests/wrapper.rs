//! The layer's exec wrapper (layer/wrapper) with the real proxy and with
//! broken ones: the runtime it execs gets the proxy's address only when the
//! proxy said so on the wrapper's pipe, else the real Runtime API, and
//! quickly. Each run is a process group of its own, killed at the end, so
//! no proxy outlives its test.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

const REAL_API: &str = "127.0.0.1:9001";

/// Held while a test writes an executable and while one spawns a process:
/// a fork in another test's thread while a file is open for writing keeps
/// it open in the child, and running that file then fails with "Text file
/// busy" (ETXTBSY).
static FILES_OR_SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A layer directory: the wrapper, and `proxy` as `turbulence-extension`.
struct Layer {
    dir: PathBuf,
}

enum Proxy<'a> {
    Real,
    Missing,
    Script(&'a str),
    Bytes(&'a [u8]),
}

impl Layer {
    fn new(name: &str, proxy: Proxy<'_>) -> Layer {
        let dir =
            std::env::temp_dir().join(format!("turbulence-wrapper-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let _writing = FILES_OR_SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("layer/wrapper");
        std::fs::copy(source, dir.join("wrapper")).unwrap();
        let binary = dir.join("turbulence-extension");
        match proxy {
            Proxy::Real => {
                std::fs::copy(env!("CARGO_BIN_EXE_turbulence-extension"), &binary).unwrap();
            }
            Proxy::Missing => {}
            Proxy::Script(text) => {
                std::fs::write(&binary, format!("#!/bin/bash\n{text}\n")).unwrap()
            }
            Proxy::Bytes(bytes) => std::fs::write(&binary, bytes).unwrap(),
        }
        if binary.exists() {
            std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Layer { dir }
    }

    /// Run the wrapper with a "runtime" that prints the Runtime API it was
    /// given and then waits; returns that line and how long it took.
    fn run(&self, env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(self.dir.join("wrapper"));
        command
            .args([
                "/bin/sh",
                "-c",
                "echo \"api=$AWS_LAMBDA_RUNTIME_API\"; exec sleep 30",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", REAL_API)
            .envs(env.iter().copied())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = {
            let _spawning = FILES_OR_SPAWN.lock().unwrap_or_else(|e| e.into_inner());
            command.spawn().unwrap()
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Run {
            api: line.trim().trim_start_matches("api=").to_string(),
            took: started.elapsed(),
            child,
        }
    }
}

impl Drop for Layer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Run {
    api: String,
    took: Duration,
    child: Child,
}

impl Run {
    /// The names of the live processes left in the run's group.
    fn processes(&self) -> Vec<String> {
        let group = self.child.id();
        let mut names = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            // Zombies (killed, not reaped by the runtime) are gone.
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            if fields.first() != Some(&"Z") && fields.get(2) == Some(&group.to_string().as_str()) {
                names.push(stat[open + 1..close].to_string());
            }
        }
        names
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

const PARAM: (&str, &str) = ("FAILURE_INJECTION_PARAM", "/turbulence/faults/f");

#[test]
fn a_ready_proxy_is_what_the_runtime_talks_to() {
    let layer = Layer::new("ready", Proxy::Real);
    let run = layer.run(&[PARAM]);
    assert_ne!(run.api, REAL_API);
    assert!(run.api.starts_with("127.0.0.1:"), "{}", run.api);
    // The address is the proxy's: it accepts connections.
    std::net::TcpStream::connect(&run.api).expect("the proxy listens");
    assert!(
        run.processes()
            .iter()
            .any(|p| p.starts_with("turbulence-ext")),
        "{:?}",
        run.processes()
    );
    assert!(run.took < Duration::from_millis(900), "{:?}", run.took);
}

#[test]
fn without_a_parameter_the_proxy_is_not_started() {
    let layer = Layer::new("off", Proxy::Real);
    let run = layer.run(&[]);
    assert_eq!(run.api, REAL_API);
    assert!(!run
        .processes()
        .iter()
        .any(|p| p.starts_with("turbulence-ext")));
}

#[test]
fn a_missing_proxy_gives_the_real_api() {
    let layer = Layer::new("missing", Proxy::Missing);
    assert_eq!(layer.run(&[PARAM]).api, REAL_API);
}

#[test]
fn a_proxy_that_crashes_or_cannot_run_gives_the_real_api_at_once() {
    for (name, proxy) in [
        ("crash", Proxy::Script("exit 1")),
        (
            "wrong-arch",
            Proxy::Bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00not this machine"),
        ),
        (
            "garbage",
            Proxy::Script("echo 'hello there' >&4; exec sleep 30"),
        ),
    ] {
        let layer = Layer::new(name, proxy);
        let run = layer.run(&[PARAM]);
        assert_eq!(run.api, REAL_API, "{name}");
        if name != "garbage" {
            assert!(
                run.took < Duration::from_millis(500),
                "{name}: {:?}",
                run.took
            );
        }
    }
}

#[test]
fn a_proxy_that_is_too_slow_is_stopped_and_the_runtime_gets_the_real_api() {
    // It listens on a port (as a stale proxy would) but never says so on
    // the pipe.
    let layer = Layer::new("slow", Proxy::Script("exec sleep 30"));
    let run = layer.run(&[PARAM, ("TURBULENCE_PROXY_READY_TIMEOUT_MS", "300")]);
    assert_eq!(run.api, REAL_API);
    assert!(
        (Duration::from_millis(300)..Duration::from_millis(1500)).contains(&run.took),
        "{:?}",
        run.took
    );
    // The slow proxy was killed: only the runtime (sleep) is left.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(run.processes(), ["sleep"], "{:?}", run.processes());
}

#[test]
fn a_taken_port_gives_the_real_api() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let layer = Layer::new("taken", Proxy::Real);
    let run = layer.run(&[PARAM, ("TURBULENCE_PROXY_PORT", &port)]);
    assert_eq!(run.api, REAL_API);
    assert!(run.took < Duration::from_millis(900), "{:?}", run.took);
}
