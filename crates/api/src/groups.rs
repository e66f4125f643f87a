//! Groups: `CreateGroup`, `GetGroup`, `GetGroups`, `UpdateGroup`, `DeleteGroup` — a
//! name for a filter expression.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Insights settings of a group (kept as given; Roentgen has no Insights).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InsightsConfiguration {
    /// Insights on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights_enabled: Option<bool>,
    /// Notifications on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications_enabled: Option<bool>,
}

/// A tag.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Key (1–128).
    pub key: String,
    /// Value (0–256).
    pub value: String,
}

/// A group as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Group {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// ARN.
    #[serde(rename = "GroupARN", default, skip_serializing_if = "Option::is_none")]
    pub group_arn: Option<String>,
    /// The filter expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_expression: Option<String>,
    /// Insights settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights_configuration: Option<InsightsConfiguration>,
}

/// Input of `CreateGroup` (`POST /CreateGroup`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateGroupRequest {
    /// Required, 1–32 characters.
    pub group_name: String,
    /// The filter expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_expression: Option<String>,
    /// Insights settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights_configuration: Option<InsightsConfiguration>,
    /// Tags (at most 200).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// Identifies a group by name or ARN (`GetGroup`, `DeleteGroup`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupRef {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// ARN.
    #[serde(rename = "GroupARN", default, skip_serializing_if = "Option::is_none")]
    pub group_arn: Option<String>,
}

/// Input of `UpdateGroup` (`POST /UpdateGroup`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateGroupRequest {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// ARN.
    #[serde(rename = "GroupARN", default, skip_serializing_if = "Option::is_none")]
    pub group_arn: Option<String>,
    /// New filter expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_expression: Option<String>,
    /// New Insights settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights_configuration: Option<InsightsConfiguration>,
}

/// Input of `GetGroups` (`POST /Groups`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetGroupsRequest {
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `{ "Group": … }`, the answer of create, get and update.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupResult {
    /// The group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Group>,
}

/// Output of `GetGroups`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetGroupsResult {
    /// The groups.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Pagination token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Checks a group name: 1–32 characters.
pub fn validate_group_name(name: &str) -> Result<(), ApiError> {
    let n = name.chars().count();
    if n == 0 || n > 32 {
        return Err(ApiError::invalid_request(format!(
            "GroupName {name:?} must be 1 to 32 characters"
        )));
    }
    Ok(())
}

impl CreateGroupRequest {
    /// Checks the model's constraints (the filter expression is checked by parsing it).
    pub fn validate(&self) -> Result<(), ApiError> {
        validate_group_name(&self.group_name)?;
        if self.tags.len() > 200 {
            return Err(ApiError::invalid_request("at most 200 Tags"));
        }
        for t in &self.tags {
            let k = t.key.chars().count();
            if k == 0 || k > 128 || t.value.chars().count() > 256 {
                return Err(ApiError::invalid_request(format!(
                    "tag {:?}: keys are 1 to 128 characters, values at most 256",
                    t.key
                )));
            }
        }
        Ok(())
    }
}
