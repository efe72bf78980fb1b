//! A throw-away Kubernetes control plane (etcd + kube-apiserver) for
//! integration tests.
//!
//! Binaries come from `tools/kube/build.sh` (built from Go modules into a cache
//! outside `target/`, only when the pin changes) or from `$CCO_KUBE_BIN_DIR`.
//! Both processes run as children of the test process on free loopback ports
//! inside a [`tempfile::TempDir`], with real TLS (CA generated with `rcgen`),
//! RBAC, the default admission chain and service-account token signing with a
//! caller-supplied key/issuer. Children are killed on [`Drop`]; a tiny
//! watchdog shell also kills them if the test process dies without dropping.
//!
//! Set `CCO_KUBE_KEEP=1` to keep the work dir (logs, certs, kubeconfig).

use std::fmt::Write as _;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// Field manager used for server-side apply by this module.
pub const FIELD_MANAGER: &str = "cco-testsupport";

/// Options for [`KubeEnv::start`].
#[derive(Debug, Clone)]
pub struct KubeEnvOptions {
    /// PEM RSA private key (PKCS#1 or PKCS#8) used by the apiserver to sign
    /// service-account tokens. Generated (RSA-2048) into the work dir if `None`.
    pub sa_signing_key: Option<PathBuf>,
    /// PEM public key(s) used to verify service-account tokens. Defaults to
    /// the signing key (the apiserver derives the public half).
    pub sa_public_key: Option<PathBuf>,
    /// `--service-account-issuer`.
    pub sa_issuer: String,
    /// `--api-audiences`; defaults to `[sa_issuer]` when empty.
    pub api_audiences: Vec<String>,
    /// Extra kube-apiserver flags (e.g. `--feature-gates=...`).
    pub extra_apiserver_args: Vec<String>,
    /// How long to wait for `/readyz`.
    pub ready_timeout: Duration,
}

impl Default for KubeEnvOptions {
    fn default() -> Self {
        Self {
            sa_signing_key: None,
            sa_public_key: None,
            sa_issuer: "https://kubernetes.default.svc".to_string(),
            api_audiences: Vec::new(),
            extra_apiserver_args: Vec::new(),
            ready_timeout: Duration::from_secs(120),
        }
    }
}

/// A running etcd + kube-apiserver pair. Dropping it stops both.
pub struct KubeEnv {
    // Field order matters for Drop: children are killed in `Drop::drop`, the
    // directory is removed afterwards when `dir` is dropped.
    apiserver: Child,
    etcd: Child,
    watchdog: Option<Child>,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    server_url: String,
    ca_pem: String,
    admin_token: String,
    sa_signing_key: PathBuf,
    sa_issuer: String,
}

/// Root of the cco-rs repository (the directory holding the workspace Cargo.toml).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| manifest.join("../.."))
}

/// `<repo>/../shared/corpus/crds`.
pub fn corpus_crds_dir() -> PathBuf {
    repo_root().join("../shared/corpus/crds")
}

/// Install the aws-lc-rs rustls crypto provider as process default (no-op if
/// some provider is already installed). Needed before building kube clients.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Directory holding `kube-apiserver` and `etcd`: `$CCO_KUBE_BIN_DIR`, or the
/// last stdout line of `tools/kube/build.sh` (which builds on first use; this
/// can take several minutes cold). Memoised per process.
pub fn kube_bin_dir() -> Result<PathBuf> {
    static DIR: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| resolve_bin_dir().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn resolve_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CCO_KUBE_BIN_DIR") {
        let dir = PathBuf::from(dir);
        check_bins(&dir)?;
        return Ok(dir);
    }
    let script = repo_root().join("tools/kube/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed with {}", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| anyhow!("{} printed nothing", script.display()))?;
    let dir = PathBuf::from(last.trim());
    check_bins(&dir)?;
    Ok(dir)
}

fn check_bins(dir: &Path) -> Result<()> {
    for b in ["kube-apiserver", "etcd"] {
        if !dir.join(b).is_file() {
            bail!("{} not found in {}", b, dir.display());
        }
    }
    Ok(())
}

struct Pki {
    ca_pem: String,
    ca: PathBuf,
    serving_crt: PathBuf,
    serving_key: PathBuf,
    admin_crt_pem: String,
    admin_key_pem: String,
    tokens: PathBuf,
    token: String,
}

fn random_hex(n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

fn gen_pki(dir: &Path) -> Result<Pki> {
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki)?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cco-test-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let ca_pem = ca.pem();

    let mut serving = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
    ])?;
    serving.distinguished_name = DistinguishedName::new();
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    serving.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_key = KeyPair::generate()?;
    let serving_cert = serving.signed_by(&serving_key, &ca)?;

    let mut admin = CertificateParams::new(Vec::<String>::new())?;
    admin.distinguished_name = DistinguishedName::new();
    admin
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    admin
        .distinguished_name
        .push(DnType::CommonName, "cco-admin");
    admin.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_key = KeyPair::generate()?;
    let admin_cert = admin.signed_by(&admin_key, &ca)?;

    let token = random_hex(24)?;
    let p = |n: &str| pki.join(n);
    write_file(&p("ca.crt"), &ca_pem)?;
    write_file(&p("serving.crt"), serving_cert.pem())?;
    write_file(&p("serving.key"), serving_key.serialize_pem())?;
    write_file(&p("admin.crt"), admin_cert.pem())?;
    write_file(&p("admin.key"), admin_key.serialize_pem())?;
    write_file(
        &p("tokens.csv"),
        format!("{token},cco-admin-token,cco-admin-token-uid,\"system:masters\"\n"),
    )?;
    Ok(Pki {
        ca_pem,
        ca: p("ca.crt"),
        serving_crt: p("serving.crt"),
        serving_key: p("serving.key"),
        admin_crt_pem: admin_cert.pem(),
        admin_key_pem: admin_key.serialize_pem(),
        tokens: p("tokens.csv"),
        token,
    })
}

/// Reserve `n` distinct free loopback ports (released before returning, so a
/// small race remains; `start` retries on bind failures).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn log_tail(path: &Path, lines: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn spawn_logged(mut cmd: Command, log: &Path) -> Result<Child> {
    let f = std::fs::File::create(log)?;
    cmd.stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .spawn()
        .with_context(|| format!("spawning {:?}", cmd.get_program()))
}

fn kill_child(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

impl KubeEnv {
    /// Build/find the binaries, start etcd + kube-apiserver and wait until
    /// `/readyz` succeeds.
    pub async fn start(opts: KubeEnvOptions) -> Result<KubeEnv> {
        install_crypto_provider();
        let bin = tokio::task::spawn_blocking(kube_bin_dir).await??;
        let mut last_err = None;
        for attempt in 0..3 {
            match Self::start_once(&bin, &opts).await {
                Ok(env) => return Ok(env),
                Err(e) => {
                    let retry = format!("{e:#}").contains("address already in use");
                    last_err = Some(e);
                    if !retry || attempt == 2 {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("KubeEnv::start failed")))
    }

    async fn start_once(bin: &Path, opts: &KubeEnvOptions) -> Result<KubeEnv> {
        let tmp = tempfile::Builder::new().prefix("cco-kube-").tempdir()?;
        let dir = tmp.path().to_path_buf();
        let pki = gen_pki(&dir)?;

        let sa_signing_key = match &opts.sa_signing_key {
            Some(p) => p.clone(),
            None => {
                let kp =
                    KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
                let p = dir.join("pki/sa.key");
                write_file(&p, kp.serialize_pem())?;
                p
            }
        };
        let sa_public_key = opts
            .sa_public_key
            .clone()
            .unwrap_or_else(|| sa_signing_key.clone());
        let audiences = if opts.api_audiences.is_empty() {
            opts.sa_issuer.clone()
        } else {
            opts.api_audiences.join(",")
        };

        let ports = free_ports(3)?;
        let (etcd_port, peer_port, api_port) = (ports[0], ports[1], ports[2]);
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let server_url = format!("https://127.0.0.1:{api_port}");

        let mut etcd_cmd = Command::new(bin.join("etcd"));
        etcd_cmd.args([
            "--name=default".to_string(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            "--unsafe-no-fsync=true".to_string(),
            "--quota-backend-bytes=1073741824".to_string(),
            "--log-level=warn".to_string(),
        ]);
        let etcd_log = dir.join("etcd.log");
        let mut etcd = spawn_logged(etcd_cmd, &etcd_log)?;

        let mut api_cmd = Command::new(bin.join("kube-apiserver"));
        api_cmd
            .args([
                "--bind-address=127.0.0.1".to_string(),
                "--advertise-address=127.0.0.1".to_string(),
                format!("--secure-port={api_port}"),
                format!("--cert-dir={}", dir.join("apiserver-certs").display()),
                format!("--tls-cert-file={}", pki.serving_crt.display()),
                format!("--tls-private-key-file={}", pki.serving_key.display()),
                format!("--client-ca-file={}", pki.ca.display()),
                format!("--token-auth-file={}", pki.tokens.display()),
                format!("--etcd-servers={etcd_url}"),
                "--authorization-mode=RBAC".to_string(),
                format!("--service-account-issuer={}", opts.sa_issuer),
                format!("--api-audiences={audiences}"),
                format!(
                    "--service-account-signing-key-file={}",
                    sa_signing_key.display()
                ),
                format!("--service-account-key-file={}", sa_public_key.display()),
                "--service-cluster-ip-range=10.0.0.0/24".to_string(),
                "--allow-privileged=true".to_string(),
                "--profiling=false".to_string(),
                "--enable-priority-and-fairness=false".to_string(),
            ])
            .args(&opts.extra_apiserver_args);
        let api_log = dir.join("kube-apiserver.log");
        let apiserver = match spawn_logged(api_cmd, &api_log) {
            Ok(c) => c,
            Err(e) => {
                kill_child(&mut etcd);
                return Err(e);
            }
        };

        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null; do sleep 1; done; kill -9 {} {} 2>/dev/null",
                std::process::id(),
                apiserver.id(),
                etcd.id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();

        let mut env = KubeEnv {
            apiserver,
            etcd,
            watchdog,
            dir: Some(tmp),
            dir_path: dir.clone(),
            server_url,
            ca_pem: pki.ca_pem.clone(),
            admin_token: pki.token.clone(),
            sa_signing_key,
            sa_issuer: opts.sa_issuer.clone(),
        };
        env.write_kubeconfig(&pki)?;
        env.wait_ready(opts.ready_timeout).await?;
        Ok(env)
    }

    fn write_kubeconfig(&self, pki: &Pki) -> Result<()> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let kc = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: cco-test\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: cco-admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n- name: cco-admin-token\n  user:\n    token: {}\ncontexts:\n- name: cco-test\n  context:\n    cluster: cco-test\n    user: cco-admin\n- name: cco-test-token\n  context:\n    cluster: cco-test\n    user: cco-admin-token\ncurrent-context: cco-test\n",
            self.server_url,
            b64(&pki.ca_pem),
            b64(&pki.admin_crt_pem),
            b64(&pki.admin_key_pem),
            pki.token,
        );
        write_file(&self.kubeconfig_path(), kc)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let client = self.client().await?;
        let deadline = Instant::now() + timeout;
        let api_log = self.dir_path.join("kube-apiserver.log");
        loop {
            if let Some(st) = self.apiserver.try_wait()? {
                bail!(
                    "kube-apiserver exited ({st}) before becoming ready:\n{}",
                    log_tail(&api_log, 40)
                );
            }
            if let Some(st) = self.etcd.try_wait()? {
                bail!(
                    "etcd exited ({st}):\n{}",
                    log_tail(&self.dir_path.join("etcd.log"), 40)
                );
            }
            let req = http::Request::get("/readyz").body(Vec::new())?;
            let last = match client.request_text(req).await {
                Ok(body) if body.trim() == "ok" => return Ok(()),
                Ok(body) => body,
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver not ready after {timeout:?} (last: {last}); log tail:\n{}",
                    log_tail(&api_log, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Work directory (logs, `pki/`, `kubeconfig`).
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }
    /// Admin kubeconfig (client-cert user in `system:masters`; context
    /// `cco-test-token` uses the static bearer token instead).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir_path.join("kubeconfig")
    }
    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }
    /// PEM of the CA that signed the serving and admin client certificates.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
    pub fn ca_path(&self) -> PathBuf {
        self.dir_path.join("pki/ca.crt")
    }
    /// Static bearer token of a `system:masters` user.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }
    /// Admin client certificate / key (PEM, PKCS#8 key).
    pub fn admin_cert_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.dir_path.join("pki/admin.crt"),
            self.dir_path.join("pki/admin.key"),
        )
    }
    pub fn sa_signing_key_path(&self) -> &Path {
        &self.sa_signing_key
    }
    pub fn sa_issuer(&self) -> &str {
        &self.sa_issuer
    }

    /// kube client configuration for the admin kubeconfig.
    pub async fn config(&self) -> Result<Config> {
        install_crypto_provider();
        let kc = Kubeconfig::read_from(self.kubeconfig_path())?;
        Ok(Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?)
    }

    /// An admin kube client.
    pub async fn client(&self) -> Result<Client> {
        Ok(Client::try_from(self.config().await?)?)
    }

    /// Server-side apply every `*.yaml`/`*.yml` in [`corpus_crds_dir`] and wait
    /// for the CRDs to be Established. Returns the CRD names.
    pub async fn install_corpus_crds(&self) -> Result<Vec<String>> {
        install_manifests_dir(&self.client().await?, &corpus_crds_dir()).await
    }

    /// Like [`Self::install_corpus_crds`] for any directory.
    pub async fn install_manifests_dir(&self, dir: &Path) -> Result<Vec<String>> {
        install_manifests_dir(&self.client().await?, dir).await
    }
}

impl Drop for KubeEnv {
    fn drop(&mut self) {
        kill_child(&mut self.apiserver);
        kill_child(&mut self.etcd);
        if let Some(w) = self.watchdog.as_mut() {
            kill_child(w);
        }
        if std::env::var_os("CCO_KUBE_KEEP").is_some_and(|v| v == "1") {
            if let Some(d) = self.dir.take() {
                let p = d.keep();
                eprintln!("kube_env: keeping {}", p.display());
            }
        }
    }
}

/// Parse all YAML documents in a string into objects (empty docs skipped).
pub fn parse_manifests(yaml: &str) -> Result<Vec<DynamicObject>> {
    use serde::Deserialize as _;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v = serde_yaml::Value::deserialize(doc)?;
        if v.is_null() {
            continue;
        }
        let json = serde_json::to_value(v)?;
        if json.get("kind").is_none() {
            continue;
        }
        out.push(serde_json::from_value(json)?);
    }
    Ok(out)
}

/// Server-side apply every `*.yaml`/`*.yml` file in `dir` (sorted by name),
/// then wait for every CustomResourceDefinition among them to be Established.
/// Returns the names of the CRDs applied.
pub async fn install_manifests_dir(client: &Client, dir: &Path) -> Result<Vec<String>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut objs = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f)?;
        objs.extend(parse_manifests(&text).with_context(|| format!("parsing {}", f.display()))?);
    }
    apply_objects(client, objs).await
}

/// Server-side apply the objects (CRDs first), wait for CRDs Established and
/// return their names.
pub async fn apply_objects(client: &Client, mut objs: Vec<DynamicObject>) -> Result<Vec<String>> {
    let is_crd = |o: &DynamicObject| {
        o.types
            .as_ref()
            .is_some_and(|t| t.kind == "CustomResourceDefinition")
    };
    objs.sort_by_key(|o| !is_crd(o));
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let mut crds = Vec::new();
    for mut obj in objs {
        let types = obj
            .types
            .clone()
            .ok_or_else(|| anyhow!("manifest without apiVersion/kind"))?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let name = obj
            .metadata
            .name
            .clone()
            .ok_or_else(|| anyhow!("{} without metadata.name", types.kind))?;
        obj.metadata.resource_version = None;
        obj.metadata.uid = None;
        obj.metadata.creation_timestamp = None;
        obj.metadata.managed_fields = None;
        let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .with_context(|| format!("discovering {gvk:?}"))?;
        let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
            let ns = obj
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string());
            Api::namespaced_with(client.clone(), &ns, &ar)
        } else {
            Api::all_with(client.clone(), &ar)
        };
        api.patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .with_context(|| format!("applying {} {name}", types.kind))?;
        if types.kind == "CustomResourceDefinition" {
            crds.push(name);
        }
    }
    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in &crds {
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(crd_api.clone(), name, conditions::is_crd_established()),
        )
        .await
        .map_err(|_| anyhow!("CRD {name} not Established within 60s"))??;
    }
    Ok(crds)
}
