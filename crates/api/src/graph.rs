//! `GetServiceGraph` (`POST /ServiceGraph`): the service map of a time window, built
//! from the store's per-minute node and edge rollups.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::timestamp::EpochSeconds;

/// Input of `GetServiceGraph`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetServiceGraphRequest {
    /// Required. Start of the window.
    pub start_time: EpochSeconds,
    /// Required. End of the window.
    pub end_time: EpochSeconds,
    /// Only traces of this group (1–32 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// Only traces of this group, by ARN (1–400 characters).
    #[serde(rename = "GroupARN", default, skip_serializing_if = "Option::is_none")]
    pub group_arn: Option<String>,
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl GetServiceGraphRequest {
    /// Checks the model's constraints.
    pub fn validate(&self) -> Result<(), ApiError> {
        if !self.start_time.is_finite() || !self.end_time.is_finite() {
            return Err(ApiError::invalid_request(
                "StartTime and EndTime must be finite",
            ));
        }
        if self
            .group_name
            .as_ref()
            .is_some_and(|g| g.is_empty() || g.chars().count() > 32)
        {
            return Err(ApiError::invalid_request(
                "GroupName must be 1 to 32 characters",
            ));
        }
        if self
            .group_arn
            .as_ref()
            .is_some_and(|g| g.is_empty() || g.chars().count() > 400)
        {
            return Err(ApiError::invalid_request(
                "GroupARN must be 1 to 400 characters",
            ));
        }
        Ok(())
    }
}

/// Output of `GetServiceGraph`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetServiceGraphResult {
    /// Start of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<EpochSeconds>,
    /// End of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<EpochSeconds>,
    /// The nodes, each with its outgoing edges.
    #[serde(default)]
    pub services: Vec<Service>,
    /// A group's filter changed within the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains_old_group_versions: Option<bool>,
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// A node of the service graph.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    /// Identifier of the node within this response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<i32>,
    /// Canonical name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Every name.
    #[serde(default)]
    pub names: Vec<String>,
    /// True for entry points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<bool>,
    /// Account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Type (`AWS::EC2::Instance`, `client`, `remote`, …).
    #[serde(rename = "Type", default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// State (`active`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// First minute with data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<EpochSeconds>,
    /// End of the last minute with data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<EpochSeconds>,
    /// Outgoing connections.
    #[serde(default)]
    pub edges: Vec<Edge>,
    /// Aggregated statistics of the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_statistics: Option<Statistics>,
    /// Histogram of durations.
    #[serde(default)]
    pub duration_histogram: Vec<HistogramEntry>,
    /// Histogram of response times.
    #[serde(default)]
    pub response_time_histogram: Vec<HistogramEntry>,
}

/// A connection between two nodes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Edge {
    /// The target node's `ReferenceId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<i32>,
    /// First minute with data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<EpochSeconds>,
    /// End of the last minute with data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<EpochSeconds>,
    /// Aggregated statistics of the calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_statistics: Option<Statistics>,
    /// Histogram of response times.
    #[serde(default)]
    pub response_time_histogram: Vec<HistogramEntry>,
    /// Aliases of the target.
    #[serde(default)]
    pub aliases: Vec<Alias>,
}

/// `ServiceStatistics` and `EdgeStatistics` (the same members).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statistics {
    /// Requests that completed with 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_count: Option<i64>,
    /// Requests that completed with 4xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_statistics: Option<ErrorStatistics>,
    /// Requests that completed with 5xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_statistics: Option<FaultStatistics>,
    /// All requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<i64>,
    /// Sum of response times, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_response_time: Option<f64>,
}

/// Client errors.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorStatistics {
    /// 429s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_count: Option<i64>,
    /// Other 4xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_count: Option<i64>,
    /// All 4xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<i64>,
}

/// Server faults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaultStatistics {
    /// 5xx other than throttling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_count: Option<i64>,
    /// All 5xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<i64>,
}

/// One histogram bucket.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistogramEntry {
    /// The bucket's value, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// How many fell in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

/// Another name of an edge's target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Alias {
    /// Canonical name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Every name.
    #[serde(default)]
    pub names: Vec<String>,
    /// Type.
    #[serde(rename = "Type", default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// Input of `GetTraceGraph` (`POST /TraceGraph`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTraceGraphRequest {
    /// Required. The traces.
    pub trace_ids: Vec<String>,
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Output of `GetTraceGraph`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTraceGraphResult {
    /// The nodes of the traces' graph.
    #[serde(default)]
    pub services: Vec<Service>,
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Input of `GetTimeSeriesServiceStatistics` (`POST /TimeSeriesServiceStatistics`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTimeSeriesServiceStatisticsRequest {
    /// Required. Start of the window.
    pub start_time: EpochSeconds,
    /// Required. End of the window.
    pub end_time: EpochSeconds,
    /// Only traces of this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// Only traces of this group, by ARN.
    #[serde(rename = "GroupARN", default, skip_serializing_if = "Option::is_none")]
    pub group_arn: Option<String>,
    /// `service(…)` or `edge(…, …)`; without it, the edges from clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_selector_expression: Option<String>,
    /// Seconds per point (a multiple of 60; 60 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i64>,
    /// Ask for forecasts (not computed; accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_statistics: Option<bool>,
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One point of the series.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeSeriesServiceStatistics {
    /// Start of the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<EpochSeconds>,
    /// Edge statistics (edge selectors and no selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_summary_statistics: Option<Statistics>,
    /// Node statistics (service selectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_summary_statistics: Option<Statistics>,
    /// Response-time histogram of the period.
    #[serde(default)]
    pub response_time_histogram: Vec<HistogramEntry>,
}

/// Output of `GetTimeSeriesServiceStatistics`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTimeSeriesServiceStatisticsResult {
    /// The points, oldest first.
    #[serde(default)]
    pub time_series_service_statistics: Vec<TimeSeriesServiceStatistics>,
    /// A group's filter changed within the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains_old_group_versions: Option<bool>,
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
