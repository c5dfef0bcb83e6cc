//! `report.html`: one self-contained file a reviewer can open without network access and print
//! on A4 — every graph as inline SVG, the tables of `summary.md` (DP096 layout, requirements, loss
//! by cause, latency), the thresholds verdict when there is one, provenance and the changes'
//! titles.
//!
//! Self-contained means: no script, no external stylesheet, image or font. The SVG text names
//! DejaVu Sans, and the page embeds both DejaVu Sans faces as `@font-face` data, so the graphs'
//! text has exactly the metrics their layout was computed with, on any machine.

use crate::error::ReportError;
use crate::graphs;
use crate::render;
use crate::runs;
use crate::tables::{self, Table};
use base64::Engine as _;
use results::LoadedRun;
use results::layout::REPORT_HTML;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use verdict::Verdict;

/// The colour of the frame around each graph; also lets a test find the graphs in a screenshot.
pub const GRAPH_FRAME: &str = "#c9cacb";

/// Writes `report.html` for `runs` into `dir`; returns its path.
pub fn write_html(
    dir: &Path,
    runs: &[&LoadedRun],
    verdicts: &[Verdict],
) -> Result<PathBuf, ReportError> {
    let path = dir.join(REPORT_HTML);
    let html = report_html(runs, verdicts)?;
    std::fs::write(&path, html).map_err(|e| ReportError::io(&path, e))?;
    Ok(path)
}

/// The text of `report.html`.
pub fn report_html(runs: &[&LoadedRun], verdicts: &[Verdict]) -> Result<String, ReportError> {
    if runs.is_empty() {
        return Err(ReportError::NoRuns);
    }
    let groups = runs::by_region(runs);
    let ordered: Vec<&LoadedRun> = groups.iter().flat_map(|g| g.runs.iter().copied()).collect();
    let labels: Vec<String> = groups
        .iter()
        .flat_map(|g| g.labels.iter().map(move |l| format!("{} {l}", g.region)))
        .collect();
    let regions: Vec<String> = groups.iter().map(|g| g.region.to_string()).collect();

    let mut h = String::with_capacity(4 << 20);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        h,
        "<title>csp-loadtest: alert delivery — {}</title>",
        esc(&regions.join(", "))
    );
    h.push_str("<style>\n");
    h.push_str(&font_faces());
    h.push_str(CSS);
    h.push_str("</style>\n</head>\n<body>\n");
    let _ = writeln!(
        h,
        "<h1>csp-loadtest: alert delivery — {}</h1>",
        esc(&regions.join(", "))
    );
    let _ = writeln!(h, "<p>{}</p>", inline(tables::INTRO.trim()));
    for (r, l) in ordered.iter().zip(&labels) {
        for w in tables::warnings(r) {
            let _ = writeln!(h, "<p class=\"warning\">{}: {}</p>", esc(l), esc(&w));
        }
    }
    if !verdicts.is_empty() {
        h.push_str(&verdict_html(verdicts));
    }
    h.push_str("<section class=\"provenance\">\n");
    h.push_str(&table_html(&tables::provenance_table(&ordered, &labels)));
    if let Some(t) = tables::changes_table(&ordered) {
        h.push_str(&table_html(&t));
    }
    h.push_str("</section>\n");
    for g in &groups {
        let _ = writeln!(
            h,
            "<section class=\"region\">\n<h2>{}</h2>",
            esc(&g.region.to_string())
        );
        for fig in graphs::figures(g, &format!("{}-", g.region.as_str())) {
            let svg = render::svg(&fig)?;
            let _ = writeln!(
                h,
                "<figure class=\"graph\" id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
                esc(&fig.name),
                inline_svg(&svg, &fig.title),
                esc(&fig.title)
            );
        }
        for t in tables::region_tables(g) {
            h.push_str(&table_html(&t));
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body>\n</html>\n");
    Ok(h)
}

/// The SVG as an element of the page: scales with the page (its viewBox keeps the proportions)
/// and is announced as one image named by its title.
fn inline_svg(svg: &str, title: &str) -> String {
    let body = svg.trim_start_matches(|c| c != '<');
    let body = body
        .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .trim_start();
    match body.find('>') {
        Some(end) if body.starts_with("<svg") => format!(
            "{} role=\"img\" aria-label=\"{}\" preserveAspectRatio=\"xMidYMid meet\">{}",
            &body[..end],
            esc(title),
            &body[end + 1..]
        ),
        _ => body.to_string(),
    }
}

fn font_faces() -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut css = String::new();
    for (weight, bytes) in [
        ("normal", crate::fonts::REGULAR),
        ("bold", crate::fonts::BOLD),
    ] {
        let _ = writeln!(
            css,
            "@font-face {{ font-family: \"DejaVu Sans\"; font-weight: {weight}; \
             src: url(data:font/ttf;base64,{}) format(\"truetype\"); }}",
            b64(bytes)
        );
    }
    css
}

const CSS: &str = r#"
body { font-family: "DejaVu Sans", Verdana, sans-serif; color: #111; margin: 24px auto;
       max-width: 1240px; padding: 0 16px; font-size: 14px; line-height: 1.35; }
h1 { font-size: 22px; } h2 { font-size: 19px; margin-top: 28px; } h3 { font-size: 15px; }
figure.graph { margin: 14px 0; border: 1px solid #c9cacb; padding: 0;
               break-inside: avoid; page-break-inside: avoid; }
figure.graph svg { display: block; width: 100%; height: auto; }
figcaption { font-size: 12px; color: #555; padding: 2px 8px 6px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 12px; max-width: 100%; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: left; vertical-align: top;
         overflow-wrap: break-word; }
th { background: #f2f2f2; }
td.pass { color: #006b3c; font-weight: bold; } td.fail, td.error { color: #aa0028; font-weight: bold; }
p.note { font-size: 12px; color: #333; max-width: 100%; overflow-wrap: anywhere; }
p.warning { color: #aa0028; font-weight: bold; }
code { font-size: 11px; overflow-wrap: anywhere; }
@page { size: A4 portrait; margin: 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 9pt; }
  table { font-size: 6.5pt; width: 100%; table-layout: auto; }
  th, td { padding: 1px 3px; }
  section.region { break-before: page; page-break-before: always; }
  figure.graph { margin: 6px 0; }
  p.note, code { font-size: 7pt; }
}
"#;

fn verdict_html(verdicts: &[Verdict]) -> String {
    let mut h = String::from("<section class=\"verdict\">\n<h2>Thresholds verdict</h2>\n");
    for v in verdicts {
        let passed = v.passed();
        let _ = writeln!(
            h,
            "<h3>{}: {}</h3>",
            esc(&v.suite),
            if passed { "PASS" } else { "FAIL" }
        );
        h.push_str("<table>\n<tr><th>result</th><th>check</th><th>measured</th><th>allowed</th><th>why</th></tr>\n");
        for c in &v.results {
            let o = c.outcome.label();
            let _ = writeln!(
                h,
                "<tr><td class=\"{}\">{o}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                o.to_lowercase(),
                esc(&c.name),
                esc(&c.measured),
                esc(&c.allowed),
                esc(&c.message)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
    h
}

fn table_html(t: &Table) -> String {
    let mut h = format!("<h3>{}</h3>\n", esc(&t.title));
    if let Some(i) = &t.intro {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", inline(i));
    }
    h.push_str("<table>\n<tr>");
    for c in &t.head {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr>\n");
    for r in &t.rows {
        h.push_str("<tr>");
        for c in r {
            let _ = write!(h, "<td>{}</td>", esc(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    for n in &t.notes {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", inline(n));
    }
    h
}

/// HTML-escapes text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            other => out.push(other),
        }
    }
    out
}

/// Escapes text and turns the two bits of Markdown the tables' notes use (`code`, *emphasis*)
/// into HTML.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(s).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            let mut em = false;
            for (j, p) in part.split('*').enumerate() {
                if j > 0 {
                    out.push_str(if em { "</em>" } else { "<em>" });
                    em = !em;
                }
                out.push_str(p);
            }
            if em {
                out.push_str("</em>");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_notes_keep_their_code() {
        assert_eq!(esc("Central&South <b>"), "Central&amp;South &lt;b&gt;");
        assert_eq!(
            inline("the *expected* alerts, `csp-harness profile show`"),
            "the <em>expected</em> alerts, <code>csp-harness profile show</code>"
        );
    }

    #[test]
    fn inline_svg_scales_and_is_named() {
        let svg = "<svg width=\"1600\" height=\"1000\" viewBox=\"0 0 1600 1000\" xmlns=\"x\">\n<rect/></svg>";
        let s = inline_svg(svg, "A & B");
        assert!(s.starts_with("<svg width=\"1600\""), "{s}");
        assert!(s.contains("role=\"img\" aria-label=\"A &amp; B\""), "{s}");
        assert!(s.ends_with("<rect/></svg>"), "{s}");
    }
}
