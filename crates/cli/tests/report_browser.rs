//! The report in a real browser: headless Chromium opens the rendered
//! fixture journals from `file://`, logs no console message at all (no
//! error, no uncaught exception, no Content-Security-Policy refusal — the
//! page logs nothing of its own) and takes a screenshot worth looking at,
//! at 700 and at 1400 px; at both, nothing makes the page scroll sideways.
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
/// A narrow window (a laptop split in two, a tablet) and a wide one.
const WIDTHS: [u32; 2] = [700, 1400];
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
    width: u32,
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
/// a fresh profile and takes a screenshot `width` px wide; bounded by
/// [`TIMEOUT`].
fn open_in_chromium(browser: &str, name: &str, html: &str, width: u32) -> Shot {
    let (stdout, stderr, png) = chromium_run(browser, name, html, width, Mode::Screenshot);
    let _ = stdout;
    Shot { png, stderr, width }
}

enum Mode {
    Screenshot,
    /// The DOM after load, on standard output.
    DumpDom,
}

/// How many px the page is wider than a `width` px window (0: no
/// horizontal scroll). A probe script, allowed by adding its hash to the
/// report's own CSP, writes the difference into the DOM Chromium dumps.
fn horizontal_overflow(browser: &str, name: &str, html: &str, width: u32) -> i64 {
    use base64::Engine as _;
    use sha2::Digest as _;
    const PROBE: &str = "document.body.setAttribute('data-overflow',String(document.documentElement.scrollWidth-document.documentElement.clientWidth));";
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(PROBE));
    assert!(html.contains("script-src "), "the report has a CSP");
    let probed = html
        .replacen("script-src ", &format!("script-src 'sha256-{hash}' "), 1)
        .replacen("</body>", &format!("<script>{PROBE}</script></body>"), 1);
    let (dom, stderr, _) = chromium_run(browser, name, &probed, width, Mode::DumpDom);
    let at = dom
        .find("data-overflow=\"")
        .unwrap_or_else(|| panic!("no overflow measured at {width} px; stderr:\n{stderr}"));
    let rest = &dom[at + "data-overflow=\"".len()..];
    rest[..rest.find('"').unwrap()].parse().unwrap()
}

fn chromium_run(
    browser: &str,
    name: &str,
    html: &str,
    width: u32,
    mode: Mode,
) -> (String, String, PathBuf) {
    let _one = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let dir = out_dir();
    let page = dir.join(format!("{name}.html"));
    let png = dir.join(format!("{name}.png"));
    let profile = dir.join(format!("{name}-profile-{}", std::process::id()));
    let stderr_path = dir.join(format!("{name}.stderr"));
    let stdout_path = dir.join(format!("{name}.stdout"));
    let _ = std::fs::remove_file(&png);
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::write(&page, html).unwrap();
    let stderr_file = std::fs::File::create(&stderr_path).unwrap();
    let stdout_file = std::fs::File::create(&stdout_path).unwrap();
    let output = match mode {
        Mode::Screenshot => format!("--screenshot={}", png.display()),
        Mode::DumpDom => "--dump-dom".to_string(),
    };
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
                &output,
                &format!("--window-size={width},{HEIGHT}"),
                &format!("file://{}", page.display()),
            ])
            .stdin(Stdio::null())
            .stdout(stdout_file)
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
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&profile);
    match status {
        None => panic!("chromium did not finish within {TIMEOUT:?} (killed process group {pid}); stderr:\n{stderr}"),
        Some(s) if !s.success() => panic!("chromium exited with {s}; stderr:\n{stderr}"),
        Some(_) => {}
    }
    (stdout, stderr, png)
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
    assert_eq!((width, height), (shot.width, HEIGHT), "screenshot size");
    assert!(
        bytes.len() as u64 >= min_bytes,
        "{} is only {} bytes: a blank page?",
        shot.png.display(),
        bytes.len()
    );
}

/// The ECS fixture with the series the journal function collects, so the
/// target-over-time charts are in the page too.
fn with_metrics(mut j: Value) -> Value {
    let (start, end) = (j["start"].clone(), j["end"].clone());
    j["turbulence"]["metrics"] = serde_json::json!([
        {"title": "abort alarm 'abort': Turbulence/Local Errors (Sum, 60 s)", "source": "alarm",
         "lines": [{"name": "Errors", "points": [[start, 0.0], [end, 4.0]]}], "threshold": 1.0, "fired_at": end},
        {"title": "ECS service 'web': desired and running tasks", "source": "ecs",
         "lines": [{"name": "desired", "points": [[start, 3], [end, 0]]}, {"name": "running", "points": [[start, 3], [end, 0]]}]}
    ]);
    j
}

#[test]
fn the_reports_render_in_chromium_without_a_console_message() {
    let Some(browser) = chromium() else { return };
    for (journal, shot_name) in [
        (fixture("journal-api-abuse-deviated.json"), "report"),
        (
            with_metrics(fixture("journal-ecs-action-failed.json")),
            "report-ecs-failed",
        ),
    ] {
        let html = turbulence_cli::report::render(&journal).unwrap();
        for width in WIDTHS {
            let name = format!("{shot_name}-{width}");
            let shot = open_in_chromium(browser, &name, &html, width);
            assert!(
                shot.console().is_empty(),
                "{name}: console messages:\n{}",
                shot.console().join("\n")
            );
            // A blank 700×2000 page is ~6 KB; the report has text and charts.
            assert_screenshot(&shot, 40_000);
            eprintln!("screenshot: {}", shot.png.display());
            let overflow = horizontal_overflow(browser, &format!("{name}-dom"), &html, width);
            assert!(
                overflow <= 0,
                "{name}: the page is {overflow} px wider than the window"
            );
        }
    }
}

#[test]
fn the_overflow_check_catches_a_page_too_wide() {
    let Some(browser) = chromium() else { return };
    let wide = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'none'\"><title>wide</title></head>\
                <body><div style=\"width:1000px\">wider than the window</div></body></html>";
    assert!(horizontal_overflow(browser, "too-wide", wide, 700) > 200);
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
        WIDTHS[1],
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
    let shot = open_in_chromium(browser, "broken-csp", &html, WIDTHS[1]);
    assert!(
        shot.console()
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "the refused script was not seen; stderr:\n{}",
        shot.stderr
    );
}
