//! Issue 14's report in a real browser: `compare --simulate` writes `report.html`; headless Chromium
//! (the Debian package, which `.ci/run` installs) loads it from disk and takes a screenshot. The
//! page must load nothing from outside itself, log no console error, and show every graph, each
//! one not blank.

// Test code: a failed setup should panic loudly.
#![allow(clippy::unwrap_used)]

use csp_loadtest::{describe, run_harness, temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The colour of each graph's frame in report.html (`reports::html::GRAPH_FRAME`).
const FRAME: [u8; 3] = [0xc9, 0xca, 0xcb];

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "headless Chromium is needed to check report.html in a real browser: `.ci/run` installs \
         it (apt-get install -y chromium); install it the same way to run this test"
    );
}

/// Loads `page` in headless Chromium with a fresh profile and no network services, screenshots a
/// `width`×`height` window into `png`; returns Chromium's log (stderr), where console messages
/// appear as `INFO:CONSOLE` lines.
fn screenshot(page: &Path, png: &Path, width: u32, height: u32, profile: &Path) -> String {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("chromium output");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Console errors and uncaught exceptions in a Chromium log.
fn console_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// The graph frames in a screenshot: (x0, y0, x1, y1) of every rectangle drawn in [`FRAME`].
fn frames(img: &image::RgbImage) -> Vec<(u32, u32, u32, u32)> {
    let (w, h) = img.dimensions();
    // Rows holding a long horizontal run of the frame colour: top and bottom edges.
    let mut edges: Vec<(u32, u32, u32)> = Vec::new();
    for y in 0..h {
        let mut x = 0;
        while x < w {
            if img.get_pixel(x, y).0 == FRAME {
                let start = x;
                while x < w && img.get_pixel(x, y).0 == FRAME {
                    x += 1;
                }
                if x - start > w / 3 {
                    edges.push((y, start, x));
                }
            } else {
                x += 1;
            }
        }
    }
    // A top edge pairs with the next edge of the same span below it.
    let mut out = Vec::new();
    let mut used = vec![false; edges.len()];
    for i in 0..edges.len() {
        if used[i] {
            continue;
        }
        let (y0, a, b) = edges[i];
        if let Some(j) = (i + 1..edges.len())
            .find(|&j| !used[j] && edges[j].1 == a && edges[j].2 == b && edges[j].0 > y0 + 50)
        {
            used[i] = true;
            used[j] = true;
            out.push((a, y0, b, edges[j].0));
        }
    }
    out
}

/// Variance of the luma and share of non-white pixels inside a rectangle.
fn ink(img: &image::RgbImage, r: (u32, u32, u32, u32)) -> (f64, f64) {
    let (mut n, mut sum, mut sum2, mut dark) = (0f64, 0f64, 0f64, 0f64);
    for y in r.1 + 2..r.3.saturating_sub(2) {
        for x in r.0 + 2..r.2.saturating_sub(2) {
            let [red, g, b] = img.get_pixel(x, y).0;
            let l = 0.299 * f64::from(red) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
            n += 1.0;
            sum += l;
            sum2 += l * l;
            if l < 250.0 {
                dark += 1.0;
            }
        }
    }
    let mean = sum / n.max(1.0);
    (sum2 / n.max(1.0) - mean * mean, dark / n.max(1.0))
}

#[test]
fn report_html_renders_in_chromium_with_every_graph_and_no_console_error() {
    let chrome = chromium();
    let dir = temp_dir();
    let out = dir.path().join("cmp");
    let res = run_harness(
        [
            "compare".as_ref(),
            "--simulate".as_ref(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        Duration::from_secs(300),
    );
    assert_eq!(res.status.code(), Some(0), "{}", describe(&res));
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();

    // Self-contained: nothing is fetched. Every reference is a data: URL or an in-page anchor
    // (the SVG namespace is a name, not a fetch).
    for pat in ["src=\"", "href=\"", "url("] {
        for (i, _) in html.match_indices(pat) {
            let rest = &html[i + pat.len()..];
            assert!(
                rest.starts_with("data:") || rest.starts_with('#'),
                "report.html refers outside itself: {}",
                &html[i..(i + 80).min(html.len())]
            );
        }
    }
    assert!(
        !html.contains("<script"),
        "report.html must not need a script"
    );
    let figures = html.matches("<figure class=\"graph\"").count();
    assert_eq!(figures, 6, "two regions × (POA, PRA, loss)");
    for svg in ["north-poa.svg", "central-south-loss.svg"] {
        assert!(out.join(svg).is_file(), "{svg} beside the PNGs");
    }

    // The log check can see what it looks for: a page with a console error is caught.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><p>x</p><script>console.error('planted'); notDefined();</script>",
    )
    .unwrap();
    let log = screenshot(
        &bad,
        &dir.path().join("bad.png"),
        400,
        300,
        &dir.path().join("profile-bad"),
    );
    let caught = console_errors(&log);
    assert!(
        caught.iter().any(|l| l.contains("planted"))
            && caught.iter().any(|l| l.contains("Uncaught")),
        "{} logs console errors differently than this test expects:\n{log}",
        chrome.display()
    );

    // The report: tall enough a window for the whole page.
    let png = dir.path().join("report.png");
    let log = screenshot(&page, &png, 1280, 12_000, &dir.path().join("profile"));
    let errors = console_errors(&log);
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));
    let img = image::open(&png).unwrap().to_rgb8();
    let boxes = frames(&img);
    assert_eq!(
        boxes.len(),
        6,
        "expected 6 framed graphs in the screenshot, found {boxes:?}"
    );
    for b in &boxes {
        let (w, h) = (b.2 - b.0, b.3 - b.1);
        // The graphs are 1600×1000 scaled to the page: the frame keeps their proportions.
        let ratio = f64::from(w) / f64::from(h);
        assert!(
            (1.45..1.75).contains(&ratio),
            "graph frame {b:?} has ratio {ratio:.2}"
        );
        let (var, dark) = ink(&img, *b);
        assert!(
            var > 300.0,
            "graph at {b:?} looks blank (luma variance {var:.0})"
        );
        assert!(
            dark > 0.02,
            "graph at {b:?} has almost no ink ({:.1}%)",
            dark * 100.0
        );
    }
    if let Some(keep) = std::env::var_os("CSP_REPORT_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}
