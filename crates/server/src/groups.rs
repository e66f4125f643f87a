//! Groups: named filter expressions, kept in the store's configuration records so they
//! survive restarts. `Default` always exists and has no filter, as in X-Ray.

use axum::response::Response;
use roentgen_api::ApiError;
use roentgen_api::groups::{
    CreateGroupRequest, GetGroupsRequest, GetGroupsResult, Group, GroupRef, GroupResult,
    InsightsConfiguration, Tag, UpdateGroupRequest,
};
use roentgen_store::{CompiledFilter, ConfigKind, GroupDef};
use serde::{Deserialize, Serialize};

use crate::http::{AppState, AwsError, AwsJson, Scoped, json};

/// The group every account has.
const DEFAULT_GROUP: &str = "Default";
/// Region and account in the ARNs of a self-hosted deployment.
const ARN_PREFIX: &str = "arn:aws:xray:local:000000000000:group";

/// A group as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredGroup {
    name: String,
    arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    insights: Option<InsightsConfiguration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Tag>,
}

impl StoredGroup {
    fn wire(&self) -> Group {
        Group {
            group_name: Some(self.name.clone()),
            group_arn: Some(self.arn.clone()),
            filter_expression: self.filter.clone(),
            insights_configuration: Some(self.insights.clone().unwrap_or(InsightsConfiguration {
                insights_enabled: Some(false),
                notifications_enabled: Some(false),
            })),
        }
    }

    fn default_group() -> Self {
        Self {
            name: DEFAULT_GROUP.into(),
            arn: format!("{ARN_PREFIX}/{DEFAULT_GROUP}"),
            filter: None,
            insights: None,
            tags: Vec::new(),
        }
    }
}

/// A filter expression must parse before it is kept.
fn check_filter(expr: &Option<String>) -> Result<(), AwsError> {
    if let Some(e) = expr {
        CompiledFilter::new(e)?;
    }
    Ok(())
}

async fn all_groups(state: &AppState) -> Result<Vec<StoredGroup>, AwsError> {
    let records = state
        .store
        .list_config(&state.tenant, ConfigKind::Group)
        .await?;
    let mut groups = vec![StoredGroup::default_group()];
    for (name, value) in records {
        match serde_json::from_value::<StoredGroup>(value) {
            Ok(g) => groups.push(g),
            Err(e) => tracing::error!(group = %name, "skipping an unreadable group record: {e}"),
        }
    }
    Ok(groups)
}

/// Every group as the store's filter evaluation takes them.
pub(crate) async fn definitions(state: &AppState) -> Result<Vec<GroupDef>, AwsError> {
    Ok(all_groups(state)
        .await?
        .into_iter()
        .map(|g| GroupDef {
            name: g.name,
            arn: g.arn,
            filter: g.filter,
        })
        .collect())
}

pub(crate) async fn resolve(state: &AppState, r: &GroupRef) -> Result<StoredGroup, AwsError> {
    if r.group_name.is_none() && r.group_arn.is_none() {
        return Err(ApiError::invalid_request("give GroupName or GroupARN").into());
    }
    all_groups(state)
        .await?
        .into_iter()
        .find(|g| {
            r.group_name.as_deref().is_none_or(|n| n == g.name)
                && r.group_arn.as_deref().is_none_or(|a| a == g.arn)
        })
        .ok_or_else(|| {
            ApiError::invalid_request(format!(
                "group {} not found",
                r.group_name
                    .as_deref()
                    .or(r.group_arn.as_deref())
                    .unwrap_or("")
            ))
            .into()
        })
}

async fn save(state: &AppState, g: &StoredGroup) -> Result<(), AwsError> {
    let value = serde_json::to_value(g)
        .map_err(|e| ApiError::internal_failure(format!("encode group: {e}")))?;
    state
        .store
        .put_config(&state.tenant, ConfigKind::Group, &g.name, value)
        .await?;
    Ok(())
}

fn group_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..26)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `POST /CreateGroup`.
pub(crate) async fn create_group(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<CreateGroupRequest>,
) -> Result<Response, AwsError> {
    req.validate()?;
    check_filter(&req.filter_expression)?;
    if all_groups(&state)
        .await?
        .iter()
        .any(|g| g.name == req.group_name)
    {
        return Err(
            ApiError::invalid_request(format!("group {} already exists", req.group_name)).into(),
        );
    }
    let group = StoredGroup {
        arn: format!("{ARN_PREFIX}/{}/{}", req.group_name, group_id()),
        name: req.group_name,
        filter: req.filter_expression.filter(|f| !f.trim().is_empty()),
        insights: req.insights_configuration,
        tags: req.tags,
    };
    save(&state, &group).await?;
    Ok(json(&GroupResult {
        group: Some(group.wire()),
    }))
}

/// `POST /GetGroup`.
pub(crate) async fn get_group(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<GroupRef>,
) -> Result<Response, AwsError> {
    let g = resolve(&state, &req).await?;
    Ok(json(&GroupResult {
        group: Some(g.wire()),
    }))
}

/// `POST /Groups`.
pub(crate) async fn get_groups(
    Scoped(state): Scoped,
    AwsJson(_req): AwsJson<GetGroupsRequest>,
) -> Result<Response, AwsError> {
    let mut groups = all_groups(&state).await?;
    groups[1..].sort_by(|a, b| a.name.cmp(&b.name));
    Ok(json(&GetGroupsResult {
        groups: groups.iter().map(StoredGroup::wire).collect(),
        next_token: None,
    }))
}

/// `POST /UpdateGroup`.
pub(crate) async fn update_group(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<UpdateGroupRequest>,
) -> Result<Response, AwsError> {
    let reference = GroupRef {
        group_name: req.group_name.clone(),
        group_arn: req.group_arn.clone(),
    };
    let mut g = resolve(&state, &reference).await?;
    if g.name == DEFAULT_GROUP {
        return Err(ApiError::invalid_request("the Default group cannot be changed").into());
    }
    check_filter(&req.filter_expression)?;
    if let Some(f) = req.filter_expression {
        g.filter = (!f.trim().is_empty()).then_some(f);
    }
    if let Some(i) = req.insights_configuration {
        g.insights = Some(i);
    }
    save(&state, &g).await?;
    Ok(json(&GroupResult {
        group: Some(g.wire()),
    }))
}

/// `POST /DeleteGroup`.
pub(crate) async fn delete_group(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<GroupRef>,
) -> Result<Response, AwsError> {
    let g = resolve(&state, &req).await?;
    if g.name == DEFAULT_GROUP {
        return Err(ApiError::invalid_request("the Default group cannot be deleted").into());
    }
    state
        .store
        .delete_config(&state.tenant, ConfigKind::Group, &g.name)
        .await?;
    Ok(json(&serde_json::json!({})))
}
