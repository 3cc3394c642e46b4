//! The TLS pair: from `sip.tls`, or a self-signed one made on first start.
use crate::config::Config;
use anyhow::{anyhow, Context};
use std::path::PathBuf;

pub fn load_or_create(config: &Config) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    if let Some(tls) = &config.sip.tls {
        let cert = std::fs::read(&tls.cert).with_context(|| format!("sip.tls.cert: cannot read {}", tls.cert.display()))?;
        let key = std::fs::read(&tls.key).with_context(|| format!("sip.tls.key: cannot read {}", tls.key.display()))?;
        return Ok((cert, key));
    }
    let (cert_path, key_path) = default_paths(config);
    if cert_path.exists() && key_path.exists() {
        return Ok((std::fs::read(&cert_path)?, std::fs::read(&key_path)?));
    }
    let advertised = config.sip.advertised_ip(&config.rtp).to_string();
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "ha-pbx".to_string()];
    if !names.contains(&advertised) {
        names.push(advertised);
    }
    let pair = rcgen::generate_simple_self_signed(names).map_err(|e| anyhow!("cannot make a TLS certificate: {e}"))?;
    let (cert, key) = (pair.cert.pem(), pair.signing_key.serialize_pem());
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&cert_path, &cert).with_context(|| format!("cannot write {}", cert_path.display()))?;
    write_private(&key_path, key.as_bytes())?;
    tracing::info!("made a self-signed TLS certificate: {}", cert_path.display());
    Ok((cert.into_bytes(), key.into_bytes()))
}

fn default_paths(config: &Config) -> (PathBuf, PathBuf) {
    let dir = config.data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

fn write_private(path: &std::path::Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}
