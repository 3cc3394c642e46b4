//! A call out that the provider did not take goes out on the route's next
//! trunk (the decision: `crate::trunk::failover`). The caller keeps ringing
//! meanwhile; the next trunk gets the caller's offer anew, made for that
//! trunk (its SRTP) and presented as that trunk presents calls (its caller
//! ID, its credential). A dialled call, a forward and a group's fallback to
//! a number outside all fail over here.
use super::call::Call;
use super::fork::Presented;
use super::machine::Input;

impl Call {
    /// Every fork so far failed (the machine said `AllRefused` while a call
    /// out had trunks left): true when the next trunk is rung. Otherwise the
    /// call ends with the failure it got.
    pub(super) async fn trunk_failover(&mut self) -> bool {
        let Some(mut status) = self.failover.as_ref().and(self.machine.last_failure()) else { return false };
        while let Some(next) = self.failover.as_mut().and_then(|f| f.on_failure(status)) {
            let number = self.failover.as_ref().map(|f| f.number.clone()).unwrap_or_default();
            match crate::sip::trunk::outbound::prepare(&self.core, &next, &number).await {
                Ok((binding, presented)) => match self.toward_trunk(presented).await {
                    Ok(offer) => {
                        tracing::warn!(call_id = %self.call_id, status, trunk = %next, "call out not taken by the provider: trying the route's next trunk");
                        self.start_fork(&binding, &offer).await;
                        self.step(Input::Offered { forks: 1 }).await;
                        return true;
                    }
                    Err(e) => {
                        tracing::warn!(call_id = %self.call_id, trunk = %next, error = %e, "the route's next trunk cannot take this call's media");
                        status = 503;
                    }
                },
                Err(e) => {
                    tracing::warn!(call_id = %self.call_id, trunk = %next, error = %e, "the route's next trunk cannot be reached either");
                    status = 503;
                }
            }
        }
        tracing::info!(call_id = %self.call_id, status, "call out failed: no trunk of the route left to try");
        self.failover = None;
        self.step(Input::Expecting { more: false }).await;
        false
    }

    /// The callee leg goes out over a trunk from now on (a forward or a
    /// group's fallback to a number outside, the route's next trunk): the
    /// caller's media is offered to it afresh as that trunk takes media, an
    /// SDES key and RTP/SAVP for `srtp: mandatory` (see
    /// `CallMedia::offer_to_trunk`). The call's first trunk leg gets the
    /// same from `call_setup`, before the first offer is made.
    pub(super) async fn toward_trunk(&mut self, presented: Presented) -> anyhow::Result<Vec<u8>> {
        let offer = self.media.offer_to_trunk(self.caller_leg, presented.srtp).await?;
        self.trunk = Some(presented);
        self.offer_b = Some(offer.clone());
        Ok(offer)
    }
}
