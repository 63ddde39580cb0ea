//! `loadgen report`: the results file as tables per workload, our
//! runtimes side by side, and the targets of issues 6 and 11.

use super::*;

/// The figure each workload's ratio column compares.
pub(super) fn primary_metric(workload: &str) -> &'static str {
    match workload.split('-').next() {
        Some("echo") | Some("polling") => "cpu_us_per_rt",
        Some("idle") => "kb_per_conn",
        Some("broadcast") | Some("cluster") => "cpu_us_per_delivery",
        Some("burst") => "peak_rss_kb",
        _ => "",
    }
}

/// Results read back from the file the measuring modes append to.
pub(super) struct Results {
    /// Workloads in order of appearance.
    pub(super) workloads: Vec<String>,
    /// workload → metric names in order.
    pub(super) metrics: HashMap<String, Vec<String>>,
    /// workload → servers in order.
    pub(super) servers: HashMap<String, Vec<String>>,
    pub(super) values: HashMap<(String, String, String), String>,
}

impl Results {
    pub(super) fn parse(text: &str) -> Results {
        let mut results = Results {
            workloads: Vec::new(),
            metrics: HashMap::new(),
            servers: HashMap::new(),
            values: HashMap::new(),
        };
        for line in text.lines() {
            let parts: Vec<&str> = line.split('\t').collect();
            let [workload, server, metric, value] = parts[..] else {
                continue;
            };
            if !results.workloads.iter().any(|w| w == workload) {
                results.workloads.push(workload.to_string());
            }
            let names = results.metrics.entry(workload.to_string()).or_default();
            if !names.iter().any(|m| m == metric) {
                names.push(metric.to_string());
            }
            let list = results.servers.entry(workload.to_string()).or_default();
            if !list.iter().any(|s| s == server) {
                list.push(server.to_string());
            }
            results.values.insert(
                (workload.to_string(), server.to_string(), metric.to_string()),
                value.to_string(),
            );
        }
        results
    }

    /// The server a workload's ratios are against: `ours-tokio`, else the
    /// first of ours with a figure (the cluster workload's `ours-node`, or
    /// `ours-python` while that has none).
    pub(super) fn base(&self, workload: &str) -> Option<&str> {
        let servers = self.servers.get(workload)?;
        servers
            .iter()
            .find(|s| *s == "ours-tokio")
            .or_else(|| {
                servers.iter().find(|s| {
                    s.starts_with("ours") && self.primary(workload, s).is_some_and(|v| v > 0.0)
                })
            })
            .map(String::as_str)
    }

    pub(super) fn get(&self, workload: &str, server: &str, metric: &str) -> Option<&str> {
        self.values
            .get(&(workload.to_string(), server.to_string(), metric.to_string()))
            .map(String::as_str)
    }

    /// A server's primary figure, if it is a number.
    pub(super) fn primary(&self, workload: &str, server: &str) -> Option<f64> {
        self.get(workload, server, primary_metric(workload))?
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
    }

    /// False when the load generator was the bottleneck for this server.
    pub(super) fn valid(&self, workload: &str, server: &str) -> bool {
        !self
            .get(workload, server, "loadgen_cpu")
            .is_some_and(|v| v.contains("INVALID"))
    }
}

pub(super) const RUNTIMES: [&str; 3] = ["ours-tokio", "ours-async-std", "ours-smol"];
/// The largest spread allowed between our three runtimes.
pub(super) const RUNTIME_SPREAD: f64 = 0.15;

pub(super) fn report(path: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| usage(&format!("{path}: {e}")));
    let results = Results::parse(&text);
    for workload in &results.workloads {
        let primary = primary_metric(workload);
        let names = &results.metrics[workload];
        let base_name = results.base(workload).unwrap_or("ours-tokio");
        println!("\n### {workload} (ratio: {primary} / {base_name}'s)\n");
        println!("| server | {} | ratio |", names.join(" | "));
        println!("|---{}|---|", "|---".repeat(names.len()));
        let base = results.primary(workload, base_name);
        for server in &results.servers[workload] {
            let cells: Vec<&str> = names
                .iter()
                .map(|m| results.get(workload, server, m).unwrap_or("-"))
                .collect();
            let ratio = match (results.primary(workload, server), base) {
                (Some(v), Some(b)) if b > 0.0 => format!("{:.2}", v / b),
                _ => "-".into(),
            };
            println!("| {server} | {} | {ratio} |", cells.join(" | "));
        }
    }
    let spreads = report_runtimes(&results);
    report_targets(&results, &spreads);
}

/// The runtimes table; returns (workload, spread, valid) per workload
/// measured on all three runtimes.
pub(super) fn report_runtimes(results: &Results) -> Vec<(String, f64, bool)> {
    let mut spreads = Vec::new();
    println!("\n### runtimes (primary metric of ours on each runtime)\n");
    println!(
        "| workload | metric | ours-tokio | ours-async-std | ours-smol | spread | within 15% |"
    );
    println!("|---|---|---|---|---|---|---|");
    for workload in &results.workloads {
        let figures: Vec<Option<f64>> = RUNTIMES
            .iter()
            .map(|r| results.primary(workload, r))
            .collect();
        if figures.iter().all(Option::is_none) {
            continue;
        }
        let cells: Vec<&str> = RUNTIMES
            .iter()
            .map(|r| {
                results
                    .get(workload, r, primary_metric(workload))
                    .unwrap_or("-")
            })
            .collect();
        let (spread, verdict) =
            if let Some(all) = figures.iter().copied().collect::<Option<Vec<f64>>>() {
                let max = all.iter().copied().fold(f64::MIN, f64::max);
                let min = all.iter().copied().fold(f64::MAX, f64::min);
                let spread = max / min - 1.0;
                let valid = RUNTIMES.iter().all(|r| results.valid(workload, r));
                spreads.push((workload.clone(), spread, valid));
                let verdict = match (valid, spread <= RUNTIME_SPREAD) {
                    (false, _) => "not valid (loadgen INVALID)",
                    (true, true) => "yes",
                    (true, false) => "no",
                };
                (format!("{:.0}%", spread * 100.0), verdict)
            } else {
                ("-".into(), "n/a")
            };
        println!(
            "| {workload} | {} | {} | {spread} | {verdict} |",
            primary_metric(workload),
            cells.join(" | ")
        );
    }
    spreads
}

/// The targets table: each target of issue 6 checked on this run.
pub(super) fn report_targets(results: &Results, spreads: &[(String, f64, bool)]) {
    println!("\n### targets (issues 6 and 11, ratios in this run; ours = ours-tokio)\n");
    println!("| target | ours | peer | ratio | limit | result |");
    println!("|---|---|---|---|---|---|");
    let row = |workload: &str, peer: &str, limit: f64| {
        let metric = primary_metric(workload);
        let name = format!("{workload} {metric}: ours <= {limit} x {peer}");
        let (Some(ours), Some(theirs)) = (
            results.primary(workload, "ours-tokio"),
            results.primary(workload, peer),
        ) else {
            println!("| {name} | - | - | - | {limit} | n/a (not measured) |");
            return;
        };
        let ratio = ours / theirs;
        let result = if !results.valid(workload, "ours-tokio") || !results.valid(workload, peer) {
            "not valid (loadgen INVALID)"
        } else if ratio <= limit {
            "met"
        } else {
            "missed"
        };
        println!("| {name} | {ours} | {theirs} | {ratio:.2} | {limit} | {result} |");
    };
    let idle: Vec<&String> = results
        .workloads
        .iter()
        .filter(|w| w.starts_with("idle"))
        .collect();
    if idle.is_empty() {
        row("idle-10000", "socketioxide", 0.4);
    }
    for workload in idle {
        row(workload, "socketioxide", 0.4);
    }
    for workload in ["echo-1", "echo-8"] {
        row(workload, "socketioxide", 0.75);
        row(workload, "raw", 1.2);
    }
    for workload in ["broadcast-1", "broadcast-32"] {
        row(workload, "socketioxide", 0.7);
    }
    // Issue 11: a broadcast costs the bus one publish, not one per receiver.
    for workload in results
        .workloads
        .iter()
        .filter(|w| w.starts_with("cluster"))
    {
        for server in &results.servers[workload] {
            let name = format!("{workload} {server}: publishes per broadcast");
            let Some(per) = results
                .get(workload, server, "publishes_per_bcast")
                .and_then(|v| v.parse::<f64>().ok())
            else {
                println!("| {name} | - | - | - | 1 | n/a (not measured) |");
                continue;
            };
            let lost = results
                .get(workload, server, "lost_deliveries")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let result = if lost > 0 {
                "missed (deliveries lost)"
            } else if (0.95..=1.05).contains(&per) {
                "met"
            } else {
                "missed"
            };
            println!("| {name} | {per} | - | - | 1 | {result} |");
        }
    }
    // Burst's peak memory depends on the backpressure policy, not speed.
    let worst = spreads
        .iter()
        .filter(|(w, _, _)| !w.starts_with("burst"))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let name = "runtimes within 15% (worst workload)";
    match worst {
        None => println!("| {name} | - | - | - | 15% | n/a (not measured) |"),
        Some((workload, spread, _)) => {
            let all_valid = spreads.iter().all(|(_, _, valid)| *valid);
            let result = if !all_valid {
                "not valid (loadgen INVALID)"
            } else if *spread <= RUNTIME_SPREAD {
                "met"
            } else {
                "missed"
            };
            println!(
                "| {name} | {workload}: {:.0}% | - | - | 15% | {result} |",
                spread * 100.0
            );
        }
    }
}
