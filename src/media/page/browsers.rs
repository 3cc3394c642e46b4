//! Page listeners that are browsers (the panel's phone, the SIP Core card).
//! Such a listener gets a WebRTC bridge of its own, the one every browser
//! leg of a call uses ([`BrowserLeg`]): the bridge's plain side is the
//! page's "device" (it is offered the listener's port, as a SIP phone is),
//! its WebRTC side is what the browser is offered. The caller's RTP goes
//! from the listener's port to the bridge, which passes G.711 on to the
//! browser; what the browser sends comes back to the listener's port, where
//! the fan-out never reads it, so nothing reaches the caller.
//!
//! Bounded as the listeners are: one bridge per listener, at most the
//! page's cap. Dropping the page (or removing the listener) ends the bridge.
use super::PageMedia;
use crate::media::call_media::BrowserLeg;

impl PageMedia {
    /// Listener `id` is a browser: `plain_offer` (our offer to it, naming
    /// its port) turned into a WebRTC offer on a new bridge.
    pub async fn browser_offer(&mut self, id: usize, plain_offer: &str, session_id: u64) -> anyhow::Result<Vec<u8>> {
        if !self.ports.contains_key(&id) {
            anyhow::bail!("listener {id} is not on the page");
        }
        let mut leg = BrowserLeg::new(&self.engine, session_id).await?;
        let offer = leg.sdp_from_device(plain_offer).await?;
        self.browsers.insert(id, leg);
        Ok(offer)
    }

    pub fn is_browser(&self, id: usize) -> bool {
        self.browsers.contains_key(&id)
    }

    /// The browser's SDP (its answer, or a re-offer) as plain SDP naming its
    /// bridge: [`super::listener_target`] and [`super::listener_answer`] read it.
    pub async fn from_browser(&mut self, id: usize, sdp: &[u8]) -> anyhow::Result<Vec<u8>> {
        let engine = self.engine.clone();
        let leg = self.browsers.get_mut(&id).ok_or_else(|| anyhow::anyhow!("listener {id} is not a browser"))?;
        let text = std::str::from_utf8(sdp).map_err(|_| anyhow::anyhow!("SDP is not UTF-8"))?;
        leg.sdp_from_browser(&engine, text).await
    }

    /// The browser's early answer (door preview): from now on it receives
    /// only, its bridge holding back what it sends (`BrowserLeg::preview_from_browser`).
    pub async fn preview_from_browser(&mut self, engine: &crate::media::MediaEngine, id: usize, text: &str) -> anyhow::Result<Vec<u8>> {
        let leg = self.browsers.get_mut(&id).ok_or_else(|| anyhow::anyhow!("listener {id} is not a browser"))?;
        leg.preview_from_browser(engine, text).await
    }

    /// Listener `id` leaves the page, its bridge kept for the caller (it
    /// answered a door preview).
    pub fn take_browser(&mut self, id: usize) -> Option<BrowserLeg> {
        let leg = self.browsers.remove(&id);
        self.remove_listener(id);
        leg
    }

    /// Our plain answer to the browser's re-offer, as its bridge answers it.
    pub async fn to_browser(&mut self, id: usize, plain_answer: &str) -> anyhow::Result<Vec<u8>> {
        let leg = self.browsers.get_mut(&id).ok_or_else(|| anyhow::anyhow!("listener {id} is not a browser"))?;
        leg.sdp_from_device(plain_answer).await
    }
}

#[cfg(test)]
#[path = "browsers_tests.rs"]
mod tests;
