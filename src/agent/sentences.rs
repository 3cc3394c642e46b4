//! Cuts a reply streaming in as text pieces into sentences, so speech
//! synthesis can start on the first sentence while the rest is written.

#[derive(Default)]
pub struct SentenceSplitter {
    pending: String,
}

/// A sentence shorter than this waits for more (an "Ok." alone sounds
/// clipped, and "e.g." or "3.5" would otherwise split).
const MIN_CHARS: usize = 12;

impl SentenceSplitter {
    /// Add a piece; returns the sentences it completed.
    pub fn push(&mut self, piece: &str) -> Vec<String> {
        self.pending.push_str(piece);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let rest = self.pending.split_off(end);
            let sentence = std::mem::replace(&mut self.pending, rest);
            let s = sentence.trim();
            if !s.is_empty() {
                out.push(s.to_string());
            }
        }
        out
    }

    /// Whatever is left when the reply is complete.
    pub fn finish(&mut self) -> Option<String> {
        let s = std::mem::take(&mut self.pending);
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    }

    /// Byte index just past a sentence end (`.`, `!`, `?`, `;`, newline)
    /// that is followed by whitespace, at or after MIN_CHARS.
    fn boundary(&self) -> Option<usize> {
        let text = &self.pending;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map(|&(_, n)| n);
            let ends = matches!(c, '.' | '!' | '?' | ';' | '\n') && next.is_some_and(char::is_whitespace) || c == '\n';
            if ends && text[..i].trim().chars().count() >= MIN_CHARS {
                return Some(i + c.len_utf8());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_come_out_as_soon_as_they_end() {
        let mut s = SentenceSplitter::default();
        assert!(s.push("The hallway light").is_empty());
        assert!(s.push(" is on now.").is_empty(), "the end needs the next character to be sure");
        assert_eq!(s.push(" Anything"), vec!["The hallway light is on now."]);
        assert!(s.push(" else?").is_empty());
        assert_eq!(s.finish().as_deref(), Some("Anything else?"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn numbers_and_short_bits_do_not_split() {
        let mut s = SentenceSplitter::default();
        assert!(s.push("It is 21.5 degrees").is_empty());
        assert!(s.push(" inside. Ok. ").len() == 1);
        assert_eq!(s.finish().as_deref(), Some("Ok."));
    }

    #[test]
    fn several_sentences_in_one_piece() {
        let mut s = SentenceSplitter::default();
        let out = s.push("Turned on the light. The door is locked! Is there more? ");
        assert_eq!(out, vec!["Turned on the light.", "The door is locked!", "Is there more?"]);
    }
}
