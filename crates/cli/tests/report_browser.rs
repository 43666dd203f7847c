//! The report in a real browser: headless Chromium opens the rendered
//! fixture journals from `file://`, logs no console message at all (no
//! error, no uncaught exception, no Content-Security-Policy refusal — the
//! page logs nothing of its own) and takes a screenshot worth looking at.
//!
//! Needs `/usr/bin/chromium` (Debian: `apt-get install -y chromium`); fails
//! without it unless `TURBULENCE_SKIP_BROWSER=1`. The screenshots are left
//! in `$CARGO_TARGET_TMPDIR/report-browser/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";
const TIMEOUT: Duration = Duration::from_secs(90);
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 2000;

/// One Chromium at a time: the machine has two cores.
static BROWSER: Mutex<()> = Mutex::new(());

fn chromium() -> Option<&'static str> {
    if Path::new(CHROMIUM).exists() {
        return Some(CHROMIUM);
    }
    if std::env::var("TURBULENCE_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("TURBULENCE_SKIP_BROWSER=1: skipping the browser test");
        return None;
    }
    panic!(
        "{CHROMIUM} is not installed: the report's browser test needs it \
         (Debian: apt-get install -y chromium), or set TURBULENCE_SKIP_BROWSER=1 to skip it"
    );
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

struct Shot {
    png: PathBuf,
    stderr: String,
}

impl Shot {
    /// Every console message Chromium logged. This Chromium logs console
    /// messages at INFO whatever their level, so none is allowed: the
    /// report itself logs nothing.
    fn console(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
            .collect()
    }
}

/// Opens `html` (written to `<out>/<name>.html`) in headless Chromium with
/// a fresh profile and takes a screenshot; bounded by [`TIMEOUT`].
fn open_in_chromium(browser: &str, name: &str, html: &str) -> Shot {
    let _one = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let dir = out_dir();
    let page = dir.join(format!("{name}.html"));
    let png = dir.join(format!("{name}.png"));
    let profile = dir.join(format!("{name}-profile-{}", std::process::id()));
    let stderr_path = dir.join(format!("{name}.stderr"));
    let _ = std::fs::remove_file(&png);
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::write(&page, html).unwrap();
    let stderr_file = std::fs::File::create(&stderr_path).unwrap();
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                &format!("--user-data-dir={}", profile.display()),
                "--enable-logging=stderr",
                "--v=0",
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={WIDTH},{HEIGHT}"),
                &format!("file://{}", page.display()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr_file)
            // Its own process group, so a hung browser goes with all its helpers.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {browser}: {e}"))
    };
    let pid = child.id();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&profile);
    match status {
        None => panic!("chromium did not finish within {TIMEOUT:?} (killed process group {pid}); stderr:\n{stderr}"),
        Some(s) if !s.success() => panic!("chromium exited with {s}; stderr:\n{stderr}"),
        Some(_) => {}
    }
    Shot { png, stderr }
}

/// A real screenshot: a PNG of the window's size, and not a blank page.
fn assert_screenshot(shot: &Shot, min_bytes: u64) {
    let bytes = std::fs::read(&shot.png).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {}: {e}; stderr:\n{}",
            shot.png.display(),
            shot.stderr
        )
    });
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "not a PNG: {}",
        shot.png.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (WIDTH, HEIGHT), "screenshot size");
    assert!(
        bytes.len() as u64 >= min_bytes,
        "{} is only {} bytes: a blank page?",
        shot.png.display(),
        bytes.len()
    );
}

#[test]
fn the_reports_render_in_chromium_without_a_console_message() {
    let Some(browser) = chromium() else { return };
    for (fixture_name, shot_name) in [
        ("journal-api-abuse-deviated.json", "report"),
        ("journal-ecs-action-failed.json", "report-ecs-failed"),
    ] {
        let html = turbulence_cli::report::render(&fixture(fixture_name)).unwrap();
        let shot = open_in_chromium(browser, shot_name, &html);
        assert!(
            shot.console().is_empty(),
            "{fixture_name}: console messages:\n{}",
            shot.console().join("\n")
        );
        // A blank 1280×2000 page is ~10 KB; the report has text and charts.
        assert_screenshot(&shot, 60_000);
        eprintln!("screenshot: {}", shot.png.display());
    }
}

#[test]
fn the_console_check_catches_broken_pages() {
    let Some(browser) = chromium() else { return };
    // An uncaught exception.
    let shot = open_in_chromium(
        browser,
        "broken-throws",
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>broken</title></head>\
         <body><p>broken on purpose</p><script>throw new Error(\"x\")</script></body></html>",
    );
    let console = shot.console();
    assert!(
        console.iter().any(|l| l.contains("Uncaught Error: x")),
        "the thrown error was not seen; stderr:\n{}",
        shot.stderr
    );
    assert_screenshot(&shot, 1_000);

    // The report with its script changed but not its hash: the CSP refuses
    // the script, and that is caught too.
    let html = turbulence_cli::report::render(&fixture("journal-api-abuse-deviated.json"))
        .unwrap()
        .replace("forEach(function(el){", "forEach(function(el){ ");
    let shot = open_in_chromium(browser, "broken-csp", &html);
    assert!(
        shot.console()
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "the refused script was not seen; stderr:\n{}",
        shot.stderr
    );
}
