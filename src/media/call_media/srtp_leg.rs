//! SDES-SRTP on one leg of a call (a trunk's, `srtp: optional | mandatory`):
//! the keys read from its device's `a=crypto`, ours written into the SDP it
//! receives, and both handed to the stream's relay. The other leg never
//! sees `a=crypto`: it stays plain RTP.
//!
//! Offer or answer is told by what this leg last did: after we offered to
//! its device, its next SDP answers; otherwise its SDP is an offer, and the
//! next SDP toward it answers that.

use crate::config::SrtpMode;
use crate::media::sdp::{Crypto, Offered, Sdp};
use crate::media::srtp::{SrtpKey, SrtpKeys, Suite};
use crate::media::{Leg, Relay};

/// The tag and suite we offer (and, on an answer, the device must take).
const OUR_TAG: u32 = 1;
const OUR_SUITE: Suite = Suite::AesCm128HmacSha1_80;

/// Where one stream's SDES exchange with the device stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Pending {
    #[default]
    Nothing,
    /// We offered our key with [`OUR_TAG`]: the device's next SDP answers.
    WeOffered,
    /// The device offered: answer with this tag and suite, in SAVP or not.
    Answer { tag: u32, suite: Suite, savp: bool },
    /// The device offered plain RTP (`optional` only): answer plain.
    AnswerPlain,
}

#[derive(Default)]
struct Stream {
    pending: Pending,
    /// Our key toward the device, fresh per call (and per suite).
    ours: Option<SrtpKey>,
}

impl Stream {
    fn our_key(&mut self, suite: Suite) -> SrtpKey {
        match &self.ours {
            Some(k) if k.suite == suite => k.clone(),
            _ => self.ours.insert(SrtpKey::random(suite)).clone(),
        }
    }
}

#[derive(Default)]
pub(super) struct SrtpLegState {
    mode: SrtpMode,
    streams: Vec<Stream>,
}

impl SrtpLegState {
    pub(super) fn set_mode(&mut self, mode: SrtpMode) {
        self.mode = mode;
    }

    pub(super) fn mode(&self) -> SrtpMode {
        self.mode
    }

    pub(super) fn is_on(&self) -> bool {
        self.mode != SrtpMode::Off
    }

    fn stream(&mut self, idx: usize) -> &mut Stream {
        if self.streams.len() <= idx {
            self.streams.resize_with(idx + 1, Stream::default);
        }
        &mut self.streams[idx]
    }

    /// SDP that this leg's device sent: its keys go to the relays (`leg`
    /// is this leg), and its `a=crypto` lines leave the SDP, which goes on
    /// to the plain side as RTP/AVP. Err: nothing usable (a 488).
    pub(super) fn device_sent(&mut self, leg: Leg, sdp: &mut Sdp, relays: &[Option<Relay>]) -> anyhow::Result<()> {
        let mandatory = self.mode == SrtpMode::Mandatory;
        for idx in 0..sdp.media_count() {
            let plain = plain_proto(sdp.media(idx).expect("idx < media_count").proto());
            let Some(relay) = relays.get(idx).and_then(Option::as_ref).filter(|_| sdp.media_port(idx) != 0) else {
                sdp.set_crypto(idx, &plain, &[]);
                continue;
            };
            let media = sdp.media(idx).expect("idx < media_count");
            let (offered, savp) = (media.offered_crypto(), media.is_savp());
            let stream = self.stream(idx);
            let answering = stream.pending == Pending::WeOffered;
            stream.pending = Pending::Nothing;
            match offered {
                Offered::Unusable(why) => anyhow::bail!("stream {idx}: a=crypto: {why}"),
                Offered::Usable(c) if answering && (c.tag != OUR_TAG || c.key.suite != OUR_SUITE) => {
                    anyhow::bail!("stream {idx}: the a=crypto answer has tag {} {}, we offered {OUR_TAG} {}", c.tag, c.key.suite.name(), OUR_SUITE.name())
                }
                Offered::Usable(c) => {
                    let send = stream.our_key(c.key.suite);
                    if !answering {
                        stream.pending = Pending::Answer { tag: c.tag, suite: c.key.suite, savp: savp || mandatory };
                    }
                    relay.set_srtp(leg, Some(SrtpKeys { send, receive: c.key }));
                }
                Offered::None if savp => anyhow::bail!("stream {idx}: {} without a=crypto (only SDES keys are supported)", media.proto()),
                Offered::None if mandatory => anyhow::bail!("stream {idx}: plain RTP, but this trunk has srtp: mandatory"),
                Offered::None => {
                    if !answering {
                        stream.pending = Pending::AnswerPlain;
                    }
                    relay.set_srtp(leg, None);
                }
            }
            sdp.set_crypto(idx, &plain, &[]);
        }
        Ok(())
    }

    /// SDP going to this leg's device (from the plain side, relay ports
    /// already in `ports`): our key, as an offer or as the answer to its offer.
    pub(super) fn toward_device(&mut self, sdp: &mut Sdp, ports: &[Option<u16>]) {
        let mandatory = self.mode == SrtpMode::Mandatory;
        for (idx, port) in ports.iter().enumerate() {
            if port.is_none() {
                continue;
            }
            let proto = sdp.media(idx).map(|m| m.proto().to_string()).unwrap_or_default();
            let (avp, savp) = (plain_proto(&proto), secure_proto(&proto));
            let stream = self.stream(idx);
            // An answer given stays the answer (a 183 and its 200 repeat it)
            // until the device's next SDP.
            match stream.pending.clone() {
                Pending::Answer { tag, suite, savp: secure } => {
                    let key = stream.our_key(suite);
                    sdp.set_crypto(idx, if secure { &savp } else { &avp }, &[Crypto { tag, key }]);
                }
                Pending::AnswerPlain => sdp.set_crypto(idx, &avp, &[]),
                Pending::Nothing | Pending::WeOffered => {
                    let key = stream.our_key(OUR_SUITE);
                    stream.pending = Pending::WeOffered;
                    sdp.set_crypto(idx, if mandatory { &savp } else { &avp }, &[Crypto { tag: OUR_TAG, key }]);
                }
            }
        }
    }
}

/// `RTP/SAVP` → `RTP/AVP`, `RTP/SAVPF` → `RTP/AVPF`; others as they are.
fn plain_proto(proto: &str) -> String {
    match proto {
        "RTP/SAVP" => "RTP/AVP".into(),
        "RTP/SAVPF" => "RTP/AVPF".into(),
        p => p.into(),
    }
}

fn secure_proto(proto: &str) -> String {
    match proto {
        "RTP/AVP" => "RTP/SAVP".into(),
        "RTP/AVPF" => "RTP/SAVPF".into(),
        p => p.into(),
    }
}

impl super::CallMedia {
    /// `leg` is a trunk's with `srtp:` optional or mandatory: SDP toward it
    /// carries our SDES key, its keys go to the relay, and the other leg
    /// sees plain RTP. Set before the first SDP of that leg is translated.
    pub fn set_srtp(&mut self, leg: Leg, mode: SrtpMode) {
        let state = self.leg_mut(leg);
        state.srtp = SrtpLegState::default();
        state.srtp.set_mode(mode);
    }

    /// The callee leg now goes out over a trunk whose `srtp:` is `mode`
    /// (a forward or a group's fallback to a number outside, the route's
    /// next trunk), after the call's first offer went elsewhere: whatever
    /// the leg's last device negotiated goes (its keys on the relays, its
    /// SDP), and the caller's last SDP is offered anew: plain for `off`,
    /// with a fresh key of ours (RTP/SAVP for `mandatory`) otherwise.
    pub async fn offer_to_trunk(&mut self, caller: Leg, mode: SrtpMode) -> anyhow::Result<Vec<u8>> {
        let callee = caller.other();
        self.set_srtp(callee, mode);
        for relay in self.relays.iter().flatten() {
            relay.set_srtp(callee, None);
        }
        let state = self.leg_mut(callee);
        state.last_sdp = None;
        state.event_pt = None;
        self.callee_plain_offer(caller).await
    }
}

#[cfg(test)]
#[path = "srtp_leg_tests.rs"]
mod tests;
