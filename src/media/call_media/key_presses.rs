//! A call's key presses (DTMF): RFC 4733 events from the relays and the
//! bridges merged into one stream for the call, held back from devices that
//! take SIP INFO, and our own presses sent into a device's stream.
use super::{other, BrowserLeg, CallMedia, LegMedia};
use crate::media::{Leg, Relay};
use tokio::sync::mpsc;

impl CallMedia {
    /// Key presses the device on `device_leg` sends into a browser's bridge
    /// join the call's DTMF stream.
    pub(super) fn forward_device_dtmf(&mut self, browser: &mut BrowserLeg, device_leg: Leg) {
        let Some(rx) = browser.bridge.take_dtmf_events() else { return };
        let tx = self.merged_dtmf();
        forward(rx, tx, move |digit| (device_leg, digit));
    }

    /// The stream the bridges' presses join (made once, the relay's
    /// presses forwarded into it): made before the call takes its stream
    /// when a bridge will come later (a door preview's answer).
    pub(super) fn merged_dtmf(&mut self) -> mpsc::UnboundedSender<(Leg, char)> {
        if self.browser_dtmf.is_none() {
            let (tx, merged) = mpsc::unbounded_channel();
            if let Some(relay_dtmf) = self.dtmf.replace(merged) {
                // A relay came first (a callee with browsers and SIP devices).
                forward(relay_dtmf, tx.clone(), |press| press);
            }
            self.browser_dtmf = Some(tx);
        }
        self.browser_dtmf.clone().expect("set above")
    }

    /// `leg`'s device takes key presses as SIP INFO: RFC 4733 events are
    /// held back from it (the call sends INFO for the digits detected).
    pub fn set_takes_info(&mut self, leg: Leg, on: bool) {
        self.leg_mut(leg).takes_info = on;
        for relay in self.relays.iter().flatten() {
            relay.set_hold_back_dtmf(leg, on);
        }
    }

    pub fn takes_info(&self, leg: Leg) -> bool {
        self.leg(leg).takes_info
    }

    /// A key `from` pressed as SIP INFO, sent to the device on the other leg
    /// as RFC 4733 when `from` is a browser or takes INFO and the other
    /// device takes RFC 4733. False: pass the INFO on (browser or INFO
    /// device on the other side, or one INFO-capable phone to another).
    pub fn dtmf_to_device(&self, from: Leg, digit: char) -> bool {
        let to = other(from);
        if self.leg(to).takes_info {
            return false;
        }
        let (sender, receiver) = (self.leg(from), self.leg(to));
        match (sender.browser(), receiver.browser()) {
            (Some(b), None) => {
                b.bridge.send_dtmf(digit);
                true
            }
            // INFO from a browser behind the relay, or from an INFO device.
            (None, None) if sender.takes_info || matches!(sender.media, LegMedia::BrowserBehindRelay(_)) => {
                let relay = self.relays.first().and_then(Option::as_ref);
                match (relay, receiver.event_pt) {
                    (Some(relay), Some(pt)) => {
                        relay.send_dtmf(to, pt, digit);
                        true
                    }
                    _ => {
                        tracing::info!(%digit, "the other device negotiated no telephone-event: key passed on as INFO");
                        false
                    }
                }
            }
            _ => false,
        }
    }

    /// Key presses of our own (a command: Home Assistant's "Open door", the
    /// API) for `to`'s device, as RFC 4733 events in the stream it receives.
    /// False, and nothing sent: it takes them as SIP INFO instead (its `dtmf`
    /// setting, a browser, or no telephone-event negotiated).
    pub fn send_keys_to(&self, to: Leg, digits: &str) -> bool {
        let receiver = self.leg(to);
        if receiver.takes_info || !matches!(receiver.media, LegMedia::Relayed) {
            return false;
        }
        // A device facing a browser's bridge hears the bridge's stream.
        if let Some(b) = self.leg(other(to)).browser() {
            digits.chars().for_each(|d| b.bridge.send_dtmf(d));
            return true;
        }
        match (self.relays.first().and_then(Option::as_ref), receiver.event_pt) {
            (Some(relay), Some(pt)) => {
                digits.chars().for_each(|d| relay.send_dtmf(to, pt, d));
                true
            }
            _ => false,
        }
    }

    /// The (leg, digit) stream of RFC 4733 key presses, once.
    pub fn take_dtmf_events(&mut self) -> Option<mpsc::UnboundedReceiver<(Leg, char)>> {
        self.dtmf.take()
    }


    /// A new relay's key presses: the call's stream if it has none yet; a
    /// bridge came first (its browser left by transfer) — the merged stream
    /// the call reads, which the relay's presses join.
    pub(super) fn take_relay_dtmf(&mut self, relay: &mut Relay) {
        match &self.browser_dtmf {
            Some(tx) => {
                if let Some(rx) = relay.take_dtmf_events() {
                    forward(rx, tx.clone(), |press| press);
                }
            }
            None if self.dtmf.is_none() => self.dtmf = relay.take_dtmf_events(),
            None => {}
        }
    }
}

/// Presses from `rx` passed on to `tx`, as `map` makes them, until either side closes.
fn forward<T: Send + 'static>(mut rx: mpsc::UnboundedReceiver<T>, tx: mpsc::UnboundedSender<(Leg, char)>, map: impl Fn(T) -> (Leg, char) + Send + 'static) {
    tokio::spawn(async move {
        while let Some(press) = rx.recv().await {
            if tx.send(map(press)).is_err() {
                break;
            }
        }
    });
}
