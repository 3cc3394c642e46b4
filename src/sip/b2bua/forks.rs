//! The call's forks as the glue knows them: one slot per fork the call ever
//! started, numbered as the machine numbers them (`ForkId`).
use super::machine::ForkId;
use rsipstack::dialog::invite_dialog::InviteDialog;

pub(super) struct Slot {
    /// None: the INVITE could not even be sent.
    pub dialog: Option<InviteDialog>,
    /// SDP the fork sent (early media in 18x, or its 200's answer).
    pub sdp: Option<Vec<u8>>,
    /// Its ringing response offered remote answer (`Allow-Events: talk`).
    pub talk: bool,
    /// It rings the AI agent (RFC 4733 whatever the callee's setting).
    pub agent: bool,
    /// The host the device registered from (its media may come from there).
    pub host: Option<std::net::IpAddr>,
    /// The extension it rings when that is not the callee: a ring group's
    /// member, or the extension that picked the call up.
    pub member: Option<String>,
}

#[derive(Default)]
pub(super) struct Forks {
    slots: Vec<Slot>,
}

impl Forks {
    /// A new fork; its number is the count before it.
    pub fn push(&mut self, dialog: Option<InviteDialog>, agent: bool, host: Option<std::net::IpAddr>) -> ForkId {
        self.slots.push(Slot { dialog, sdp: None, talk: false, agent, host, member: None });
        self.slots.len() - 1
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn get(&self, id: ForkId) -> Option<&Slot> {
        self.slots.get(id)
    }

    pub fn get_mut(&mut self, id: ForkId) -> Option<&mut Slot> {
        self.slots.get_mut(id)
    }

    pub fn dialog(&self, id: ForkId) -> Option<InviteDialog> {
        self.get(id).and_then(|s| s.dialog.clone())
    }

    pub fn sdp(&self, id: ForkId) -> Option<Vec<u8>> {
        self.get(id).and_then(|s| s.sdp.clone())
    }

    pub fn host(&self, id: ForkId) -> Option<std::net::IpAddr> {
        self.get(id).and_then(|s| s.host)
    }

    pub fn is_agent(&self, id: ForkId) -> bool {
        self.get(id).is_some_and(|s| s.agent)
    }

    /// CANCEL the fork's INVITE (in the background).
    pub fn cancel(&self, id: ForkId) {
        if let Some(d) = self.dialog(id) {
            tokio::spawn(async move {
                let _ = d.cancel().await;
            });
        }
    }

    /// BYE the fork's dialog (in the background).
    pub fn bye(&self, id: ForkId) {
        if let Some(d) = self.dialog(id) {
            tokio::spawn(async move {
                let _ = d.bye().await;
            });
        }
    }

    pub fn dialogs(&self) -> impl Iterator<Item = &InviteDialog> {
        self.slots.iter().filter_map(|s| s.dialog.as_ref())
    }
}
