//! The first run without `http.api_token`: an administrator secret made once
//! and kept in `data_dir` (mode 0600), the API's bearer token from then on;
//! and each start, a one-time sign-in link for the panel, printed in the log.
use anyhow::Context;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// The file in `data_dir` holding the administrator secret.
pub const ADMIN_TOKEN_FILE: &str = "admin_token";
/// Length of a generated administrator secret (62 symbols: ~285 bits).
pub const ADMIN_TOKEN_LEN: usize = 48;
/// Shortest secret read back from the file.
const MIN_TOKEN_LEN: usize = 32;

/// The stored administrator secret, made now when absent (true: it was).
pub fn admin_secret(data_dir: &Path) -> anyhow::Result<(String, bool)> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.len() < MIN_TOKEN_LEN || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                anyhow::bail!("{}: not an administrator secret (at least {MIN_TOKEN_LEN} characters on one line); delete it to get a new one", path.display());
            }
            return Ok((token, false));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let token = crate::storage::credentials::random_secret(ADMIN_TOKEN_LEN);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&path).with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(f, "{token}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok((token, true))
}

/// The panel's address as a browser elsewhere reaches it: the HTTP listen
/// address, or `media` (the host's primary address) when that is a wildcard.
pub fn panel_url(listen: SocketAddr, media: IpAddr) -> String {
    let ip = if listen.ip().is_unspecified() { media } else { listen.ip() };
    match ip {
        IpAddr::V6(v6) => format!("http://[{v6}]:{}/", listen.port()),
        IpAddr::V4(v4) => format!("http://{v4}:{}/", listen.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_made_once_private_and_kept() {
        let dir = std::env::temp_dir().join(format!("ha-pbx-first-run-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, made) = admin_secret(&dir).unwrap();
        assert!(made);
        assert!(a.len() >= 32);
        let (b, made) = admin_secret(&dir).unwrap();
        assert!(!made);
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(ADMIN_TOKEN_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.join(ADMIN_TOKEN_FILE), "short\n").unwrap();
        let e = admin_secret(&dir).unwrap_err().to_string();
        assert!(e.contains("admin_token"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn url_names_a_reachable_address() {
        let media: IpAddr = "192.168.1.20".parse().unwrap();
        assert_eq!(panel_url("0.0.0.0:8088".parse().unwrap(), media), "http://192.168.1.20:8088/");
        assert_eq!(panel_url("127.0.0.1:9000".parse().unwrap(), media), "http://127.0.0.1:9000/");
        assert_eq!(panel_url("[::]:8088".parse().unwrap(), "::1".parse().unwrap()), "http://[::1]:8088/");
    }
}
