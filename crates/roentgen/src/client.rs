//! `roentgen traces` and `roentgen trace ID`: a terminal client over the public X-Ray
//! API (GetTraceSummaries, BatchGetTraces), so anything it shows a script can get too.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use roentgen_api::{
    BatchGetTracesRequest, BatchGetTracesResult, EpochSeconds, GetTraceSummariesRequest,
    GetTraceSummariesResult,
};
use roentgen_model::Document;
use roentgen_model::timeline::{Outcome, timeline};

/// Width of the waterfall's bar column.
const BAR: usize = 40;

fn post<Req: serde::Serialize, Res: serde::de::DeserializeOwned>(
    endpoint: &str,
    path: &str,
    request: &Req,
) -> anyhow::Result<Res> {
    let url = format!("{}{path}", endpoint.trim_end_matches('/'));
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?
        .post(&url)
        .json(request)
        .send()
        .with_context(|| format!("call {url}"))?;
    let status = response.status();
    let text = response.text().context("read the answer")?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                let kind = v.get("__type")?.as_str()?.to_string();
                let msg = v.get("message").or(v.get("Message"))?.as_str()?.to_string();
                Some(format!("{kind}: {msg}"))
            })
            .unwrap_or(text);
        bail!("{url} answered {status}: {message}");
    }
    serde_json::from_str(&text).with_context(|| format!("decode the answer of {url}"))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn seconds(v: Option<f64>) -> String {
    match v {
        Some(s) if s < 1.0 => format!("{:.1}ms", s * 1000.0),
        Some(s) => format!("{s:.3}s"),
        None => "-".into(),
    }
}

fn utc(epoch: f64) -> String {
    let secs = epoch.floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `roentgen traces`: summaries matching `filter` over the last `since`.
pub(crate) fn traces(
    endpoint: &str,
    filter: Option<String>,
    since: Duration,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    let end = now();
    let mut request = GetTraceSummariesRequest {
        start_time: EpochSeconds((end - since.as_secs_f64()).floor()),
        end_time: EpochSeconds(end.ceil()),
        filter_expression: filter,
        ..GetTraceSummariesRequest::default()
    };
    let mut rows = Vec::new();
    loop {
        let page: GetTraceSummariesResult = post(endpoint, "/TraceSummaries", &request)?;
        rows.extend(page.trace_summaries);
        match page.next_token {
            Some(t) if rows.len() < limit => request.next_token = Some(t),
            _ => break,
        }
    }
    rows.truncate(limit);
    println!(
        "{:<35}  {:<19}  {:>9}  {:>9}  {:<8}  {:<5}  ENTRY / URL",
        "TRACE ID", "START (UTC)", "DURATION", "RESPONSE", "STATUS", "HTTP"
    );
    for s in &rows {
        let status = if s.has_fault == Some(true) {
            "fault"
        } else if s.has_throttle == Some(true) {
            "throttle"
        } else if s.has_error == Some(true) {
            "error"
        } else if s.is_partial == Some(true) {
            "partial"
        } else {
            "ok"
        };
        let http = s.http.as_ref();
        let entry = s
            .entry_point
            .as_ref()
            .and_then(|e| e.name.clone())
            .unwrap_or_default();
        let url = http
            .and_then(|h| {
                Some(format!(
                    "{} {}",
                    h.http_method.clone().unwrap_or_default(),
                    h.http_url.clone()?
                ))
            })
            .unwrap_or_default();
        println!(
            "{:<35}  {:<19}  {:>9}  {:>9}  {:<8}  {:<5}  {entry} {url}",
            s.id.clone().unwrap_or_default(),
            s.start_time.map(|t| utc(t.as_f64())).unwrap_or_default(),
            seconds(s.duration),
            seconds(s.response_time),
            status,
            http.and_then(|h| h.http_status)
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
        );
    }
    eprintln!("{} traces", rows.len());
    Ok(ExitCode::SUCCESS)
}

/// `roentgen trace ID`: the trace as a waterfall.
pub(crate) fn trace(endpoint: &str, id: &str) -> anyhow::Result<ExitCode> {
    let request = BatchGetTracesRequest {
        trace_ids: vec![id.to_string()],
        next_token: None,
    };
    let result: BatchGetTracesResult = post(endpoint, "/Traces", &request)?;
    let Some(found) = result.traces.into_iter().next() else {
        eprintln!("roentgen trace: no trace {id}");
        return Ok(ExitCode::from(1));
    };
    let documents: Vec<Document> = found
        .segments
        .iter()
        .filter_map(|s| Document::parse(s.document.as_deref()?).ok())
        .collect();
    let segments: Vec<_> = documents.iter().map(Document::segment).collect();
    let rows = timeline(&segments);
    let total = rows
        .iter()
        .map(|r| r.offset + r.duration.unwrap_or(0.0))
        .fold(0.0_f64, f64::max)
        .max(1e-6);
    println!(
        "trace {id}: {} segments, {}",
        documents.len(),
        seconds(found.duration.or(Some(total)))
    );
    let name_width = rows
        .iter()
        .map(|r| r.depth * 2 + r.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 48);
    let service_width = rows
        .iter()
        .map(|r| r.service.chars().count())
        .max()
        .unwrap_or(7)
        .clamp(7, 24);
    println!(
        "{:<sw$}  {:<nw$}  {:>9}  {:>9}  {:<bw$}  STATUS",
        "SERVICE",
        "NAME",
        "START",
        "DURATION",
        " ",
        sw = service_width,
        nw = name_width,
        bw = BAR
    );
    for r in &rows {
        let from = ((r.offset / total) * BAR as f64).round() as usize;
        let len = r
            .duration
            .map_or(1, |d| ((d / total) * BAR as f64).round().max(1.0) as usize);
        let from = from.min(BAR - 1);
        let len = len.min(BAR - from);
        let fill = if r.duration.is_some() { '█' } else { '░' };
        let bar: String = (0..BAR)
            .map(|i| {
                if i >= from && i < from + len {
                    fill
                } else {
                    ' '
                }
            })
            .collect();
        let status = match r.outcome {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Throttle => "throttle",
            Outcome::Fault => "fault",
            Outcome::InProgress => "in progress",
        };
        let status = match r.http_status {
            Some(code) => format!("{status} {code}"),
            None => status.to_string(),
        };
        let name = format!("{}{}", "  ".repeat(r.depth), r.name);
        println!(
            "{:<sw$}  {:<nw$}  {:>9}  {:>9}  {bar}  {status}",
            r.service,
            name,
            format!("+{}", seconds(Some(r.offset))),
            seconds(r.duration),
            sw = service_width,
            nw = name_width,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `roentgen map`: the service graph of the last `since`, one line per edge.
pub(crate) fn map(endpoint: &str, since: Duration) -> anyhow::Result<ExitCode> {
    use roentgen_api::graph::{GetServiceGraphRequest, GetServiceGraphResult, Statistics};

    let end = now();
    let request = GetServiceGraphRequest {
        start_time: EpochSeconds((end - since.as_secs_f64()).floor()),
        end_time: EpochSeconds(end.ceil()),
        ..GetServiceGraphRequest::default()
    };
    let graph: GetServiceGraphResult = post(endpoint, "/ServiceGraph", &request)?;
    let label = |id: Option<i32>| {
        graph
            .services
            .iter()
            .find(|s| s.reference_id == id)
            .map(|s| match &s.r#type {
                Some(t) if t != "client" => format!("{} ({t})", s.name.clone().unwrap_or_default()),
                _ => s.name.clone().unwrap_or_default(),
            })
            .unwrap_or_else(|| "?".into())
    };
    let pct = |part: i64, total: i64| {
        if total == 0 {
            0.0
        } else {
            100.0 * part as f64 / total as f64
        }
    };
    let line = |s: &Statistics| {
        let total = s.total_count.unwrap_or(0);
        let errors = s
            .error_statistics
            .as_ref()
            .and_then(|e| e.total_count)
            .unwrap_or(0);
        let faults = s
            .fault_statistics
            .as_ref()
            .and_then(|f| f.total_count)
            .unwrap_or(0);
        let mean = if total > 0 {
            s.total_response_time.unwrap_or(0.0) / total as f64
        } else {
            0.0
        };
        format!(
            "{total:>9}  {:>6.1}%  {:>6.1}%  {:>9}",
            pct(errors, total),
            pct(faults, total),
            seconds(Some(mean))
        )
    };
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for s in &graph.services {
        for e in &s.edges {
            let stats = e.summary_statistics.clone().unwrap_or_default();
            rows.push((label(s.reference_id), label(e.reference_id), line(&stats)));
        }
    }
    rows.sort();
    let from_width = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let to_width = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(2)
        .max(2);
    println!(
        "{:<fw$}     {:<tw$}  {:>9}  {:>7}  {:>7}  {:>9}",
        "FROM",
        "TO",
        "REQUESTS",
        "ERRORS",
        "FAULTS",
        "MEAN",
        fw = from_width,
        tw = to_width
    );
    for (from, to, stats) in &rows {
        println!("{from:<from_width$}  →  {to:<to_width$}  {stats}");
    }
    eprintln!("{} services, {} edges", graph.services.len(), rows.len());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_795_521_600.5), "2026-11-24 12:00:00");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00");
    }
}
