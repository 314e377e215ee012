//! Reading the server's Prometheus text: plain values, and quantiles of the change in a
//! histogram between two scrapes.

/// The value of an unlabelled sample `name`.
pub fn value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The cumulative buckets `(upper bound, count)` of histogram `name`, in order.
pub fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// Quantiles of what a histogram observed between two scrapes, each reported as the
/// upper bound of the bucket it falls in (so an upper estimate). `None` if nothing
/// was observed.
pub fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|&(le, count)| {
            let earlier = before
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |(_, c)| *c);
            (le, count - earlier)
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    delta
        .iter()
        .find(|(_, count)| *count >= q * total)
        .map(|(le, _)| *le)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE x histogram\nx_bucket{le=\"0.001\"} 5\nx_bucket{le=\"0.002\"} 9\nx_bucket{le=\"+Inf\"} 10\nx_count 10\ny_total 3.5\n";

    #[test]
    fn reads_values_and_buckets() {
        assert_eq!(value(TEXT, "y_total"), Some(3.5));
        assert_eq!(
            buckets(TEXT, "x"),
            vec![(0.001, 5.0), (0.002, 9.0), (f64::INFINITY, 10.0)]
        );
    }

    #[test]
    fn quantiles_come_from_the_change_between_scrapes() {
        let before = vec![(0.001, 5.0), (0.002, 5.0), (f64::INFINITY, 5.0)];
        let after = buckets(TEXT, "x");
        assert_eq!(
            quantile(&before, &after, 0.5),
            Some(0.002),
            "4 of the 5 new observations are in (1, 2] ms"
        );
        assert_eq!(quantile(&before, &after, 1.0), Some(f64::INFINITY));
        assert_eq!(quantile(&after, &after, 0.5), None);
    }
}
