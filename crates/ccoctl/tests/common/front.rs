//! A complete AWS installation for `verify` and `plan` tests: moto, an HTTPS front that serves the
//! bucket's issuer URL with real TLS (cco_testsupport::tls_front), and `ccoctl aws create-all` run
//! through it, so the thumbprint and the anonymous reads are real.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use cco_testsupport::moto::Moto;
use cco_testsupport::tls_front::TlsFront;
use serde_json::Value;

use super::{clients, corpus, Clients};

pub const REGION: &str = "us-east-1";

/// An RSA-2048 private key in PKCS#1 PEM; one per label per test binary (generation is slow in
/// debug builds).
pub fn test_key(label: &'static str) -> String {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    static KEYS: OnceLock<std::sync::Mutex<std::collections::BTreeMap<&'static str, String>>> =
        OnceLock::new();
    let map = KEYS.get_or_init(Default::default);
    let mut map = map.lock().expect("lock");
    map.entry(label)
        .or_insert_with(|| {
            let k = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("keygen");
            k.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                .expect("pem")
                .to_string()
        })
        .clone()
}

/// The public half (PKIX PEM) of [`test_key`].
pub fn test_public_key(label: &'static str) -> String {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::EncodePublicKey;
    let k = rsa::RsaPrivateKey::from_pkcs1_pem(&test_key(label)).expect("parse");
    k.to_public_key()
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .expect("pem")
}

pub struct Install {
    pub moto: Moto,
    pub front: TlsFront,
    pub name: String,
    pub tmp: tempfile::TempDir,
    pub out: PathBuf,
    pub reqs: PathBuf,
    pub ca: PathBuf,
}

impl Install {
    /// moto, the front, a request dir (a copy of the AWS corpus) and an output dir with a key.
    pub fn new(name: &str) -> Install {
        let moto = Moto::start().expect("moto");
        let front = TlsFront::start(&moto.endpoint).expect("front");
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).expect("mkdir");
        std::fs::write(out.join("serviceaccount-signer.private"), test_key("main")).expect("key");
        let reqs = tmp.path().join("reqs");
        std::fs::create_dir_all(&reqs).expect("mkdir");
        for e in std::fs::read_dir(corpus("aws")).expect("corpus") {
            let p = e.expect("entry").path();
            std::fs::copy(&p, reqs.join(p.file_name().expect("name"))).expect("copy");
        }
        let ca = tmp.path().join("issuer-ca.pem");
        std::fs::write(&ca, &front.ca_pem).expect("ca");
        Install {
            moto,
            front,
            name: name.to_string(),
            tmp,
            out,
            reqs,
            ca,
        }
    }

    /// As [`Install::new`], then `create-all` through the front.
    pub fn created(name: &str) -> Install {
        let i = Install::new(name);
        i.ok(&i.create_all_args(&i.reqs, &[]));
        i
    }

    pub fn s(p: &Path) -> String {
        p.to_str().expect("utf8").to_string()
    }

    /// Runs ccoctl against moto, reaching HTTPS hosts through the front.
    pub fn ccoctl(&self, args: &[String]) -> Output {
        self.command(env!("CARGO_BIN_EXE_ccoctl"), args)
            .output()
            .expect("ccoctl runs")
    }

    /// A command with the environment of [`Install::ccoctl`]: moto's endpoint and credentials,
    /// HTTPS through the front.
    pub fn command(&self, program: &str, args: &[String]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_remove("AWS_PROFILE")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env("NO_COLOR", "1");
        for (k, v) in self.moto.env().into_iter().chain(self.front.env()) {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn ok(&self, args: &[String]) -> String {
        super::ok(&self.ccoctl(args))
    }

    pub fn args(&self, cmd: &str, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = ["aws", cmd, "--name", &self.name, "--region", REGION]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    pub fn create_all_args(&self, reqs: &Path, extra: &[&str]) -> Vec<String> {
        let mut v = self.args(
            "create-all",
            &[
                "--credentials-requests-dir",
                &Self::s(reqs),
                "--output-dir",
                &Self::s(&self.out),
                "--issuer-ca-file",
                &Self::s(&self.ca),
            ],
        );
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    /// `verify --output json` with the request dir, output dir and CA; returns exit code and report.
    pub fn verify(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = self.args(
            "verify",
            &[
                "--credentials-requests-dir",
                &Self::s(&self.reqs),
                "--output-dir",
                &Self::s(&self.out),
                "--issuer-ca-file",
                &Self::s(&self.ca),
                "--output",
                "json",
            ],
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        self.json(&args)
    }

    /// `plan --output json` with the flags of create-all over `reqs`.
    pub fn plan(&self, reqs: &Path, extra: &[&str]) -> (i32, Value) {
        let mut args = self.create_all_args(reqs, &["--output", "json"]);
        args[1] = "plan".into();
        args.extend(extra.iter().map(|s| s.to_string()));
        self.json(&args)
    }

    fn json(&self, args: &[String]) -> (i32, Value) {
        let out = self.ccoctl(args);
        let code = out.status.code().expect("exit code");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: exit {code}, not JSON ({e}):\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, v)
    }

    pub async fn clients(&self) -> Clients {
        clients(&self.moto, REGION).await
    }

    pub fn bucket(&self) -> String {
        format!("{}-oidc", self.name)
    }

    pub fn issuer(&self) -> String {
        format!("https://{}-oidc.s3.{REGION}.amazonaws.com", self.name)
    }

    pub fn provider_arn(&self) -> String {
        format!(
            "arn:aws:iam::123456789012:oidc-provider/{}-oidc.s3.{REGION}.amazonaws.com",
            self.name
        )
    }

    /// The role of a request file: `<name>-<namespace>-<secret>`, cut to 64 characters.
    pub fn role_of(&self, file: &str) -> String {
        let v: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(self.reqs.join(file)).expect("read"))
                .expect("yaml");
        let sr = &v["spec"]["secretRef"];
        let mut role = format!(
            "{}-{}-{}",
            self.name,
            sr["namespace"].as_str().expect("ns"),
            sr["name"].as_str().expect("name")
        );
        role.truncate(64);
        role
    }
}

/// The checks of a verify report with `id` whose subject contains `subject`.
pub fn checks<'a>(report: &'a Value, id: &str, subject: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["id"] == id && c["subject"].as_str().is_some_and(|s| s.contains(subject)))
        .collect()
}

/// The one failing check with `id` about `subject`; panics with the report otherwise.
pub fn failing<'a>(report: &'a Value, id: &str, subject: &str) -> &'a Value {
    let found: Vec<_> = checks(report, id, subject)
        .into_iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one failing {id} about {subject}:\n{report:#}"
    );
    found[0]
}

/// `(id, subject)` of every failing check.
pub fn failures(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| {
            (
                c["id"].as_str().unwrap_or("").to_string(),
                c["subject"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// `(action, kind, name)` of every change of a plan.
pub fn changes(plan: &Value) -> Vec<(String, String, String)> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap_or("").to_string(),
                c["kind"].as_str().unwrap_or("").to_string(),
                c["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The AWS calls a plan's changes stand for, sorted: the test's own reading of the documented plan
/// (one call per create, per policy or document write, per client ID added…), to compare with
/// what moto saw.
pub fn calls_of_plan(plan: &Value) -> Vec<String> {
    let mut calls = Vec::new();
    for c in plan["changes"].as_array().expect("changes") {
        let action = c["action"].as_str().expect("action");
        let diff = c["diff"].as_array().expect("diff");
        let has = |op: &str, field: &str| {
            diff.iter()
                .filter(|d| d["op"] == op && d["field"] == field)
                .count()
        };
        let values = |op: &str, field: &str| {
            diff.iter()
                .filter(|d| d["op"] == op && d["field"] == field)
                .map(|d| d["values"].as_array().map_or(0, Vec::len))
                .sum::<usize>()
        };
        let mut push = |s: &str| calls.push(s.to_string());
        match (c["kind"].as_str().expect("kind"), action) {
            ("s3-bucket", "create") => {
                push("s3:CreateBucket");
                push("s3:PutBucketTagging");
            }
            ("s3-bucket", "update") => push("s3:PutBucketTagging"),
            ("s3-public-access-block", _) => push("s3:PutPublicAccessBlock"),
            ("s3-bucket-policy", _) => push("s3:PutBucketPolicy"),
            ("s3-object", _) => push("s3:PutObject"),
            ("cloudfront-origin-access-control", _) => push("cloudfront:CreateOriginAccessControl"),
            ("cloudfront-distribution", _) => push("cloudfront:CreateDistributionWithTags"),
            ("iam-oidc-provider", "create") => push("iam:CreateOpenIDConnectProvider"),
            ("iam-oidc-provider", "update") => {
                for _ in 0..values("add", "client_ids") {
                    push("iam:AddClientIDToOpenIDConnectProvider");
                }
                if has("change", "thumbprint") > 0 {
                    push("iam:UpdateOpenIDConnectProviderThumbprint");
                }
                if has("add", "tags") > 0 {
                    push("iam:TagOpenIDConnectProvider");
                }
            }
            ("iam-role", "create") => push("iam:CreateRole"),
            ("iam-role", "update") => {
                let trust = diff.iter().any(|d| {
                    ["principals", "issuer condition keys", "subjects"]
                        .contains(&d["field"].as_str().unwrap_or(""))
                        || d["op"] == "note"
                });
                if trust {
                    push("iam:UpdateAssumeRolePolicy");
                }
                if has("add", "tags") > 0 {
                    push("iam:TagRole");
                }
                if has("change", "permissions boundary") > 0 {
                    push("iam:PutRolePermissionsBoundary");
                }
            }
            ("iam-role-policy", _) => push("iam:PutRolePolicy"),
            ("iam-role", "delete") => {
                for _ in 0..values("remove", "inline policies") {
                    push("iam:DeleteRolePolicy");
                }
                for _ in 0..values("remove", "attached policies") {
                    push("iam:DetachRolePolicy");
                }
                push("iam:DeleteRole");
            }
            other => panic!("unknown change {other:?}"),
        }
    }
    calls.sort();
    calls
}
