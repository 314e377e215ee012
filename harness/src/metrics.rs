//! Reading the server's Prometheus text (`/metrics`): plain values, values by label, and
//! histograms, whose quantiles every report computes the same way, by linear
//! interpolation within a bucket as Prometheus's `histogram_quantile` does.

use std::collections::BTreeMap;

/// One scrape: every sample line, in the order the server wrote them.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    samples: Vec<Sample>,
}

#[derive(Clone, Debug, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Metrics {
    /// Parses the text exposition format. Comment lines and lines that are not a sample
    /// are skipped: a scrape is read for the few series a report needs.
    pub fn parse(text: &str) -> Metrics {
        Metrics {
            samples: text
                .lines()
                .filter(|line| !line.starts_with('#'))
                .filter_map(parse_sample)
                .collect(),
        }
    }

    /// The value of the sample `name` that has no labels.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|sample| sample.name == name && sample.labels.is_empty())
            .map(|sample| sample.value)
    }

    /// The samples of `name`, by the value of their `label`.
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .filter(|sample| sample.name == name)
            .filter_map(|sample| Some((sample.label(label)?.to_owned(), sample.value)))
            .collect()
    }

    /// The histogram `name` (its `name_bucket` series); empty if there is none.
    pub fn histogram(&self, name: &str) -> Histogram {
        let bucket_name = format!("{name}_bucket");
        let buckets = self
            .samples
            .iter()
            .filter(|sample| sample.name == bucket_name)
            .filter_map(|sample| {
                let upper_bound = parse_value(sample.label("le")?)?;
                Some((upper_bound, sample.value))
            })
            .collect();
        Histogram::from_cumulative(buckets)
    }
}

impl Sample {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// `name{label="value",...} value [timestamp]`; `None` for anything else.
fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    let name_end = line.find(['{', ' ', '\t'])?;
    let name = &line[..name_end];
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end + 1..])?
    } else {
        (Vec::new(), &line[name_end..])
    };
    let value = parse_value(rest.split_whitespace().next()?)?;
    (!name.is_empty()).then(|| Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The label pairs after the `{`, and what follows the closing `}`.
fn parse_labels(mut rest: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after_key) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after_key.char_indices();
        let end = loop {
            match chars.next()? {
                (idx, '"') => break idx,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    escaped => value.push(escaped),
                },
                (_, other) => value.push(other),
            }
        };
        labels.push((key.trim().to_owned(), value));
        rest = &after_key[end + 1..];
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// A histogram's cumulative buckets, in order of their upper bounds; the last is `+Inf`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    buckets: Vec<Bucket>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Bucket {
    upper_bound: f64,
    /// Observations at or below `upper_bound`.
    cumulative_count: f64,
}

impl Histogram {
    /// From `(upper bound, cumulative count)` pairs in any order.
    pub fn from_cumulative(mut pairs: Vec<(f64, f64)>) -> Histogram {
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        Histogram {
            buckets: pairs
                .into_iter()
                .map(|(upper_bound, cumulative_count)| Bucket {
                    upper_bound,
                    cumulative_count,
                })
                .collect(),
        }
    }

    /// Observations in all buckets.
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |b| b.cumulative_count)
    }

    /// What was observed after `earlier`, a scrape of the same histogram: bucket by
    /// bucket, the later count less the earlier one.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|bucket| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|b| b.upper_bound == bucket.upper_bound)
                    .map_or(0.0, |b| b.cumulative_count);
                Bucket {
                    cumulative_count: (bucket.cumulative_count - before).max(0.0),
                    ..*bucket
                }
            })
            .collect();
        Histogram { buckets }
    }

    /// The `q` quantile (0 to 1), or `None` if nothing was observed.
    ///
    /// Linear interpolation within the bucket the quantile's rank falls in, as
    /// Prometheus's `histogram_quantile` computes it: observations are taken as spread
    /// evenly between the bucket's lower bound (the previous bucket's upper bound, or 0
    /// for the first) and its upper bound. A rank in the `+Inf` bucket gives the largest
    /// finite bound, an understatement the report cannot avoid. So `quantile(1.0)` is
    /// the upper bound of the highest bucket that holds an observation.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 || q.is_nan() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let mut lower = Bucket {
            upper_bound: 0.0,
            cumulative_count: 0.0,
        };
        for bucket in &self.buckets {
            if bucket.cumulative_count >= rank && bucket.cumulative_count > 0.0 {
                if bucket.upper_bound.is_infinite() {
                    return Some(lower.upper_bound);
                }
                let in_bucket = bucket.cumulative_count - lower.cumulative_count;
                if in_bucket <= 0.0 {
                    return Some(lower.upper_bound);
                }
                let fraction = (rank - lower.cumulative_count) / in_bucket;
                return Some(
                    lower.upper_bound + (bucket.upper_bound - lower.upper_bound) * fraction,
                );
            }
            lower = *bucket;
        }
        Some(lower.upper_bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP skirmish_tick_duration_seconds Time one room tick took.
# TYPE skirmish_tick_duration_seconds histogram
skirmish_tick_duration_seconds_sum 0.0161
skirmish_tick_duration_seconds_count 10
skirmish_tick_duration_seconds_bucket{le=\"0.001\"} 2
skirmish_tick_duration_seconds_bucket{le=\"0.002\"} 6
skirmish_tick_duration_seconds_bucket{le=\"0.004\"} 9
skirmish_tick_duration_seconds_bucket{le=\"+Inf\"} 10
skirmish_connections 3
skirmish_disconnects_total{reason=\"too_slow\"} 4
skirmish_disconnects_total{reason=\"say \\\"hi\\\"\"} 1
# EOF
";

    fn approx(got: Option<f64>, want: f64) -> bool {
        got.is_some_and(|got| (got - want).abs() < 1e-12)
    }

    #[test]
    fn values_and_labelled_values_are_read() {
        let metrics = Metrics::parse(TEXT);
        assert_eq!(metrics.value("skirmish_connections"), Some(3.0));
        assert_eq!(
            metrics.value("skirmish_disconnects_total"),
            None,
            "a labelled series has no plain value"
        );
        let by_reason = metrics.by_label("skirmish_disconnects_total", "reason");
        assert_eq!(by_reason.get("too_slow"), Some(&4.0));
        assert_eq!(
            by_reason.get("say \"hi\""),
            Some(&1.0),
            "escaped quotes in a label value should be unescaped"
        );
    }

    /// Ten observations: 2 in (0, 1] ms, 4 in (1, 2] ms, 3 in (2, 4] ms, 1 above 4 ms.
    #[test]
    fn quantiles_interpolate_within_the_bucket_like_histogram_quantile() {
        let histogram = Metrics::parse(TEXT).histogram("skirmish_tick_duration_seconds");
        assert_eq!(histogram.count(), 10.0);
        // p10: rank 1 of the 2 in (0, 1] ms: halfway, 0.5 ms.
        assert!(
            approx(histogram.quantile(0.10), 0.0005),
            "p10 should be 0.5 ms"
        );
        // p50: rank 5 is the 3rd of the 4 in (1, 2] ms: 1 + 1 * 3/4 = 1.75 ms.
        assert!(
            approx(histogram.quantile(0.50), 0.00175),
            "p50 should be 1.75 ms, got {:?}",
            histogram.quantile(0.50)
        );
        // p90: rank 9 is the last of the 3 in (2, 4] ms: its upper bound, 4 ms.
        assert!(
            approx(histogram.quantile(0.90), 0.004),
            "p90 should be 4 ms"
        );
        // p99: rank 9.9 is in the +Inf bucket: the largest finite bound, 4 ms.
        assert!(
            approx(histogram.quantile(0.99), 0.004),
            "p99 should be 4 ms"
        );
    }

    #[test]
    fn quantiles_of_the_change_between_two_scrapes() {
        let after = Metrics::parse(TEXT).histogram("skirmish_tick_duration_seconds");
        let before = Histogram::from_cumulative(vec![
            (0.001, 2.0),
            (0.002, 2.0),
            (0.004, 2.0),
            (f64::INFINITY, 2.0),
        ]);
        let window = after.since(&before);
        assert_eq!(
            window.count(),
            8.0,
            "8 observations came after the first scrape"
        );
        // 4 new in (1, 2] ms and 3 in (2, 4] ms: p50 is rank 4, the last of (1, 2] ms.
        assert!(approx(window.quantile(0.5), 0.002), "p50 should be 2 ms");
        assert_eq!(
            after.since(&after).quantile(0.5),
            None,
            "no observations between identical scrapes: no quantile"
        );
    }

    #[test]
    fn quantile_one_is_the_top_of_the_highest_occupied_bucket() {
        let histogram =
            Histogram::from_cumulative(vec![(0.001, 1.0), (0.002, 3.0), (f64::INFINITY, 3.0)]);
        assert!(approx(histogram.quantile(1.0), 0.002));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
