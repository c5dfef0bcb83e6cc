//! Where a byte offset falls in a text file, for error messages that name file, line and key.
//!
//! The TOML parser reports errors as byte spans; profiles and thresholds both turn a span into
//! "file:line: field `key`". This is the one place that does it. Pure text, no TOML parsing.

/// 1-based line and column (in characters) of byte `offset` in `text` (clamped to the end).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The key (`premises` in `premises = 3`) or table header (`stages.dsp` in `[stages.dsp]`) written
/// on 1-based `line` of a TOML text; `None` for a blank, comment or other line.
pub fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?.trim();
    if let Some(h) = l.strip_prefix('[') {
        let h = h.split(']').next().unwrap_or("").trim_matches(['[', ' ']);
        return (!h.is_empty()).then(|| h.to_string());
    }
    let (k, _) = l.split_once('=')?;
    let k = k.trim();
    (!k.is_empty() && !k.starts_with('#')).then(|| k.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_character_columns() {
        let t = "a = 1\nbé = 2\n\nc";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 4), (1, 5));
        assert_eq!(line_col(t, 5), (1, 6));
        assert_eq!(line_col(t, 6), (2, 1));
        // 'é' is two bytes, one column; an offset inside it counts from its start.
        assert_eq!(line_col(t, 9), (2, 3));
        assert_eq!(line_col(t, 8), (2, 2));
        assert_eq!(line_col(t, 14), (3, 1));
        assert_eq!(line_col(t, 999), (4, 2));
    }

    #[test]
    fn keys_and_headers_are_found_on_their_line() {
        let t = "name = \"x\"\n[stages.dsp]\n  rate = -5.0 # bad\n\n# c = 1\n[[list]]\nplain\n[ ]\n = 3\n";
        assert_eq!(key_on_line(t, 1).as_deref(), Some("name"));
        assert_eq!(key_on_line(t, 2).as_deref(), Some("stages.dsp"));
        assert_eq!(key_on_line(t, 3).as_deref(), Some("rate"));
        assert_eq!(key_on_line(t, 4), None);
        assert_eq!(key_on_line(t, 5), None);
        assert_eq!(key_on_line(t, 6).as_deref(), Some("list"));
        assert_eq!(key_on_line(t, 7), None);
        assert_eq!(key_on_line(t, 8), None);
        assert_eq!(key_on_line(t, 9), None);
        assert_eq!(key_on_line(t, 0), None);
        assert_eq!(key_on_line(t, 99), None);
    }
}
