//! What counts as text when a file is shown to a person or a model.

/// Whether `head` (a file's first bytes) is not UTF-8 text: a NUL, or a byte sequence
/// that is not UTF-8 (one cut off at the end of `head` does not count).
pub(crate) fn looks_binary(head: &[u8]) -> bool {
    if head.contains(&0) {
        return true;
    }
    match std::str::from_utf8(head) {
        Ok(_) => false,
        Err(e) => e.error_len().is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_text_even_cut_inside_a_character() {
        assert!(!looks_binary("plain ascii".as_bytes()));
        let e_acute = "caf\u{e9}".as_bytes();
        assert!(!looks_binary(&e_acute[..e_acute.len() - 1]));
        assert!(looks_binary(b"PNG\0\x01"));
        assert!(looks_binary(&[0xff, 0xfe, b'a', b'b']));
    }
}
