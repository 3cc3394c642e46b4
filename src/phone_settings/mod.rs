//! Do-not-disturb and forwards that Home Assistant changes at run time
//! (issue 14), sans-IO: the config file gives each extension its defaults,
//! changes made over MQTT override them field by field and are kept in
//! SQLite (table `phone_settings`), so they survive a restart. A field set
//! from Home Assistant stays until Home Assistant sets it again; the
//! config-file value applies to every field never set.
//!
//! ```text
//!  MQTT cmd ─► Change::parse ─► check (target exists, not itself) ─► store ─► Table::apply
//!  INVITE ─► Table::effective(defaults) ─► b2bua::forward::resolve
//! ```
use crate::config::{ForwardConfig, NO_ANSWER_SECS};
use std::collections::HashMap;

/// Longest forward target (as a dialled number).
pub const MAX_TARGET: usize = 32;

/// Which forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Always,
    Busy,
    NoAnswer,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Always, Kind::Busy, Kind::NoAnswer];

    /// The field's name: in MQTT topics, the state JSON, the database and logs.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Always => "forward_always",
            Kind::Busy => "forward_busy",
            Kind::NoAnswer => "forward_no_answer",
        }
    }

    fn of_field(field: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.field() == field)
    }
}

pub const DND_FIELD: &str = "dnd";
/// How long the extension rings before `forward_no_answer` takes the call.
pub const NO_ANSWER_SECS_FIELD: &str = "forward_no_answer_secs";

/// One change of one field. `Forward(_, None)` clears that forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Dnd(bool),
    Forward(Kind, Option<String>),
    NoAnswerSecs(u64),
}

impl Change {
    pub fn field(&self) -> &'static str {
        match self {
            Change::Dnd(_) => DND_FIELD,
            Change::Forward(k, _) => k.field(),
            Change::NoAnswerSecs(_) => NO_ANSWER_SECS_FIELD,
        }
    }

    /// Whether `field` is a setting's name (`dnd`, `forward_always`, ...).
    pub fn is_field(field: &str) -> bool {
        field == DND_FIELD || field == NO_ANSWER_SECS_FIELD || Kind::of_field(field).is_some()
    }

    /// A command's payload for `field`: `ON`/`OFF` for `dnd` (what Home
    /// Assistant's switch sends), a number or empty (no forward) for the
    /// forwards, whole seconds for `forward_no_answer_secs` (`20` or `20.0`,
    /// as Home Assistant's number entity sends it). Syntax only; [`check`]
    /// knows the numbers.
    pub fn parse(field: &str, payload: &[u8]) -> Result<Change, String> {
        let text = std::str::from_utf8(payload).map_err(|_| format!("{field}: payload is not UTF-8"))?.trim();
        if field == DND_FIELD {
            return match text.to_ascii_uppercase().as_str() {
                "ON" | "TRUE" | "1" => Ok(Change::Dnd(true)),
                "OFF" | "FALSE" | "0" => Ok(Change::Dnd(false)),
                _ => Err(format!("{field}: `{}` is neither ON nor OFF", shorten(text))),
            };
        }
        if field == NO_ANSWER_SECS_FIELD {
            let (lo, hi) = (*NO_ANSWER_SECS.start(), *NO_ANSWER_SECS.end());
            return match text.parse::<f64>() {
                Ok(n) if n.fract() == 0.0 && n >= lo as f64 && n <= hi as f64 => Ok(Change::NoAnswerSecs(n as u64)),
                _ => Err(format!("{field}: `{}` is not a whole number of seconds from {lo} to {hi}", shorten(text))),
            };
        }
        let kind = Kind::of_field(field)
            .ok_or_else(|| format!("`{field}` is not a setting (dnd, forward_always, forward_busy, forward_no_answer, forward_no_answer_secs)"))?;
        if text.is_empty() {
            return Ok(Change::Forward(kind, None));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || "*#+._-".contains(c);
        if text.len() > MAX_TARGET {
            Err(format!("{field}: target longer than {MAX_TARGET} characters"))
        } else if let Some(bad) = text.chars().find(|c| !ok(*c)) {
            Err(format!("{field}: target `{}` has the character `{bad}` (allowed: letters, digits, * # + . _ -)", shorten(text)))
        } else {
            Ok(Change::Forward(kind, Some(text.to_string())))
        }
    }

    /// The database's (field, value): `on`/`off`, a target or empty.
    pub fn to_row(&self) -> (&'static str, String) {
        match self {
            Change::Dnd(on) => (DND_FIELD, if *on { "on" } else { "off" }.to_string()),
            Change::Forward(k, t) => (k.field(), t.clone().unwrap_or_default()),
            Change::NoAnswerSecs(n) => (NO_ANSWER_SECS_FIELD, n.to_string()),
        }
    }

    pub fn from_row(field: &str, value: &str) -> Result<Change, String> {
        match field {
            DND_FIELD if value == "on" => Ok(Change::Dnd(true)),
            DND_FIELD if value == "off" => Ok(Change::Dnd(false)),
            DND_FIELD => Err(format!("dnd: stored value `{}` is neither on nor off", shorten(value))),
            _ => Change::parse(field, value.as_bytes()),
        }
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Whether the change may be made at `ext`: a forward goes to an existing
/// extension, group or the agent, or a number outside an outbound route
/// lets `ext` call (`known`), never to `ext` itself. The error names the field.
pub fn check(ext: &str, change: &Change, known: impl Fn(&str) -> bool) -> Result<(), String> {
    match change {
        Change::Forward(k, Some(t)) if t == ext => Err(format!("{}: an extension cannot forward to itself", k.field())),
        Change::Forward(k, Some(t)) if !known(t) => {
            Err(format!("{}: `{t}` is not an extension, a group or the agent, and no outbound route lets extension {ext} call it", k.field()))
        }
        _ => Ok(()),
    }
}

/// What an extension does with its calls now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    pub dnd: bool,
    pub forward: ForwardConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Overrides {
    dnd: Option<bool>,
    forward: HashMap<Kind, Option<String>>,
    no_answer_secs: Option<u64>,
}

/// The changes made from Home Assistant, per extension.
#[derive(Debug, Clone, Default)]
pub struct Table {
    overrides: HashMap<String, Overrides>,
}

impl Table {
    /// From the database's rows (extension, field, value); a row that does
    /// not read is skipped with the reason.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, String, String)>) -> (Table, Vec<String>) {
        let mut t = Table::default();
        let mut skipped = vec![];
        for (ext, field, value) in rows {
            match Change::from_row(&field, &value) {
                Ok(c) => t.apply(&ext, c),
                Err(e) => skipped.push(format!("extension {ext}: {e}")),
            }
        }
        (t, skipped)
    }

    pub fn apply(&mut self, ext: &str, change: Change) {
        let o = self.overrides.entry(ext.to_string()).or_default();
        match change {
            Change::Dnd(on) => o.dnd = Some(on),
            Change::Forward(k, t) => {
                o.forward.insert(k, t);
            }
            Change::NoAnswerSecs(n) => o.no_answer_secs = Some(n),
        }
    }

    /// The extension is gone: so are its changes (a new extension with the
    /// same number starts from its config file values).
    pub fn forget(&mut self, ext: &str) {
        self.overrides.remove(ext);
    }

    pub fn has_overrides(&self, ext: &str) -> bool {
        self.overrides.contains_key(ext)
    }

    /// `defaults` (from the config file) with this extension's changes on top.
    pub fn effective(&self, ext: &str, defaults: Settings) -> Settings {
        let Some(o) = self.overrides.get(ext) else { return defaults };
        let mut s = defaults;
        if let Some(on) = o.dnd {
            s.dnd = on;
        }
        if let Some(n) = o.no_answer_secs {
            s.forward.no_answer_secs = n;
        }
        for (k, t) in &o.forward {
            let slot = match k {
                Kind::Always => &mut s.forward.always,
                Kind::Busy => &mut s.forward.busy,
                Kind::NoAnswer => &mut s.forward.no_answer,
            };
            *slot = t.clone();
        }
        s
    }
}

/// The table behind a lock, and a second lock that puts changes in a row
/// (each is stored before it applies, so the database and the table never
/// disagree about the last one).
#[derive(Debug, Default)]
pub struct Shared {
    pub table: std::sync::Mutex<Table>,
    pub writing: tokio::sync::Mutex<()>,
}

impl Shared {
    pub fn new(table: Table) -> Self {
        Shared { table: std::sync::Mutex::new(table), writing: Default::default() }
    }

    /// The table, also after a panic elsewhere poisoned its lock (each
    /// change is one field's assignment, so it is never left half-made).
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn effective(&self, ext: &str, defaults: Settings) -> Settings {
        self.table().effective(ext, defaults)
    }

    pub fn apply(&self, ext: &str, change: Change) {
        self.table().apply(ext, change)
    }

    pub fn forget(&self, ext: &str) {
        self.table().forget(ext)
    }
}

#[cfg(test)]
mod tests;
