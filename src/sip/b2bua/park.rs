//! Call park, decided without I/O: which slot a parked call takes, what a
//! slot holds, and what happens to a parked call nobody takes back.
//!
//! The `Lot` is the table of slots (`park.slots`, at most
//! `config::MAX_PARK_SLOTS`): a call takes the first free one and frees it
//! when it is retrieved, rung back and answered, or ends. A `Stay` is one
//! parked call's timing: it waits `park.timeout_secs`, then the parker is
//! rung back for the ring time, then the parked call is hung up. Time is an
//! input, so tests need no clock.
use tokio::time::{Duration, Instant};

/// The parker hears silence this long after the announcement before its
/// leg is ended (the last frames are still in its jitter buffer).
pub const BYE_AFTER_ANNOUNCEMENT: Duration = Duration::from_millis(600);

/// Silence before the announcement: the parker's jitter buffer settles on
/// the new audio before the first word.
pub const ANNOUNCEMENT_LEAD_IN: Duration = Duration::from_millis(300);

/// What becomes of the parker's leg once the call is on its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParkerEnd {
    /// Speak this text to the parker, then end its leg (NOTIFY 200, BYE)
    /// BYE_AFTER_ANNOUNCEMENT after the audio.
    Announce(String),
    /// Nothing can speak (no text-to-speech): end the leg at once; the slot
    /// is in the log, the API and MQTT.
    Bye,
}

/// The parker's leg after a park on `slot`: announced when `can_speak`.
pub fn parker_end(slot: &str, can_speak: bool) -> ParkerEnd {
    if !can_speak {
        return ParkerEnd::Bye;
    }
    // Digit by digit ("7 0 1"), so it is read as the number to dial.
    let spelled: Vec<String> = slot.chars().map(String::from).collect();
    ParkerEnd::Announce(format!("Parked on {}.", spelled.join(" ")))
}

/// A call on a slot, as the lot keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub call_id: String,
    /// The extension that parked the call (rung back on timeout).
    pub parker: String,
    /// The party waiting on the slot.
    pub parked: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `park:` is not configured.
    Off,
    /// Every slot holds a call.
    Full,
    /// This call is parked already.
    AlreadyParked(String),
    /// Retrieve: the slot holds nothing.
    Empty(String),
}

impl Refusal {
    /// The SIP answer: status and a reason phrase saying why.
    pub fn status(&self) -> (u16, String) {
        match self {
            Refusal::Off => (403, "Call park is not configured".into()),
            Refusal::Full => (480, "No free park slot".into()),
            Refusal::AlreadyParked(s) => (491, format!("Call already parked on {s}")),
            Refusal::Empty(s) => (404, format!("Nothing parked on {s}")),
        }
    }
}

/// The slots and what each holds. Bounded by the number of slots.
#[derive(Debug, Default)]
pub struct Lot {
    slots: Vec<(String, Option<Parked>)>,
}

impl Lot {
    pub fn new(slots: Vec<String>) -> Self {
        Lot { slots: slots.into_iter().map(|s| (s, None)).collect() }
    }

    pub fn is_slot(&self, number: &str) -> bool {
        self.slots.iter().any(|(s, _)| s == number)
    }

    /// Park `call` on the first free slot; its number.
    pub fn park(&mut self, call: Parked) -> Result<String, Refusal> {
        if self.slots.is_empty() {
            return Err(Refusal::Off);
        }
        if let Some((s, _)) = self.slots.iter().find(|(_, p)| p.as_ref().is_some_and(|p| p.call_id == call.call_id)) {
            return Err(Refusal::AlreadyParked(s.clone()));
        }
        let (slot, free) = self.slots.iter_mut().find(|(_, p)| p.is_none()).ok_or(Refusal::Full)?;
        *free = Some(call);
        Ok(slot.clone())
    }

    /// What `slot` holds.
    pub fn get(&self, slot: &str) -> Result<&Parked, Refusal> {
        self.slots.iter().find(|(s, _)| s == slot).and_then(|(_, p)| p.as_ref()).ok_or_else(|| Refusal::Empty(slot.to_string()))
    }

    /// The call left its slot (retrieved, answered the ring-back, ended): the slot it freed.
    pub fn free(&mut self, call_id: &str) -> Option<String> {
        let (slot, p) = self.slots.iter_mut().find(|(_, p)| p.as_ref().is_some_and(|p| p.call_id == call_id))?;
        *p = None;
        Some(slot.clone())
    }

    /// The taken slots, in slot order.
    pub fn taken(&self) -> Vec<(String, Parked)> {
        self.slots.iter().filter_map(|(s, p)| p.clone().map(|p| (s.clone(), p))).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// On the slot, until the park timeout.
    Waiting { until: Instant },
    /// The parker's devices ring, until the ring time is up.
    RingingBack { until: Instant },
    /// Retrieved, answered or hung up: no more timers.
    Over,
}

/// What the call must do when a `Stay`'s deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Not yet (a deadline that moved, or already over).
    Nothing,
    /// Nobody retrieved it: ring the parker.
    RingBack,
    /// The parker did not answer the ring-back: hang up the parked party.
    HangUp,
}

/// One parked call's timing.
#[derive(Debug, Clone)]
pub struct Stay {
    pub slot: String,
    pub parker: String,
    stage: Stage,
    ring: Duration,
}

impl Stay {
    /// Parked at `now`: rung back after `timeout`, for `ring`.
    pub fn new(slot: String, parker: String, now: Instant, timeout: Duration, ring: Duration) -> Self {
        Stay { slot, parker, stage: Stage::Waiting { until: now + timeout }, ring }
    }

    /// When `on_time` has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        match self.stage {
            Stage::Waiting { until } | Stage::RingingBack { until } => Some(until),
            Stage::Over => None,
        }
    }

    pub fn is_ringing_back(&self) -> bool {
        matches!(self.stage, Stage::RingingBack { .. })
    }

    /// The clock reached `now`.
    pub fn on_time(&mut self, now: Instant) -> Next {
        match self.stage {
            Stage::Waiting { until } if now >= until => {
                self.stage = Stage::RingingBack { until: now + self.ring };
                Next::RingBack
            }
            Stage::RingingBack { until } if now >= until => {
                self.stage = Stage::Over;
                Next::HangUp
            }
            _ => Next::Nothing,
        }
    }

    /// Someone took the call (a retrieve, the parker answering the ring-back).
    pub fn taken(&mut self) {
        self.stage = Stage::Over;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> Parked {
        Parked { call_id: id.into(), parker: "102".into(), parked: "101".into() }
    }

    fn lot() -> Lot {
        Lot::new(vec!["701".into(), "702".into()])
    }

    #[test]
    fn calls_take_the_first_free_slot_and_a_full_lot_refuses() {
        let mut l = lot();
        assert_eq!(l.park(call("a")), Ok("701".into()));
        assert_eq!(l.park(call("b")), Ok("702".into()));
        assert_eq!(l.park(call("c")), Err(Refusal::Full));
        assert_eq!(Refusal::Full.status(), (480, "No free park slot".into()));
        // 701 freed: the next call takes it, not 703.
        assert_eq!(l.free("a"), Some("701".into()));
        assert_eq!(l.park(call("c")), Ok("701".into()));
        assert_eq!(l.taken().len(), 2);
    }

    #[test]
    fn a_call_is_parked_once_and_a_lot_without_slots_is_off() {
        let mut l = lot();
        assert_eq!(l.park(call("a")), Ok("701".into()));
        assert_eq!(l.park(call("a")), Err(Refusal::AlreadyParked("701".into())));
        assert_eq!(Lot::new(vec![]).park(call("a")), Err(Refusal::Off));
        assert_eq!(Refusal::Off.status().0, 403);
    }

    #[test]
    fn retrieve_finds_the_call_and_an_empty_slot_is_a_404_naming_it() {
        let mut l = lot();
        l.park(call("a")).unwrap();
        assert_eq!(l.get("701").map(|p| p.call_id.as_str()), Ok("a"));
        assert_eq!(l.get("702"), Err(Refusal::Empty("702".into())));
        assert_eq!(Refusal::Empty("702".into()).status(), (404, "Nothing parked on 702".into()));
        assert!(l.is_slot("702") && !l.is_slot("703"));
        // The parked party hung up: the slot is empty again, and freeing twice is harmless.
        assert_eq!(l.free("a"), Some("701".into()));
        assert_eq!(l.free("a"), None);
        assert_eq!(l.get("701"), Err(Refusal::Empty("701".into())));
    }

    #[test]
    fn the_parker_hears_the_slot_digit_by_digit_or_gets_bye_without_speech() {
        assert_eq!(parker_end("701", true), ParkerEnd::Announce("Parked on 7 0 1.".into()));
        assert_eq!(parker_end("9", true), ParkerEnd::Announce("Parked on 9.".into()));
        assert_eq!(parker_end("701", false), ParkerEnd::Bye);
    }

    #[test]
    fn an_unretrieved_call_rings_back_then_is_hung_up() {
        let t0 = Instant::now();
        let mut s = Stay::new("701".into(), "102".into(), t0, Duration::from_secs(120), Duration::from_secs(30));
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(120)));
        assert_eq!(s.on_time(t0 + Duration::from_secs(119)), Next::Nothing);
        assert!(!s.is_ringing_back());
        assert_eq!(s.on_time(t0 + Duration::from_secs(120)), Next::RingBack);
        assert!(s.is_ringing_back());
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(150)));
        assert_eq!(s.on_time(t0 + Duration::from_secs(149)), Next::Nothing);
        assert_eq!(s.on_time(t0 + Duration::from_secs(150)), Next::HangUp);
        assert_eq!(s.deadline(), None);
        assert_eq!(s.on_time(t0 + Duration::from_secs(999)), Next::Nothing);
    }

    #[test]
    fn a_taken_call_has_no_more_timers() {
        let t0 = Instant::now();
        let mut s = Stay::new("701".into(), "102".into(), t0, Duration::from_secs(5), Duration::from_secs(30));
        s.taken();
        assert_eq!(s.deadline(), None);
        assert_eq!(s.on_time(t0 + Duration::from_secs(60)), Next::Nothing);
        // Answered while ringing back: over too.
        let mut s = Stay::new("701".into(), "102".into(), t0, Duration::from_secs(5), Duration::from_secs(30));
        assert_eq!(s.on_time(t0 + Duration::from_secs(5)), Next::RingBack);
        s.taken();
        assert_eq!(s.on_time(t0 + Duration::from_secs(60)), Next::Nothing);
    }
}
