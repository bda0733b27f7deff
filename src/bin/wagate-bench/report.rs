//! The report: one row per figure, printed as a table (and written as JSON or drawn by `chart`),
//! and the pair of rows every figure measured against a ceiling gets.

use crate::load::Stats;

/// One line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub scenario: String,
    pub figure: String,
    pub value: f64,
    pub unit: String,
    pub ceiling: Option<f64>,
    pub ratio: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub target: String,
    pub met: bool,
}

pub fn row(
    scenario: &str,
    figure: &str,
    value: f64,
    unit: &str,
    ceiling: Option<f64>,
    target: &str,
    met: bool,
) -> Row {
    Row {
        scenario: scenario.into(),
        figure: figure.into(),
        value,
        unit: unit.into(),
        ceiling,
        ratio: ceiling.filter(|c| *c > 0.0).map(|c| value / c),
        p50_ms: None,
        p99_ms: None,
        target: target.into(),
        met,
    }
}

/// A figure measured as a closed loop, and its ceiling's row: ratio, latencies, and whether the
/// ratio reaches `target`.
pub fn against_ceiling(
    figure: (&str, &str, &str, &Stats),
    ceiling: (&str, &str, &Stats),
    target: f64,
) -> Vec<Row> {
    let (scenario, name, unit, fig) = figure;
    let (c_name, c_unit, ceil) = ceiling;
    let mut r = row(
        scenario,
        name,
        fig.rate(),
        unit,
        Some(ceil.rate()),
        &format!("≥ {target} of ceiling"),
        false,
    );
    r.met = r.ratio.unwrap_or(0.0) >= target;
    r.p50_ms = Some(fig.pct_ms(0.5));
    r.p99_ms = Some(fig.pct_ms(0.99));
    let mut c_row = row(scenario, c_name, ceil.rate(), c_unit, None, "", true);
    c_row.p50_ms = Some(ceil.pct_ms(0.5));
    c_row.p99_ms = Some(ceil.pct_ms(0.99));
    vec![r, c_row]
}

pub fn print(rows: &[Row]) {
    let head = [
        "scenario", "figure", "value", "ceiling", "ratio", "p50 ms", "p99 ms", "target",
    ];
    println!(
        "{:<9} {:<58} {:>12} {:>12} {:>7} {:>9} {:>9}  {}",
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]
    );
    for r in rows {
        let opt = |v: Option<f64>, prec: usize| {
            v.map(|v| format!("{v:.prec$}"))
                .unwrap_or_else(|| "-".into())
        };
        let target = if r.target.is_empty() {
            String::new()
        } else {
            format!("{} — {}", r.target, if r.met { "met" } else { "MISSED" })
        };
        println!(
            "{:<9} {:<58} {:>12} {:>12} {:>7} {:>9} {:>9}  {}",
            r.scenario,
            format!("{} [{}]", r.figure, r.unit),
            format!("{:.1}", r.value),
            opt(r.ceiling, 1),
            opt(r.ratio, 2),
            opt(r.p50_ms, 2),
            opt(r.p99_ms, 2),
            target
        );
    }
}
