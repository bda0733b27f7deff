//! A small SVG chart: each scenario's throughput against its ceiling, with p99 latency.

use crate::report::Row;

pub fn svg(rows: &[Row]) -> String {
    let bars: Vec<&Row> = rows.iter().filter(|r| r.ceiling.is_some()).collect();
    let (w, bar_h, gap, left) = (900.0, 22.0, 34.0, 260.0);
    let h = 60.0 + bars.len() as f64 * (2.0 * bar_h + gap);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">wagate: throughput against its ceiling (same run), p99 latency</text>\n\
         <text x=\"10\" y=\"40\" fill=\"#555\">blue: wagate; grey: ceiling; the dashed line marks the 0.5 target</text>\n"
    );
    let scale = w - left - 120.0;
    for (i, r) in bars.iter().enumerate() {
        let ceiling = r.ceiling.unwrap_or(1.0).max(1e-9);
        let y = 55.0 + i as f64 * (2.0 * bar_h + gap);
        let fw = (r.value / ceiling).min(1.5) * scale / 1.5;
        let cw = scale / 1.5;
        let p99 = r
            .p99_ms
            .map(|p| format!(", p99 {p:.1} ms"))
            .unwrap_or_default();
        out.push_str(&format!(
            "<text x=\"10\" y=\"{ty}\">{name}</text>\n\
             <rect x=\"{left}\" y=\"{y}\" width=\"{fw:.1}\" height=\"{bar_h}\" fill=\"#3b73b9\"/>\n\
             <text x=\"{lx:.1}\" y=\"{ty}\">{v:.0} {unit}{p99} ({ratio:.2}×)</text>\n\
             <rect x=\"{left}\" y=\"{y2}\" width=\"{cw:.1}\" height=\"{bar_h}\" fill=\"#bbb\"/>\n\
             <text x=\"{lx2:.1}\" y=\"{ty2}\">{c:.0} ceiling</text>\n\
             <line x1=\"{half:.1}\" x2=\"{half:.1}\" y1=\"{y}\" y2=\"{y3}\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/>\n",
            ty = y + 15.0,
            name = escape(&format!("{}: {}", r.scenario, r.figure)).chars().take(40).collect::<String>(),
            lx = left + fw + 6.0,
            v = r.value,
            unit = escape(&r.unit),
            ratio = r.value / ceiling,
            y2 = y + bar_h,
            lx2 = left + cw + 6.0,
            ty2 = y + bar_h + 15.0,
            c = ceiling,
            half = left + cw * 0.5,
            y3 = y + 2.0 * bar_h,
        ));
    }
    out.push_str("</svg>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
