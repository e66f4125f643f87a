//! What the host tells about itself: the region from the ECS container metadata file or
//! the EC2 instance metadata service (IMDSv2), as the official daemon reads them when it
//! is not in local mode. Used at start-up only, before the async runtime exists.

use std::collections::HashMap;
use std::time::Duration;

/// The region of the task or instance, when either metadata source knows it.
pub fn region(env: &HashMap<String, String>) -> Option<String> {
    ecs_region(env).or_else(|| imds_region(env))
}

/// ECS: with `ECS_ENABLE_CONTAINER_METADATA=true`, the file named by
/// `ECS_CONTAINER_METADATA_FILE` holds the task ARN, whose fourth field is the region.
fn ecs_region(env: &HashMap<String, String>) -> Option<String> {
    if !env
        .get("ECS_ENABLE_CONTAINER_METADATA")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return None;
    }
    let text = std::fs::read_to_string(env.get("ECS_CONTAINER_METADATA_FILE")?).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    region_of_arn(value.get("TaskARN")?.as_str()?)
}

fn region_of_arn(arn: &str) -> Option<String> {
    arn.split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

fn imds_region(env: &HashMap<String, String>) -> Option<String> {
    let endpoint = env
        .get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .map_or("http://169.254.169.254", String::as_str)
        .trim_end_matches('/');
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(1))
        .no_proxy()
        .build()
        .ok()?;
    let token = client
        .put(format!("{endpoint}/latest/api/token"))
        .header("x-aws-ec2-metadata-token-ttl-seconds", "60")
        .send()
        .ok()?
        .error_for_status()
        .ok()?
        .text()
        .ok()?;
    let region = client
        .get(format!("{endpoint}/latest/meta-data/placement/region"))
        .header("x-aws-ec2-metadata-token", token.trim())
        .send()
        .ok()?
        .error_for_status()
        .ok()?
        .text()
        .ok()?;
    let region = region.trim();
    (!region.is_empty()).then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_task_arn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("meta.json");
        std::fs::write(
            &file,
            r#"{"TaskARN":"arn:aws:ecs:eu-central-1:123456789012:task/cluster/abc"}"#,
        )
        .expect("write");
        let env = HashMap::from([
            (
                "ECS_ENABLE_CONTAINER_METADATA".to_string(),
                "true".to_string(),
            ),
            (
                "ECS_CONTAINER_METADATA_FILE".to_string(),
                file.to_string_lossy().into_owned(),
            ),
        ]);
        assert_eq!(ecs_region(&env).as_deref(), Some("eu-central-1"));
        assert_eq!(region_of_arn("arn:aws:ecs::1:task/x"), None);
    }
}
