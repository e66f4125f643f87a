//! `PutTelemetryRecords` (`POST /TelemetryRecords`): the counters a daemon reports about
//! itself once a minute.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::timestamp::EpochSeconds;

/// Input of `PutTelemetryRecords`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutTelemetryRecordsRequest {
    /// Required. One record per reporting interval.
    pub telemetry_records: Vec<TelemetryRecord>,
    /// EC2 instance the daemon runs on.
    #[serde(
        rename = "EC2InstanceId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ec2_instance_id: Option<String>,
    /// Host name of the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// ARN of the resource the daemon runs on.
    #[serde(
        rename = "ResourceARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_arn: Option<String>,
}

impl PutTelemetryRecordsRequest {
    /// Checks the model's constraints on this input (`TelemetryRecords` is required, which
    /// deserialization enforces; `EC2InstanceId` and `Hostname` are at most 20 and 255
    /// characters, `ResourceARN` at most 500).
    pub fn validate(&self) -> Result<(), ApiError> {
        let too_long = |name: &str, v: &Option<String>, max: usize| match v {
            Some(s) if s.chars().count() > max => Err(ApiError::invalid_request(format!(
                "{name} is longer than {max} characters"
            ))),
            _ => Ok(()),
        };
        too_long("EC2InstanceId", &self.ec2_instance_id, 20)?;
        too_long("Hostname", &self.hostname, 255)?;
        too_long("ResourceARN", &self.resource_arn, 500)
    }
}

/// One interval's counters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TelemetryRecord {
    /// Required. End of the interval.
    pub timestamp: EpochSeconds,
    /// Segments received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments_received_count: Option<i64>,
    /// Segments sent to the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments_sent_count: Option<i64>,
    /// Segments dropped for want of buffer space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments_spillover_count: Option<i64>,
    /// Segments refused (bad header, or refused by the service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments_rejected_count: Option<i64>,
    /// Failed calls to the service by kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_connection_errors: Option<BackendConnectionErrors>,
}

/// Failed calls to the service by kind.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BackendConnectionErrors {
    /// Calls that timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_count: Option<i64>,
    /// Connections refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_refused_count: Option<i64>,
    /// Answers with a 4xx status.
    #[serde(
        rename = "HTTPCode4XXCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_code_4xx_count: Option<i64>,
    /// Answers with a 5xx status.
    #[serde(
        rename = "HTTPCode5XXCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_code_5xx_count: Option<i64>,
    /// Host names that did not resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_host_count: Option<i64>,
    /// Anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_count: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names() {
        let body = r#"{"TelemetryRecords":[{"Timestamp":1700000000,"SegmentsReceivedCount":3,
            "SegmentsSentCount":2,"SegmentsSpilloverCount":0,"SegmentsRejectedCount":1,
            "BackendConnectionErrors":{"TimeoutCount":0,"ConnectionRefusedCount":0,
            "HTTPCode4XXCount":0,"HTTPCode5XXCount":1,"UnknownHostCount":0,"OtherCount":0}}],
            "EC2InstanceId":"i-123","Hostname":"h","ResourceARN":"arn:x"}"#;
        let req: PutTelemetryRecordsRequest = serde_json::from_str(body).expect("parses");
        assert_eq!(req.telemetry_records[0].segments_received_count, Some(3));
        let errors = req.telemetry_records[0]
            .backend_connection_errors
            .as_ref()
            .expect("errors");
        assert_eq!(errors.http_code_5xx_count, Some(1));
        assert_eq!(req.ec2_instance_id.as_deref(), Some("i-123"));
        let back = serde_json::to_value(&req).expect("serializes");
        assert_eq!(back["ResourceARN"], "arn:x");
        assert_eq!(
            back["TelemetryRecords"][0]["BackendConnectionErrors"]["HTTPCode5XXCount"],
            1
        );
        assert!(req.validate().is_ok());
    }
}
