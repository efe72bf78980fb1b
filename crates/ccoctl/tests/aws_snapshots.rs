//! The reference formats of `ccoctl aws`, pinned: every file a dry run writes for the AWS corpus
//! (names, modes, bytes), public and private-bucket variants, for `create-all`,
//! `create-identity-provider` and `create-iam-roles`. A change to any byte shows up as a snapshot
//! diff (`cargo insta review`). The signing key is a fixed test key, so the JWKS is stable too.

use crate::common;
use crate::snapshot;

use std::path::{Path, PathBuf};

use common::*;

/// The output directory as one reviewable text; the manifests directory must be private.
fn listing(out: &Path) -> String {
    assert_eq!(mode(&out.join("manifests")), 0o700);
    snapshot::render_dir(out, &[], &|t| t.to_string())
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn public_key() -> PathBuf {
    snapshot::fixture_public_key()
}

fn dry(args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--output-dir", s(&out), "--dry-run"]);
    // No emulator: a dry run that called AWS would fail against the closed port.
    ok(&ccoctl(None, &all));
    (tmp, out)
}

#[test]
fn create_all_dry_run_public_bucket() {
    let (corpus, key) = (corpus("aws"), public_key());
    let (_tmp, out) = dry(&[
        "aws",
        "create-all",
        "--name",
        "snap",
        "--region",
        "us-east-2",
        "--credentials-requests-dir",
        s(&corpus),
        "--public-key-file",
        s(&key),
    ]);
    insta::assert_snapshot!(listing(&out));
}

#[test]
fn create_all_dry_run_private_bucket() {
    let (corpus, key) = (corpus("aws"), public_key());
    let (_tmp, out) = dry(&[
        "aws",
        "create-all",
        "--name",
        "snap",
        "--region",
        "us-east-1",
        "--create-private-s3-bucket",
        "--credentials-requests-dir",
        s(&corpus),
        "--public-key-file",
        s(&key),
    ]);
    insta::assert_snapshot!(listing(&out));
}

#[test]
fn create_identity_provider_dry_run_public_bucket_us_east_1() {
    let key = public_key();
    let (_tmp, out) = dry(&[
        "aws",
        "create-identity-provider",
        "--name",
        "snap",
        "--region",
        "us-east-1",
        "--public-key-file",
        s(&key),
    ]);
    insta::assert_snapshot!(listing(&out));
}

#[test]
fn create_iam_roles_dry_run_with_boundary() {
    let corpus = corpus("aws");
    let (_tmp, out) = dry(&[
        "aws",
        "create-iam-roles",
        "--name",
        "snap",
        "--identity-provider-arn",
        "arn:aws:iam::123456789012:oidc-provider/snap-oidc.s3.us-east-1.amazonaws.com",
        "--permissions-boundary-arn",
        "arn:aws:iam::123456789012:policy/boundary",
        "--credentials-requests-dir",
        s(&corpus),
    ]);
    insta::assert_snapshot!(listing(&out));
}
