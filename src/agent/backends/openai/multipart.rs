//! multipart/form-data bodies (RFC 7578) for file uploads.

pub struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Multipart {
    pub fn new() -> Multipart {
        // random so no part's content can contain it by chance
        let boundary = format!("ha-pbx-{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>());
        Multipart { boundary, body: Vec::new() }
    }

    pub fn text(mut self, name: &str, value: &str) -> Multipart {
        self.body.extend_from_slice(format!("--{}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n", self.boundary, quote(name)).as_bytes());
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self
    }

    pub fn file(mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Multipart {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
                self.boundary,
                quote(name),
                quote(filename)
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// The Content-Type header and the body.
    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body.extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (format!("multipart/form-data; boundary={}", self.boundary), self.body)
    }
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

/// Names are ours, but keep a quote or line break from breaking the header.
fn quote(s: &str) -> String {
    s.replace(['"', '\r', '\n'], "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_boundary() {
        let (ct, body) = Multipart::new().text("model", "whisper-1").file("file", "a\".wav", "audio/wav", b"RIFF\x00\x01").finish();
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let body = String::from_utf8_lossy(&body).into_owned();
        let expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a_.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\u{0}\u{1}\r\n\
             --{b}--\r\n",
            b = boundary
        );
        assert_eq!(body, expected);
        assert_ne!(Multipart::new().finish().0, ct, "boundaries differ per body");
    }
}
