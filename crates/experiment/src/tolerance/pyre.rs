//! Python `re` patterns, as Chaos Toolkit's `regex` tolerance writes them,
//! matched with the regex-lite engine (small, linear time, no ReDoS).
//!
//! Before compiling, a pattern is rewritten where Python and regex-lite read
//! the same text differently, so what passes in Chaos Toolkit passes here:
//!
//! - `{` and `}` that do not form a repetition (`{"ok":true}`) are literal in
//!   Python; they are escaped. `{,n}` is `{0,n}` and `{,}` is `{0,}`.
//! - `$` also matches before a final newline in Python: it becomes `(?:\n?$)`
//!   (the same for "is there a match", which is all a tolerance asks).
//! - `\Z` (Python's end of text) is `\z`; `\<` and `\>` are the literal `<`
//!   and `>` in Python, word boundaries in regex-lite.
//! - Inside a class, `[`, `&&` and `~~` are literal in Python; they are escaped.
//!
//! What still differs, and is refused when compiling: look-around,
//! backreferences, atomic groups, possessive quantifiers (regex-lite would
//! read `a*+` as `(a*)+`), `(?#...)` comments,
//! `\p{...}` classes and the `a`/`L` flags. And what matches differently: `\d`,
//! `\w`, `\s`, `\b` and `(?i)` are ASCII-only in regex-lite (Unicode in
//! Python).

use regex_lite::Regex;

/// Longer patterns are refused: nobody writes them, and matching costs
/// pattern length times text length.
pub(crate) const MAX_PATTERN_CHARS: usize = 4096;

/// Longest pattern whose error gets a position (see [`locate`]: quadratic,
/// about 5 ms at this length in a release build).
const MAX_LOCATE_CHARS: usize = 256;

/// Compile a Chaos Toolkit (Python `re`) pattern. The error says what is
/// wrong and where, in the pattern as written.
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    let chars = pattern.chars().count();
    if chars > MAX_PATTERN_CHARS {
        return Err(format!(
            "'pattern' is {chars} characters long, over the {MAX_PATTERN_CHARS}-character limit"
        ));
    }
    let translated = translate(pattern).map_err(|(at, msg)| {
        format!("'pattern' is not a valid regular expression: {msg}, at character {at} of \"{pattern}\"")
    })?;
    Regex::new(&translated).map_err(|e| {
        let msg = e.to_string();
        let place = match locate(pattern, &msg) {
            Some(at) => {
                let upto: String = pattern.chars().take(at).collect();
                let tail: String = {
                    let n = upto.chars().count();
                    upto.chars().skip(n.saturating_sub(24)).collect()
                };
                format!(", detected at character {at} (after \"{tail}\") of \"{pattern}\"")
            }
            None => format!(", in \"{pattern}\""),
        };
        format!(
            "'pattern' is not a valid regular expression: {msg}{place}{}",
            hint(&msg)
        )
    })
}

fn hint(msg: &str) -> &'static str {
    const ENGINE: &str = " (Turbulence matches with regex-lite: no look-around, backreferences, \
        atomic groups, (?#...) comments or \\p{...} classes)";
    if ["look-around", "backreference", "Unicode", "unrecognized"]
        .iter()
        .any(|m| msg.contains(m))
    {
        ENGINE
    } else {
        ""
    }
}

/// Where regex-lite gave up, as a 1-based character count: the shortest
/// prefix that fails with the same message ends at the construct at fault
/// (regex-lite's errors carry no position). `None` for long patterns.
fn locate(pattern: &str, msg: &str) -> Option<usize> {
    if pattern.chars().count() > MAX_LOCATE_CHARS {
        return None;
    }
    let mut ends: Vec<usize> = pattern.char_indices().map(|(i, _)| i).skip(1).collect();
    ends.push(pattern.len());
    ends.iter().enumerate().find_map(|(n, &end)| {
        let translated = translate(&pattern[..end]).ok()?;
        match Regex::new(&translated) {
            Err(e) if e.to_string() == msg => Some(n + 1),
            _ => None,
        }
    })
}

/// Rewrite Python syntax that regex-lite reads differently (module docs).
/// Errs, with the 1-based character, on a possessive quantifier (`a*+`),
/// which regex-lite would read as a nested repetition.
pub(crate) fn translate(pattern: &str) -> Result<String, (usize, &'static str)> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    // The previous token was a quantifier (`*`, `+`, `?`, `{m,n}`).
    let mut quantified = false;
    while i < chars.len() {
        let c = chars[i];
        let after_quantifier = std::mem::take(&mut quantified);
        if c == '\\' {
            match chars.get(i + 1) {
                None => out.push('\\'), // regex-lite reports the dangling escape
                Some('Z') if !in_class => out.push_str("\\z"),
                Some(&d @ ('<' | '>')) => out.push(d),
                Some(&d) => {
                    out.push('\\');
                    out.push(d);
                }
            }
            i += 2;
            continue;
        }
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(']');
                }
                '[' => out.push_str("\\["),
                '&' => out.push_str("\\&"),
                '~' => out.push_str("\\~"),
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A `]` first in a class is literal in both; escape it anyway.
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            '{' => match repetition(&chars[i..]) {
                Some((text, len)) => {
                    out.push_str(&text);
                    i += len;
                    quantified = true;
                }
                None => {
                    out.push_str("\\{");
                    i += 1;
                }
            },
            '}' => {
                out.push_str("\\}");
                i += 1;
            }
            '$' => {
                out.push_str("(?:\\n?$)");
                i += 1;
            }
            '+' if after_quantifier => {
                return Err((
                    i + 1,
                    "possessive quantifiers (a*+, a++, a?+, a{n}+) are not supported",
                ))
            }
            '*' | '+' => {
                out.push(c);
                i += 1;
                quantified = true;
            }
            // `?` after a quantifier makes it lazy; after `(` it opens a group.
            '?' => {
                out.push(c);
                quantified = !after_quantifier && i > 0 && chars[i - 1] != '(';
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Python's counted repetition at the start of `s` (which starts with `{`):
/// `{m}`, `{m,}`, `{,n}`, `{m,n}` or `{,}`, as regex-lite text, and how many
/// characters it took. Anything else is a literal `{` in Python.
fn repetition(s: &[char]) -> Option<(String, usize)> {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while s.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        s[start..*i].iter().collect::<String>()
    };
    let lo = digits(&mut i);
    let (comma, hi) = if s.get(i) == Some(&',') {
        i += 1;
        (true, digits(&mut i))
    } else {
        (false, String::new())
    };
    if s.get(i) != Some(&'}') || (lo.is_empty() && !comma) {
        return None;
    }
    let lo = if lo.is_empty() { "0".into() } else { lo };
    let text = if comma {
        format!("{{{lo},{hi}}}")
    } else {
        format!("{{{lo}}}")
    };
    Some((text, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_match(pattern: &str, text: &str) -> bool {
        compile(pattern).unwrap().is_match(text)
    }

    #[test]
    fn python_literal_braces_and_counted_repetitions() {
        assert!(is_match(r#"{"status":\s*"ok"}"#, r#"{"status": "ok"}"#));
        assert!(is_match("[0-9]{2}", "you are number 87"));
        assert!(!is_match("^[0-9]{2}$", "8"));
        assert!(is_match("^a{,2}$", "aa"));
        assert!(!is_match("^a{,2}$", "aaa"));
        assert!(is_match("^a{2,}$", "aaaa"));
        assert!(is_match("^x{}$", "x{}"));
        assert!(is_match("^{x}$", "{x}"));
    }

    #[test]
    fn dollar_matches_before_a_final_newline_as_in_python() {
        assert!(is_match("^OK$", "OK\n"));
        assert!(is_match("^OK$", "OK"));
        assert!(!is_match("^OK$", "OK\n\n"));
        assert!(is_match("(?m)^b$", "a\nb\nc"));
        assert!(is_match(r"^OK\Z", "OK"));
        assert!(!is_match(r"^OK\Z", "OK\n"));
        assert!(is_match(r"\$5", "costs $5"));
    }

    #[test]
    fn python_literal_escapes_and_class_punctuation() {
        assert!(is_match(r"\<b\>", "<b>"));
        assert!(is_match("^[[]$", "["));
        assert!(is_match("^[a&&b]+$", "a&b"));
        assert!(is_match("^[]a]+$", "]a"));
        assert!(is_match("^[^]a]$", "b"));
        assert!(is_match(r"(?P<code>\d+) OK", "200 OK"));
        assert!(is_match("(?i)healthy", "HEALTHY"));
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = compile("[0-9").unwrap_err();
        assert!(
            e.starts_with("'pattern' is not a valid regular expression: "),
            "{e}"
        );
        assert!(e.contains("detected at character 1 (after \"[\")"), "{e}");
        let e = compile("ab(?=c)").unwrap_err();
        assert!(e.contains("look-around is not supported"), "{e}");
        assert!(
            e.contains("detected at character 5 (after \"ab(?=\")"),
            "{e}"
        );
        assert!(e.contains("regex-lite"), "{e}");
        let e = compile(r"(a)\1").unwrap_err();
        assert!(e.contains("backreferences are not supported"), "{e}");
        assert!(e.contains("detected at character 5"), "{e}");
        let e = compile(r"\p{L}+").unwrap_err();
        assert!(e.contains("regex-lite"), "{e}");
        let e = compile("x(").unwrap_err();
        assert!(e.contains("detected at character 2"), "{e}");
        let e = compile("^a*+b").unwrap_err();
        assert_eq!(
            e,
            "'pattern' is not a valid regular expression: possessive quantifiers (a*+, a++, a?+, a{n}+) are not supported, at character 4 of \"^a*+b\""
        );
        assert!(compile("a{2}+").is_err());
        assert!(compile("a?+").is_err());
        // Lazy quantifiers, escaped pluses and groups are not possessive.
        assert!(is_match("^a+?b$", "aab"));
        assert!(is_match(r"^\++$", "++"));
        assert!(is_match("^(?:a)+$", "aa"));
        assert!(is_match("^a??b$", "b"));
        let e = compile(&"a".repeat(MAX_PATTERN_CHARS + 1)).unwrap_err();
        assert!(e.contains("over the 4096-character limit"), "{e}");
    }
}
