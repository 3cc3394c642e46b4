//! The credential kept for an extension: HA1 = H(user:realm:password) per
//! digest algorithm (RFC 2617 MD5, RFC 8760 SHA-256), never the password.
//! The SIP digest check (`sip/auth/digest.rs`) verifies responses against it.
use md5::{Digest as _, Md5};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "SHA-256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }
    pub(crate) fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

/// HA1 = H(user:realm:password) of one extension, per algorithm: what the
/// PBX keeps instead of the password (`None`: not known for that algorithm).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ha1 {
    pub md5: Option<String>,
    pub sha256: Option<String>,
}

impl Ha1 {
    /// Both algorithms' HA1 of `password`.
    pub fn from_password(user: &str, realm: &str, password: &str) -> Ha1 {
        Ha1 {
            md5: Some(ha1(Algorithm::Md5, user, realm, password)),
            sha256: Some(ha1(Algorithm::Sha256, user, realm, password)),
        }
    }
    pub fn get(&self, alg: Algorithm) -> Option<&str> {
        match alg {
            Algorithm::Md5 => self.md5.as_deref(),
            Algorithm::Sha256 => self.sha256.as_deref(),
        }
    }
}

/// H(user:realm:password), lower-case hex.
pub fn ha1(alg: Algorithm, user: &str, realm: &str, password: &str) -> String {
    alg.hash(&format!("{user}:{realm}:{password}"))
}

/// A random secret of `len` letters and digits (62 symbols, ~5.95 bits each).
pub fn random_secret(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        // 248 = 4 * 62: reject the rest so every symbol is equally likely
        let b = rand::random::<u8>();
        if b < 248 {
            out.push(ALPHABET[(b % 62) as usize] as char);
        }
    }
    out
}
