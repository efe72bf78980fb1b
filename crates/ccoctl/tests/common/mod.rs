//! Helpers for the `ccoctl` integration tests: run the binary against a fresh emulator and read the
//! results back through the AWS SDK directly (never through the code under test).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_config::{BehaviorVersion, Region};
pub use cco_testsupport::moto::Moto;

pub mod front;

pub const THUMBPRINT: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn corpus(cloud: &str) -> PathBuf {
    cco_testsupport::corpus_dir().join("credreqs").join(cloud)
}

/// Runs ccoctl with `args`, talking to `moto` (or nothing, when `None`).
pub fn ccoctl(moto: Option<&Moto>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccoctl"));
    cmd.args(args)
        .env_remove("AWS_PROFILE")
        .env("NO_COLOR", "1");
    match moto {
        Some(m) => {
            for (k, v) in m.env() {
                cmd.env(k, v);
            }
        }
        None => {
            // Any AWS call would fail fast against a closed port.
            cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
                .env("AWS_ACCESS_KEY_ID", "x")
                .env("AWS_SECRET_ACCESS_KEY", "x");
        }
    }
    cmd.output().expect("ccoctl runs")
}

pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "ccoctl failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "ccoctl unexpectedly succeeded\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
    pub cf: aws_sdk_cloudfront::Client,
}

pub async fn clients(moto: &Moto, region: &str) -> Clients {
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(aws_sdk_iam::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let s3 = aws_sdk_s3::config::Builder::from(&conf)
        .force_path_style(true)
        .build();
    Clients {
        iam: aws_sdk_iam::Client::new(&conf),
        s3: aws_sdk_s3::Client::from_conf(s3),
        cf: aws_sdk_cloudfront::Client::new(&conf),
    }
}

/// All role names in the account.
pub async fn role_names(c: &Clients) -> Vec<String> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let r = c
            .iam
            .list_roles()
            .set_marker(marker)
            .send()
            .await
            .expect("list roles");
        out.extend(r.roles().iter().map(|r| r.role_name().to_string()));
        if r.is_truncated() {
            marker = r.marker().map(str::to_owned);
        } else {
            return out;
        }
    }
}

/// Every IAM role, OIDC provider, bucket and distribution still tagged as owned by `name`.
pub async fn tagged_leftovers(c: &Clients, name: &str) -> Vec<String> {
    let key = format!("openshift.io/cloud-credential-operator/{name}");
    let mut left = Vec::new();
    for r in role_names(c).await {
        let t = c
            .iam
            .list_role_tags()
            .role_name(&r)
            .send()
            .await
            .expect("tags");
        if t.tags().iter().any(|t| t.key() == key) {
            left.push(format!("role {r}"));
        }
    }
    let p = c
        .iam
        .list_open_id_connect_providers()
        .send()
        .await
        .expect("providers");
    for e in p.open_id_connect_provider_list() {
        let arn = e.arn().expect("arn");
        let t = c
            .iam
            .list_open_id_connect_provider_tags()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
            .expect("tags");
        if t.tags().iter().any(|t| t.key() == key) {
            left.push(format!("provider {arn}"));
        }
    }
    let b = c.s3.list_buckets().send().await.expect("buckets");
    for bucket in b.buckets() {
        let n = bucket.name().expect("name");
        if let Ok(t) = c.s3.get_bucket_tagging().bucket(n).send().await {
            if t.tag_set().iter().any(|t| t.key() == key) {
                left.push(format!("bucket {n}"));
            }
        }
    }
    let d =
        c.cf.list_distributions()
            .send()
            .await
            .expect("distributions");
    if let Some(list) = d.distribution_list() {
        for dist in list.items() {
            let t =
                c.cf.list_tags_for_resource()
                    .resource(dist.arn())
                    .send()
                    .await
                    .expect("tags");
            if t.tags()
                .is_some_and(|t| t.items().iter().any(|t| t.key() == key))
            {
                left.push(format!("distribution {}", dist.id()));
            }
        }
    }
    left
}

/// IAM returns policy documents percent-encoded, as real AWS does.
pub fn decode_policy(doc: &str) -> serde_json::Value {
    let s = percent_encoding::percent_decode_str(doc)
        .decode_utf8()
        .expect("utf8");
    serde_json::from_str(&s).expect("policy json")
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

/// Writes `n` synthetic AWS requests derived from the corpus into `dir`.
pub fn synthetic_requests(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let corpus: Vec<String> = {
        let mut files: Vec<_> = std::fs::read_dir(corpus("aws"))
            .expect("corpus")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("read"))
            .collect()
    };
    for i in 0..n {
        let base = &corpus[i % corpus.len()];
        let mut v: serde_yaml::Value = serde_yaml::from_str(base).expect("yaml");
        v["metadata"]["name"] = format!("synthetic-{i}").into();
        v["spec"]["secretRef"]["name"] = format!("secret-{i}").into();
        v["spec"]["secretRef"]["namespace"] = format!("ns-{}", i % 13).into();
        std::fs::write(
            dir.join(format!("req-{i:04}.yaml")),
            serde_yaml::to_string(&v).expect("ser"),
        )
        .expect("write");
    }
}

/// Reads a JSON object from the emulated S3 with a signed request.
pub async fn get_json(c: &Clients, bucket: &str, key: &str) -> serde_json::Value {
    let out =
        c.s3.get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("get object");
    let bytes = out.body.collect().await.expect("body").into_bytes();
    serde_json::from_slice(&bytes).expect("json object")
}
