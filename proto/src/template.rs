//! Template slots: `<name>` in a template's text is filled from the
//! conversation (`customerName`, `customerEmail`, `agentName`, `queueName`)
//! or from the params the agent gives.

/// The slot names in `text`, each once, in order of first appearance. A slot
/// is `<` + letters, digits or `_` + `>`; any other `<` is literal text.
pub fn slots(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for piece in Pieces::new(text) {
        if let Piece::Slot(name) = piece {
            if !found.iter().any(|known| known == name) {
                found.push(name.to_owned());
            }
        }
    }
    found
}

/// Fills every slot from `lookup`. Fails with the names it could not fill,
/// each once, in order.
pub fn fill<'a>(
    text: &str,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing: Vec<String> = Vec::new();
    for piece in Pieces::new(text) {
        match piece {
            Piece::Text(literal) => out.push_str(literal),
            Piece::Slot(name) => match lookup(name) {
                Some(value) => out.push_str(value),
                None => {
                    if !missing.iter().any(|known| known == name) {
                        missing.push(name.to_owned());
                    }
                }
            },
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

enum Piece<'t> {
    Text(&'t str),
    Slot(&'t str),
}

/// Splits a template into literal text and slots.
struct Pieces<'t> {
    rest: &'t str,
}

impl<'t> Pieces<'t> {
    fn new(text: &'t str) -> Self {
        Self { rest: text }
    }
}

fn is_slot_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl<'t> Iterator for Pieces<'t> {
    type Item = Piece<'t>;

    fn next(&mut self) -> Option<Piece<'t>> {
        if self.rest.is_empty() {
            return None;
        }
        if let Some(after_open) = self.rest.strip_prefix('<') {
            if let Some(close) = after_open.find('>') {
                let name = &after_open[..close];
                if is_slot_name(name) {
                    self.rest = &after_open[close + 1..];
                    return Some(Piece::Slot(name));
                }
            }
            // A lone '<': literal, up to the next '<'.
            let next_open = after_open.find('<').map_or(self.rest.len(), |i| i + 1);
            let (literal, rest) = self.rest.split_at(next_open);
            self.rest = rest;
            return Some(Piece::Text(literal));
        }
        let next_open = self.rest.find('<').unwrap_or(self.rest.len());
        let (literal, rest) = self.rest.split_at(next_open);
        self.rest = rest;
        Some(Piece::Text(literal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_listed_once_in_order() {
        assert_eq!(
            slots("Hi <customerName>, I am <agentName>. <customerName>!"),
            vec!["customerName", "agentName"]
        );
    }

    #[test]
    fn template_fills_every_slot() {
        let filled = fill("Hi <customerName>, order <order_id>.", |name| match name {
            "customerName" => Some("Ada"),
            "order_id" => Some("42"),
            _ => None,
        });
        assert_eq!(filled, Ok("Hi Ada, order 42.".to_owned()));
    }

    #[test]
    fn unfillable_slot_is_named_in_missing_template_params() {
        let filled = fill("<a> <b> <a> <c>", |name| (name == "b").then_some("x"));
        assert_eq!(filled, Err(vec!["a".to_owned(), "c".to_owned()]));
    }

    #[test]
    fn a_lone_angle_bracket_is_literal_text() {
        assert_eq!(slots("a < b > c <not a slot>"), Vec::<String>::new());
        assert_eq!(fill("1 < 2 <x>", |_| Some("y")), Ok("1 < 2 y".to_owned()));
    }
}
