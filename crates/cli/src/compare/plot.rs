//! The comparison's plots as standalone SVG, and one self-contained HTML page with them.
//!
//! Written by hand: three small charts need axes, lines, bars and text, not a plotting
//! library. Every SVG stands alone (it opens in a browser or an image viewer, and renders on
//! GitHub), and the HTML page embeds them inline with the table: no script, no network.
//!
//! - Latency CDF per protocol (log-scaled milliseconds of simulated time).
//! - Throughput over time, averaged over the seeds, with the leader crash marked.
//! - Messages per acknowledged operation, one bar per protocol and cluster size.

use super::measure::{Row, BIN};
use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 48.0;

/// Tableau's ten colours: distinct, and readable by most colour-blind readers.
const COLOURS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// The three plots of one comparison.
pub struct Plots {
    pub latency_cdf: String,
    pub throughput: String,
    pub messages: String,
}

impl Plots {
    /// The plots of `rows`: the CDF and the timeline of the rows at cluster size `nodes`
    /// (one line per protocol), the bars of every row.
    pub fn new(rows: &[Row], phase: u64, crash_at: Option<u64>, nodes: usize) -> Plots {
        let at_size: Vec<&Row> = rows.iter().filter(|r| r.nodes == nodes).collect();
        Plots {
            latency_cdf: latency_cdf(&at_size, nodes),
            throughput: throughput(&at_size, phase, crash_at, nodes),
            messages: messages(rows),
        }
    }

    /// Writes `latency-cdf.svg`, `throughput.svg` and `messages-per-op.svg` into `dir`.
    pub fn write_svgs(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        use anyhow::Context;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the plot directory {}", dir.display()))?;
        for (name, svg) in [
            ("latency-cdf.svg", &self.latency_cdf),
            ("throughput.svg", &self.throughput),
            ("messages-per-op.svg", &self.messages),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, svg)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// Escapes text for XML and HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The opening of an SVG document with its title.
fn open_svg(title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <title>{t}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{x}\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">{t}</text>\n",
        t = escape(title),
        x = (LEFT + WIDTH - RIGHT) / 2.0,
    )
}

/// The plot area's frame, axis titles, and a legend of `names` (one colour each).
fn frame(svg: &mut String, x_title: &str, y_title: &str, names: &[String]) {
    let (x0, y0, x1, y1) = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM);
    let _ = writeln!(
        svg,
        "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>",
        x1 - x0,
        y1 - y0
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        (x0 + x1) / 2.0,
        HEIGHT - 10.0,
        escape(x_title)
    );
    let _ = writeln!(
        svg,
        "<text transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        (y0 + y1) / 2.0,
        escape(y_title)
    );
    for (k, name) in names.iter().enumerate() {
        let y = TOP + 8.0 + 18.0 * k as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            x1 + 12.0,
            y - 2.0,
            COLOURS[k % COLOURS.len()],
            x1 + 32.0,
            y + 4.0,
            escape(name)
        );
    }
}

/// A horizontal grid line at `y` with its label on the left.
fn y_tick(svg: &mut String, y: f64, label: &str) {
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
         <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
        WIDTH - RIGHT,
        LEFT - 6.0,
        y + 4.0
    );
}

/// A vertical grid line at `x` with its label below.
fn x_tick(svg: &mut String, x: f64, label: &str) {
    let _ = writeln!(
        svg,
        "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/>\
         <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
        HEIGHT - BOTTOM,
        HEIGHT - BOTTOM + 16.0
    );
}

/// A polyline through `points` in colour number `k`.
fn line(svg: &mut String, points: &[(f64, f64)], k: usize) {
    let text: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let _ = writeln!(
        svg,
        "<polyline class=\"mark\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"{}\"/>",
        COLOURS[k % COLOURS.len()],
        text.join(" ")
    );
}

/// The fraction of operations completed within each latency, per protocol, on a log scale.
fn latency_cdf(rows: &[&Row], nodes: usize) -> String {
    let mut svg = open_svg(&format!("Latency CDF, {nodes} nodes (simulated time)"));
    let positive = |ms: f64| ms.max(0.01);
    let all = rows.iter().flat_map(|r| r.latency_cdf_ms.iter().copied());
    let (low, high) = all.fold((f64::MAX, 0.0f64), |(lo, hi), v| {
        (lo.min(positive(v)), hi.max(v))
    });
    let decade_low = if low == f64::MAX {
        -1.0
    } else {
        low.log10().floor()
    };
    let decade_high = high.max(1.0).log10().ceil().max(decade_low + 1.0);
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    let (y0, y1) = (TOP, HEIGHT - BOTTOM);
    let x =
        |ms: f64| x0 + (positive(ms).log10() - decade_low) / (decade_high - decade_low) * (x1 - x0);
    let y = |fraction: f64| y1 - fraction * (y1 - y0);
    for decade in decade_low as i32..=decade_high as i32 {
        let ms = 10f64.powi(decade);
        x_tick(&mut svg, x(ms), &format_ms(ms));
    }
    for tenth in 0..=10 {
        let fraction = tenth as f64 / 10.0;
        y_tick(&mut svg, y(fraction), &format!("{fraction:.1}"));
    }
    for (k, row) in rows.iter().enumerate() {
        let points: Vec<(f64, f64)> = (row.latency_cdf_ms.iter().enumerate())
            .map(|(p, ms)| (x(*ms), y(p as f64 / 100.0)))
            .collect();
        line(&mut svg, &points, k);
    }
    let names: Vec<String> = rows.iter().map(|r| r.protocol.to_string()).collect();
    frame(
        &mut svg,
        "latency (ms, log scale)",
        "fraction of operations",
        &names,
    );
    svg + "</svg>\n"
}

fn format_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms}")
    } else {
        format!("{ms:.0}")
    }
}

/// Acknowledged operations per second over the fault phase, averaged over the seeds.
fn throughput(rows: &[&Row], phase: u64, crash_at: Option<u64>, nodes: usize) -> String {
    let mut svg = open_svg(&format!(
        "Throughput over time, {nodes} nodes (mean over seeds)"
    ));
    let seconds = phase as f64 / 1e9;
    let peak = rows
        .iter()
        .flat_map(|r| r.timeline.iter().copied())
        .fold(0.0f64, f64::max);
    let top = nice_ceiling(peak.max(1.0));
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    let (y0, y1) = (TOP, HEIGHT - BOTTOM);
    let x = |s: f64| x0 + s / seconds * (x1 - x0);
    let y = |ops: f64| y1 - ops / top * (y1 - y0);
    for k in 0..=seconds.floor() as u64 {
        x_tick(&mut svg, x(k as f64), &format!("{k}"));
    }
    for fifth in 0..=5 {
        let ops = top * fifth as f64 / 5.0;
        y_tick(&mut svg, y(ops), &format!("{ops:.0}"));
    }
    if let Some(at) = crash_at {
        let cx = x(at as f64 / 1e9);
        let _ = writeln!(
            svg,
            "<line x1=\"{cx:.1}\" y1=\"{y0}\" x2=\"{cx:.1}\" y2=\"{y1}\" stroke=\"#c00\" \
             stroke-dasharray=\"5 4\"/><text x=\"{:.1}\" y=\"{}\" fill=\"#c00\">leader crash</text>",
            cx + 4.0,
            y0 + 14.0
        );
    }
    let bin = BIN as f64 / 1e9;
    for (k, row) in rows.iter().enumerate() {
        let points: Vec<(f64, f64)> = (row.timeline.iter().enumerate())
            .map(|(b, ops)| (x((b as f64 + 0.5) * bin), y(*ops)))
            .collect();
        line(&mut svg, &points, k);
    }
    let names: Vec<String> = rows.iter().map(|r| r.protocol.to_string()).collect();
    let y_title = format!("acknowledged ops/s ({:.0} ms bins)", bin * 1e3);
    frame(&mut svg, "simulated time (s)", &y_title, &names);
    svg + "</svg>\n"
}

/// The smallest of 1, 2, 5 times a power of ten at or above `value`.
fn nice_ceiling(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|v| *v >= value)
        .unwrap_or(10.0 * power)
}

/// One horizontal bar per row: messages sent per acknowledged operation.
fn messages(rows: &[Row]) -> String {
    let mut svg = open_svg("Messages per acknowledged operation");
    let peak = rows.iter().map(|r| r.messages_per_op).fold(0.0, f64::max);
    let top = nice_ceiling(peak.max(1.0));
    let (x0, x1) = (LEFT + 80.0, WIDTH - 40.0);
    let (y0, y1) = (TOP, HEIGHT - BOTTOM);
    let x = |v: f64| x0 + v / top * (x1 - x0);
    for fifth in 0..=5 {
        let v = top * fifth as f64 / 5.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{0:.1}\" y1=\"{y0}\" x2=\"{0:.1}\" y2=\"{y1}\" stroke=\"#ddd\"/>\
             <text x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">{v:.0}</text>",
            x(v),
            y1 + 16.0
        );
    }
    let sizes: Vec<usize> = rows.iter().map(|r| r.nodes).collect();
    let several_sizes = sizes.iter().any(|n| *n != sizes[0]);
    let band = (y1 - y0) / rows.len().max(1) as f64;
    let protocols: Vec<&str> = rows.iter().map(|r| r.protocol).collect();
    for (k, row) in rows.iter().enumerate() {
        let colour_index = protocols
            .iter()
            .position(|p| *p == row.protocol)
            .unwrap_or(k);
        let top_y = y0 + band * k as f64 + band * 0.15;
        let label = if several_sizes {
            format!("{} n={}", row.protocol, row.nodes)
        } else {
            row.protocol.to_string()
        };
        let _ = writeln!(
            svg,
            "<rect class=\"mark\" x=\"{x0}\" y=\"{top_y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\">{:.1}</text>",
            x(row.messages_per_op) - x0,
            band * 0.7,
            COLOURS[colour_index % COLOURS.len()],
            x0 - 6.0,
            top_y + band * 0.35 + 4.0,
            escape(&label),
            x(row.messages_per_op) + 4.0,
            top_y + band * 0.35 + 4.0,
            row.messages_per_op
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">messages sent per acknowledged \
         operation (all of the run's traffic)</text>",
        (x0 + x1) / 2.0,
        HEIGHT - 10.0
    );
    svg + "</svg>\n"
}

/// One self-contained page: the command, the table, the plots.
pub fn html_page(rows: &[Row], plots: &Plots, command: &str) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>quorate compare</title>\n<style>\n\
         body { font-family: sans-serif; margin: 2em; color: #222; }\n\
         table { border-collapse: collapse; font-size: 13px; }\n\
         th, td { border: 1px solid #ccc; padding: 3px 7px; }\n\
         td { text-align: right; } td:first-child, td:nth-child(12) { text-align: left; }\n\
         th { background: #f3f3f3; }\n figure { margin: 1.5em 0; }\n\
         code { background: #f3f3f3; padding: 2px 4px; }\n</style>\n</head>\n<body>\n\
         <h1>Protocol comparison</h1>\n",
    );
    let _ = writeln!(
        page,
        "<p>Reproduce with <code>{}</code>. Latencies and throughput are in simulated time; \
         messages, bytes and fsyncs are per acknowledged operation over the whole run; \
         unavailability runs from the leader crash to the first acknowledged write invoked \
         after it.</p>",
        escape(command)
    );
    page += "<table id=\"compare\">\n<thead><tr>";
    for name in super::HEADER {
        let _ = write!(page, "<th>{}</th>", escape(name));
    }
    page += "</tr></thead>\n<tbody>\n";
    for row in rows {
        page += "<tr>";
        for cell in super::cells(row) {
            let _ = write!(page, "<td>{}</td>", escape(&cell));
        }
        page += "</tr>\n";
    }
    page += "</tbody>\n</table>\n";
    for (caption, svg) in [
        ("Latency CDF", &plots.latency_cdf),
        ("Throughput over time", &plots.throughput),
        ("Messages per operation", &plots.messages),
    ] {
        let _ = writeln!(
            page,
            "<figure>\n{svg}<figcaption>{}</figcaption>\n</figure>",
            escape(caption)
        );
    }
    page + SELF_CHECK + "</body>\n</html>\n"
}

/// The page's only script: it changes nothing the reader sees, but marks on `<body>` what the
/// browser rendered (table rows, plots, and in the emptiest plot how many data marks, the
/// curves and bars of class `mark`, have an area or a length), so a test in a real browser can
/// tell a drawn plot from one whose coordinates were, say, NaN (parsed, but with no extent).
const SELF_CHECK: &str = "<script>\n\
(function () {\n\
  var b = document.body;\n\
  var plots = document.querySelectorAll('figure > svg');\n\
  var least = Infinity;\n\
  plots.forEach(function (svg) {\n\
    var drawn = 0;\n\
    svg.querySelectorAll('.mark').forEach(function (shape) {\n\
      var box = shape.getBBox();\n\
      if (box.width > 0 || box.height > 0) drawn += 1;\n\
    });\n\
    least = Math.min(least, drawn);\n\
  });\n\
  b.dataset.rows = document.querySelectorAll('#compare tbody tr').length;\n\
  b.dataset.plots = plots.length;\n\
  b.dataset.leastShapes = plots.length ? least : 0;\n\
  b.dataset.ready = '1';\n\
})();\n\
</script>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings_round_up_to_one_two_five() {
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1.5), 2.0);
        assert_eq!(nice_ceiling(420.0), 500.0);
        assert_eq!(nice_ceiling(5001.0), 10000.0);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
