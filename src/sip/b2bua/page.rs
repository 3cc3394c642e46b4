//! A page (a `page: true` group): every member's devices are rung at once
//! with the auto-answer headers; each that answers is connected and hears
//! the caller; the caller hears nothing back. Sans-IO: the driver
//! (`page_call.rs`) reports what the devices and the caller did and
//! carries out the actions.
//!
//! The caller is answered when the first listener answers; listeners that
//! have not answered when the ring time is up are cancelled; a listener
//! hanging up leaves the others connected; when the caller hangs up the
//! page ends for everyone, and when the last listener left it ends too.
//! Auto-answered listeners never hang up by themselves, so a caller that
//! vanishes without a BYE is found by its silence (`rtp.media_timeout_secs`,
//! the media side's watchdog): the page ends for everyone, caller included.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Listener `n` answered.
    Answered(usize),
    /// Listener `n` refused, failed or was not reachable.
    Failed(usize),
    /// Listener `n` hung up after answering.
    HungUp(usize),
    CallerHungUp,
    /// No RTP from the (answered) caller for the media timeout.
    MediaTimeout,
    /// The group's `ring_secs` are up.
    RingTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answer the caller (the first listener answered).
    AnswerCaller,
    /// Listener `n` hears the caller from now on.
    Connect(usize),
    /// Stop ringing listener `n`.
    Cancel(usize),
    /// Hang up listener `n` (connected, or answering too late).
    Bye(usize),
    /// Nobody answered: refuse the caller with this status.
    RejectCaller(u16),
    ByeCaller,
    /// The page is over; `answered`: someone listened.
    Ended { answered: bool, by: EndedBy },
}

/// What ended a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// The caller hung up.
    Caller,
    /// The last listener left, or nobody answered.
    Listeners,
    /// The caller's media stopped for the media timeout.
    MediaTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Ringing,
    Connected,
    Gone,
}

#[derive(Debug)]
pub struct PageMachine {
    listeners: Vec<Listener>,
    caller_answered: bool,
    done: bool,
}

impl PageMachine {
    /// `n` listeners (devices) are being rung.
    pub fn new(n: usize) -> Self {
        PageMachine { listeners: vec![Listener::Ringing; n], caller_answered: false, done: n == 0 }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn connected(&self) -> usize {
        self.listeners.iter().filter(|l| **l == Listener::Connected).count()
    }

    pub fn on(&mut self, input: Input) -> Vec<Action> {
        if self.done {
            // A device answering after the end is hung up; nothing else matters.
            return match input {
                Input::Answered(n) if n < self.listeners.len() => vec![Action::Bye(n)],
                _ => Vec::new(),
            };
        }
        let mut out = Vec::new();
        match input {
            Input::Answered(n) => match self.listeners.get(n) {
                Some(Listener::Ringing) => {
                    self.listeners[n] = Listener::Connected;
                    out.push(Action::Connect(n));
                    if !self.caller_answered {
                        self.caller_answered = true;
                        out.push(Action::AnswerCaller);
                    }
                }
                // Cancelled (time up) but answered anyway: no listener.
                Some(Listener::Gone) => out.push(Action::Bye(n)),
                _ => {}
            },
            Input::Failed(n) | Input::HungUp(n) => {
                if self.listeners.get(n).is_some_and(|l| *l != Listener::Gone) {
                    self.listeners[n] = Listener::Gone;
                    out.extend(self.end_if_nobody_left());
                }
            }
            Input::RingTimeout => {
                for n in 0..self.listeners.len() {
                    if self.listeners[n] == Listener::Ringing {
                        self.listeners[n] = Listener::Gone;
                        out.push(Action::Cancel(n));
                    }
                }
                out.extend(self.end_if_nobody_left());
            }
            Input::CallerHungUp => out.extend(self.end_for_everyone(EndedBy::Caller)),
            // Only an answered page has media to miss.
            Input::MediaTimeout if self.caller_answered => {
                let mut all = self.end_for_everyone(EndedBy::MediaTimeout);
                all.insert(all.len() - 1, Action::ByeCaller);
                out.extend(all);
            }
            Input::MediaTimeout => {}
        }
        out
    }

    /// Every listener is cancelled or hung up, and the page is over.
    fn end_for_everyone(&mut self, by: EndedBy) -> Vec<Action> {
        let mut out = Vec::new();
        for n in 0..self.listeners.len() {
            match self.listeners[n] {
                Listener::Ringing => out.push(Action::Cancel(n)),
                Listener::Connected => out.push(Action::Bye(n)),
                Listener::Gone => {}
            }
            self.listeners[n] = Listener::Gone;
        }
        self.done = true;
        out.push(Action::Ended { answered: self.caller_answered, by });
        out
    }

    /// Listener `n` answered and is still there.
    pub fn is_connected(&self, n: usize) -> bool {
        self.listeners.get(n) == Some(&Listener::Connected)
    }

    fn end_if_nobody_left(&mut self) -> Vec<Action> {
        if self.listeners.iter().any(|l| *l != Listener::Gone) {
            return Vec::new();
        }
        self.done = true;
        let first = if self.caller_answered { Action::ByeCaller } else { Action::RejectCaller(480) };
        vec![first, Action::Ended { answered: self.caller_answered, by: EndedBy::Listeners }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    #[test]
    fn the_first_answer_answers_the_caller_and_every_answer_connects() {
        let mut p = PageMachine::new(3);
        assert_eq!(p.on(Input::Answered(1)), vec![Connect(1), AnswerCaller]);
        assert_eq!(p.on(Input::Answered(0)), vec![Connect(0)]);
        assert_eq!(p.connected(), 2);
        assert_eq!(p.on(Input::RingTimeout), vec![Cancel(2)]);
        assert!(!p.is_done());
    }

    #[test]
    fn a_listener_hanging_up_leaves_the_others_and_the_last_ends_the_page() {
        let mut p = PageMachine::new(2);
        p.on(Input::Answered(0));
        p.on(Input::Answered(1));
        assert!(p.on(Input::HungUp(0)).is_empty());
        assert_eq!(p.on(Input::HungUp(1)), vec![ByeCaller, Ended { answered: true, by: EndedBy::Listeners }]);
        assert!(p.is_done());
    }

    #[test]
    fn the_caller_hanging_up_ends_it_for_everyone() {
        let mut p = PageMachine::new(3);
        p.on(Input::Answered(0));
        p.on(Input::Failed(2));
        assert_eq!(p.on(Input::CallerHungUp), vec![Bye(0), Cancel(1), Ended { answered: true, by: EndedBy::Caller }]);
        assert_eq!(p.on(Input::Answered(1)), vec![Bye(1)], "a late answer is hung up");
        assert!(p.on(Input::CallerHungUp).is_empty());
    }

    #[test]
    fn nobody_answering_refuses_the_caller_480() {
        let mut p = PageMachine::new(2);
        assert!(p.on(Input::Failed(0)).is_empty());
        assert_eq!(p.on(Input::RingTimeout), vec![Cancel(1), RejectCaller(480), Ended { answered: false, by: EndedBy::Listeners }]);
        let mut q = PageMachine::new(2);
        q.on(Input::Failed(0));
        assert_eq!(q.on(Input::Failed(1)), vec![RejectCaller(480), Ended { answered: false, by: EndedBy::Listeners }]);
    }

    #[test]
    fn an_answer_after_the_ring_time_is_hung_up_and_unknown_listeners_are_ignored() {
        let mut p = PageMachine::new(2);
        p.on(Input::Answered(0));
        assert_eq!(p.on(Input::RingTimeout), vec![Cancel(1)]);
        assert_eq!(p.on(Input::Answered(1)), vec![Bye(1)]);
        assert!(p.on(Input::Answered(9)).is_empty());
        assert!(p.on(Input::HungUp(9)).is_empty());
        assert!(p.on(Input::Failed(1)).is_empty(), "already gone");
        assert_eq!(p.connected(), 1);
    }

    #[test]
    fn a_silent_caller_ends_the_page_for_everyone_as_a_media_timeout() {
        let mut p = PageMachine::new(3);
        assert!(p.on(Input::MediaTimeout).is_empty(), "a ringing page has no media to miss");
        p.on(Input::Answered(0));
        p.on(Input::Answered(2));
        assert!(p.is_connected(0) && !p.is_connected(1));
        assert_eq!(p.on(Input::MediaTimeout), vec![Bye(0), Cancel(1), Bye(2), ByeCaller, Ended { answered: true, by: EndedBy::MediaTimeout }]);
        assert!(p.is_done() && !p.is_connected(0));
        assert!(p.on(Input::MediaTimeout).is_empty(), "once only");
        assert!(p.on(Input::CallerHungUp).is_empty(), "the caller's late BYE ends nothing twice");
    }
}
