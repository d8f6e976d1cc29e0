//! Trend charts drawn as server-rendered SVG, each with the same readings as a table (the
//! accessible alternative; the chart itself is an image with a text description).

use crate::html::Text;
use crate::w;

/// One line of a chart: its name and its readings (date text, value), oldest first.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(&'a str, f64)>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;
/// Line colours (NHS blue, NHS dark pink) and dash patterns, so lines differ without colour.
const STYLES: [(&str, &str); 2] = [("#005eb8", ""), ("#ae2573", "6 4")];

/// A line chart of `series` titled `title` (values in `unit`) followed by its table.
/// `id` must be unique in the page. Nothing is drawn when there are no readings.
pub fn trend(out: &mut String, id: &str, title: &str, unit: &str, series: &[Series<'_>]) {
    let readings: usize = series.iter().map(|s| s.points.len()).sum();
    if readings == 0 {
        return;
    }
    let values = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (mut low, mut high) = values.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    if (high - low).abs() < f64::EPSILON {
        low -= 1.0;
        high += 1.0;
    }
    let pad = (high - low) * 0.1;
    low -= pad;
    high += pad;
    let longest = series.iter().map(|s| s.points.len()).max().unwrap_or(1);
    let x = |i: usize| {
        let span = (longest.max(2) - 1) as f64;
        LEFT + (WIDTH - LEFT - RIGHT) * i as f64 / span
    };
    let y = |v: f64| TOP + (HEIGHT - TOP - BOTTOM) * (high - v) / (high - low);
    let summary: Vec<String> = series
        .iter()
        .filter_map(|s| {
            let first = s.points.first()?;
            let last = s.points.last()?;
            Some(format!(
                "{} from {} {unit} on {} to {} {unit} on {}",
                s.name, first.1, first.0, last.1, last.0
            ))
        })
        .collect();
    w!(
        out,
        "<figure class=\"keel-figure\"><svg class=\"keel-chart\" id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{} readings: {}.</desc>",
        Text(title),
        readings,
        Text(&summary.join("; "))
    );
    // Axes and the range of values.
    w!(
        out,
        "<g font-size=\"12\" fill=\"#4c6272\"><line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\" stroke=\"#4c6272\"/>\
         <line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#4c6272\"/>\
         <text x=\"4\" y=\"{t}\">{:.1}</text><text x=\"4\" y=\"{b}\">{:.1}</text><text x=\"4\" y=\"{u}\">{}</text>",
        high,
        low,
        Text(unit),
        b = HEIGHT - BOTTOM,
        r = WIDTH - RIGHT,
        t = TOP + 4.0,
        u = HEIGHT - 8.0,
    );
    if let Some(first) = series.iter().find_map(|s| s.points.first()) {
        w!(
            out,
            "<text x=\"{LEFT}\" y=\"{}\">{}</text>",
            HEIGHT - 22.0,
            Text(first.0)
        );
    }
    if let Some(last) = series.iter().find_map(|s| s.points.last()) {
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            HEIGHT - 22.0,
            Text(last.0)
        );
    }
    out.push_str("</g>");
    for (n, s) in series.iter().enumerate() {
        let (colour, dash) = STYLES[n % STYLES.len()];
        w!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\" points=\""
        );
        for (i, (_, v)) in s.points.iter().enumerate() {
            w!(out, "{:.1},{:.1} ", x(i), y(*v));
        }
        out.push_str("\"/>");
        for (i, (_, v)) in s.points.iter().enumerate() {
            w!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                x(i),
                y(*v)
            );
        }
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"{colour}\">{}</text>",
            LEFT + 8.0 + 160.0 * n as f64,
            HEIGHT - 4.0,
            Text(s.name)
        );
    }
    w!(
        out,
        "</svg><figcaption class=\"nhsuk-body-s\">{}</figcaption></figure>\
         <details><summary>Show the {} readings as a table</summary><table class=\"nhsuk-table\"><caption>{}</caption>\
         <thead><tr><th scope=\"col\">Series</th><th scope=\"col\">Date</th><th scope=\"col\">Value ({})</th></tr></thead><tbody>",
        Text(title),
        Text(title),
        Text(title),
        Text(unit)
    );
    for s in series {
        for (date, value) in &s.points {
            w!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                Text(s.name),
                Text(date),
                value
            );
        }
    }
    out.push_str("</tbody></table></details>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_description_and_a_table_of_the_same_readings() {
        let mut out = String::new();
        trend(
            &mut out,
            "hba1c",
            "HbA1c",
            "mmol/mol",
            &[Series {
                name: "HbA1c",
                points: vec![("2024-01-02", 48.0), ("2025-01-02", 53.0)],
            }],
        );
        assert!(out.contains("role=\"img\""));
        assert!(out.contains("HbA1c from 48 mmol/mol on 2024-01-02 to 53 mmol/mol on 2025-01-02"));
        assert_eq!(out.matches("<circle").count(), 2);
        assert!(out.contains("<td>2025-01-02</td><td>53</td>"));
    }

    #[test]
    fn no_readings_draw_nothing() {
        let mut out = String::new();
        trend(&mut out, "bp", "Blood pressure", "mmHg", &[]);
        assert!(out.is_empty());
    }
}
