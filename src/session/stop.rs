//! Stop strings matched on decoded text, across token boundaries: text that could still turn
//! into a stop string is held back, so a stream never shows part of one.

pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

/// What one piece of text yields.
pub struct Matched {
    /// Text now safe to show.
    pub emit: String,
    /// Whether a stop string was completed (the text before it is in `emit`).
    pub stopped: bool,
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> Self {
        Self { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), held: String::new() }
    }

    pub fn push(&mut self, piece: &str) -> Matched {
        self.held.push_str(piece);
        // The earliest complete stop string ends the reply.
        if let Some(at) = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min() {
            let emit = self.held[..at].to_string();
            self.held.clear();
            return Matched { emit, stopped: true };
        }
        // Hold back the longest tail that begins some stop string.
        let keep = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| self.stops.iter().any(|s| s.starts_with(&self.held[i..])))
            .unwrap_or(self.held.len());
        let emit = self.held[..keep].to_string();
        self.held.drain(..keep);
        Matched { emit, stopped: false }
    }

    /// Text still held back when the reply ends for another reason.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, bool, String) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = Vec::new();
        for p in pieces {
            let r = m.push(p);
            out.push(r.emit);
            if r.stopped {
                return (out, true, String::new());
            }
        }
        (out, false, m.finish())
    }

    #[test]
    fn stop_strings_split_across_pieces_are_found_and_never_shown() {
        let (out, stopped, _) = run(&["\nUser:"], &["Hi", " there\n", "Us", "er: more"]);
        assert!(stopped);
        assert_eq!(out.concat(), "Hi there");
        // The newline was held back from the second piece until it was known to start the stop.
        assert_eq!(out[1], " there");
    }

    #[test]
    fn held_text_is_released_when_it_stops_matching() {
        let (out, stopped, tail) = run(&["Paris!"], &["Par", "ty", " in Par"]);
        assert!(!stopped);
        assert_eq!(out, ["", "Party", " in "]);
        assert_eq!(tail, "Par");
    }

    #[test]
    fn earliest_stop_wins_and_multibyte_text_is_safe() {
        let (out, stopped, _) = run(&["é!", "b"], &["aé", "!b"]);
        assert!(stopped);
        assert_eq!(out.concat(), "a");
        let (out, _, tail) = run(&[], &["naïve"]);
        assert_eq!((out.concat(), tail), ("naïve".to_string(), String::new()));
    }
}
