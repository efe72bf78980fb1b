//! Benchmark floor: fires the same number and kinds of AWS calls that `ccoctl aws create-all` and
//! `delete` make, straight through the SDK with no planning, file writing or checks, at a given
//! concurrency. Role inputs come from a `ccoctl aws create-all --dry-run` directory, so both sides
//! send the same documents.
//!
//! Usage: floor <create|delete> <dry-run-dir> <name> <concurrency>
//! Prints `elapsed_s=<seconds> calls=<n>`.

use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use futures::stream::{self, StreamExt};

type R<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> R<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, dir, name, conc] = args.as_slice() else {
        return Err("usage: floor <create|delete> <dry-run-dir> <name> <concurrency>".into());
    };
    let conc: usize = conc.parse()?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let aws = cco_aws::Aws::connect("us-east-1", conc).await;
    let mut roles = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let f = p
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if f.starts_with("05-") && f.ends_with("-role.json") {
            let role: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p)?)?;
            let pol: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
                p.with_file_name(
                    f.replacen("05-", "06-", 1)
                        .replace("-role.json", "-policy.json"),
                ),
            )?)?;
            let s = |v: &serde_json::Value, k: &str| {
                v[k].as_str()
                    .unwrap_or_default()
                    .replace("<enter_aws_account_id_here>", "123456789012")
            };
            roles.push((
                s(&role, "RoleName"),
                s(&role, "AssumeRolePolicyDocument"),
                s(&pol, "PolicyDocument"),
            ));
        }
    }
    let bucket = format!("{name}-oidc");
    let start = Instant::now();
    let mut calls = 0usize;
    if mode == "create" {
        aws.sts.get_caller_identity().send().await?;
        aws.s3.create_bucket().bucket(&bucket).send().await?;
        let tag = aws_sdk_s3::types::Tag::builder()
            .key("k")
            .value("v")
            .build()?;
        aws.s3
            .put_bucket_tagging()
            .bucket(&bucket)
            .tagging(aws_sdk_s3::types::Tagging::builder().tag_set(tag).build()?)
            .send()
            .await?;
        aws.s3
            .put_public_access_block()
            .bucket(&bucket)
            .public_access_block_configuration(
                aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .build(),
            )
            .send()
            .await?;
        aws.s3
            .put_bucket_policy()
            .bucket(&bucket)
            .policy(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .send()
            .await?;
        let _ = aws
            .s3
            .get_object()
            .bucket(&bucket)
            .key("keys.json")
            .send()
            .await;
        for key in [".well-known/openid-configuration", "keys.json"] {
            aws.s3
                .put_object()
                .bucket(&bucket)
                .key(key)
                .body(ByteStream::from_static(b"{}"))
                .send()
                .await?;
        }
        let _ = aws
            .iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(format!(
                "arn:aws:iam::123456789012:oidc-provider/{bucket}.s3.us-east-1.amazonaws.com"
            ))
            .send()
            .await;
        aws.iam
            .create_open_id_connect_provider()
            .url(format!("https://{bucket}.s3.us-east-1.amazonaws.com"))
            .client_id_list("openshift")
            .thumbprint_list("0123456789abcdef0123456789abcdef01234567")
            .send()
            .await?;
        aws.sts.get_caller_identity().send().await?;
        calls += 12;
        let results: Vec<R<()>> = stream::iter(&roles)
            .map(|(n, trust, pol)| {
                let aws = &aws;
                async move {
                    aws.iam
                        .create_role()
                        .role_name(n)
                        .assume_role_policy_document(trust)
                        .send()
                        .await?;
                    aws.iam
                        .put_role_policy()
                        .role_name(n)
                        .policy_name(n)
                        .policy_document(pol)
                        .send()
                        .await?;
                    Ok(())
                }
            })
            .buffer_unordered(conc)
            .collect()
            .await;
        for r in results {
            r?;
        }
        calls += 2 * roles.len();
    } else {
        aws.sts.get_caller_identity().send().await?;
        let mut marker = None;
        loop {
            let out = aws
                .iam
                .list_roles()
                .set_marker(marker)
                .max_items(1000)
                .send()
                .await?;
            calls += 1;
            if !out.is_truncated() {
                break;
            }
            marker = out.marker().map(str::to_owned);
        }
        let results: Vec<R<()>> = stream::iter(&roles)
            .map(|(n, _, _)| {
                let aws = &aws;
                async move {
                    aws.iam.list_role_tags().role_name(n).send().await?;
                    Ok(())
                }
            })
            .buffer_unordered(conc)
            .collect()
            .await;
        results.into_iter().collect::<R<Vec<()>>>()?;
        let results: Vec<R<()>> = stream::iter(&roles)
            .map(|(n, _, _)| {
                let aws = &aws;
                async move {
                    aws.iam
                        .delete_role_policy()
                        .role_name(n)
                        .policy_name(n)
                        .send()
                        .await?;
                    aws.iam.delete_role().role_name(n).send().await?;
                    Ok(())
                }
            })
            .buffer_unordered(conc)
            .collect()
            .await;
        results.into_iter().collect::<R<Vec<()>>>()?;
        let providers = aws.iam.list_open_id_connect_providers().send().await?;
        for p in providers.open_id_connect_provider_list() {
            if let Some(arn) = p.arn() {
                aws.iam
                    .list_open_id_connect_provider_tags()
                    .open_id_connect_provider_arn(arn)
                    .send()
                    .await?;
                aws.iam
                    .delete_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .send()
                    .await?;
                calls += 2;
            }
        }
        aws.cloudfront.list_distributions().send().await?;
        aws.cloudfront.list_origin_access_controls().send().await?;
        aws.s3.get_bucket_tagging().bucket(&bucket).send().await?;
        let objs = aws.s3.list_objects_v2().bucket(&bucket).send().await?;
        let ids = objs
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(|k| {
                aws_sdk_s3::types::ObjectIdentifier::builder()
                    .key(k)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        aws.s3
            .delete_objects()
            .bucket(&bucket)
            .delete(
                aws_sdk_s3::types::Delete::builder()
                    .set_objects(Some(ids))
                    .build()?,
            )
            .send()
            .await?;
        aws.s3.list_objects_v2().bucket(&bucket).send().await?;
        aws.s3.delete_bucket().bucket(&bucket).send().await?;
        calls += 9 + 3 * roles.len();
    }
    println!(
        "elapsed_s={:.3} calls={calls}",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
