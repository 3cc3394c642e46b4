//! Video codecs a bridge passes through (VP8, H.264): read from the device's
//! SDP, written back into the plain SDP toward it. The RTP itself crosses
//! untouched but for the payload type, so no codec is ever decoded here.
use crate::media::sdp::{Direction, MediaKind, Sdp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoFormat {
    Vp8,
    H264,
}

/// One video format the device offered, under its own payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoCodec {
    pub device_pt: u8,
    pub format: VideoFormat,
    /// The device's fmtp, carried as is (H.264: packetization-mode,
    /// profile-level-id) so both ends describe the same stream.
    pub fmtp: Option<String>,
}

/// The device's video stream: where it is in its SDP, what it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceVideo {
    pub index: usize,
    pub codecs: Vec<VideoCodec>,
    pub direction: Direction,
}

impl VideoCodec {
    fn encoding(&self) -> &'static str {
        match self.format {
            VideoFormat::Vp8 => "VP8",
            VideoFormat::H264 => "H264",
        }
    }

    fn fmtp_value(&self, key: &str) -> Option<&str> {
        let fmtp = self.fmtp.as_deref()?;
        fmtp.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| k.trim().eq_ignore_ascii_case(key)).map(|(_, v)| v.trim())
    }

    /// (packetization-mode is 1, profile-level-id), with RFC 6184's
    /// defaults (mode 0, 420010) for what the device leaves out.
    pub fn h264_params(&self) -> (bool, u32) {
        let mode1 = self.fmtp_value("packetization-mode") == Some("1");
        let profile = self.fmtp_value("profile-level-id").and_then(|p| u32::from_str_radix(p, 16).ok()).unwrap_or(0x42_00_10);
        (mode1, profile)
    }
}

/// The VP8 and H.264 formats of the device's first video stream, in its
/// order; None when it offers no video or none of these.
pub fn offered_video(sdp: &Sdp) -> Option<DeviceVideo> {
    let index = (0..sdp.media_count()).find(|i| sdp.media(*i).is_some_and(|m| m.kind() == MediaKind::Video))?;
    let media = sdp.media(index)?;
    if media.port() == 0 {
        return None;
    }
    let codecs: Vec<VideoCodec> = media
        .payload_types()
        .into_iter()
        .filter_map(|pt| {
            let map = media.rtpmap(pt)?;
            let format = match map.encoding.to_ascii_uppercase().as_str() {
                "VP8" => VideoFormat::Vp8,
                "H264" => VideoFormat::H264,
                _ => return None,
            };
            (map.clock_rate == 90_000).then(|| VideoCodec { device_pt: pt, format, fmtp: media.fmtp(pt).map(str::to_string) })
        })
        .collect();
    (!codecs.is_empty()).then_some(DeviceVideo { index, codecs, direction: media.direction() })
}

/// The answer's direction for an offer's.
pub fn reverse(direction: Direction) -> Direction {
    match direction {
        Direction::SendOnly => Direction::RecvOnly,
        Direction::RecvOnly => Direction::SendOnly,
        d => d,
    }
}

/// A plain `m=video` section at `port`; port 0 (refused) when `codecs` is
/// empty, which still needs one format to be valid SDP.
pub fn video_section(port: u16, codecs: &[VideoCodec], direction: Direction, refused_pt: u8) -> String {
    if codecs.is_empty() {
        return format!("m=video 0 RTP/AVP {refused_pt}\r\n");
    }
    let pts: Vec<String> = codecs.iter().map(|c| c.device_pt.to_string()).collect();
    let mut text = format!("m=video {port} RTP/AVP {}\r\n", pts.join(" "));
    for c in codecs {
        let pt = c.device_pt;
        text.push_str(&format!("a=rtpmap:{pt} {}/90000\r\n", c.encoding()));
        if let Some(fmtp) = &c.fmtp {
            text.push_str(&format!("a=fmtp:{pt} {fmtp}\r\n"));
        }
        // What we forward from the browser: its keyframe requests.
        text.push_str(&format!("a=rtcp-fb:{pt} nack pli\r\na=rtcp-fb:{pt} ccm fir\r\n"));
    }
    text.push_str(&format!("a={}\r\n", direction.attribute()));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOORBELL: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
        m=video 4002 RTP/AVP 99 100 102\r\na=rtpmap:99 H264/90000\r\n\
        a=fmtp:99 packetization-mode=1;profile-level-id=42e01f\r\na=rtpmap:100 VP8/90000\r\n\
        a=rtpmap:102 H265/90000\r\na=sendonly\r\n";

    #[test]
    fn the_device_video_formats_are_read_in_its_order() {
        let video = offered_video(&Sdp::parse(DOORBELL).unwrap()).unwrap();
        assert_eq!((video.index, video.direction), (1, Direction::SendOnly));
        let formats: Vec<_> = video.codecs.iter().map(|c| (c.device_pt, c.format)).collect();
        assert_eq!(formats, [(99, VideoFormat::H264), (100, VideoFormat::Vp8)], "H.265 is not passed");
        assert_eq!(video.codecs[0].h264_params(), (true, 0x42e01f));
        assert_eq!(video.codecs[1].fmtp, None);
    }

    #[test]
    fn h264_defaults_follow_rfc_6184() {
        let c = VideoCodec { device_pt: 97, format: VideoFormat::H264, fmtp: Some("level-asymmetry-allowed=1".into()) };
        assert_eq!(c.h264_params(), (false, 0x420010));
    }

    #[test]
    fn no_video_or_a_refused_one_is_none() {
        let audio_only = DOORBELL.split("m=video").next().unwrap();
        assert!(offered_video(&Sdp::parse(audio_only).unwrap()).is_none());
        assert!(offered_video(&Sdp::parse(&DOORBELL.replace("m=video 4002", "m=video 0")).unwrap()).is_none());
    }

    #[test]
    fn the_section_toward_the_device_keeps_its_numbers_and_fmtp() {
        let video = offered_video(&Sdp::parse(DOORBELL).unwrap()).unwrap();
        let text = video_section(20004, &video.codecs, reverse(video.direction), 99);
        assert!(text.starts_with("m=video 20004 RTP/AVP 99 100\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:99 H264/90000\r\na=fmtp:99 packetization-mode=1;profile-level-id=42e01f\r\n"), "{text}");
        assert!(text.contains("a=rtcp-fb:100 nack pli\r\na=rtcp-fb:100 ccm fir\r\n"), "{text}");
        assert!(text.ends_with("a=recvonly\r\n"), "a sendonly camera gets a recvonly answer: {text}");
        assert_eq!(video_section(20004, &[], Direction::RecvOnly, 99), "m=video 0 RTP/AVP 99\r\n");
    }
}
