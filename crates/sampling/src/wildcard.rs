//! The wildcard patterns of sampling rules.
//!
//! `*` matches any run of characters (none included), `?` exactly one character, every
//! other character itself, ignoring case. An empty pattern matches only the empty text.
//! This is the X-Ray SDKs' `wildcard_match` (Python SDK `core/utils/search_pattern.py`),
//! whose greedy loop with one backtracking point runs in O(pattern × text) at worst and
//! never recurses, so hostile input cannot blow the stack.

/// Whether `text` matches the wildcard `pattern`, ignoring case.
///
/// ```
/// use roentgen_sampling::wildcard_match;
///
/// assert!(wildcard_match("/api/state/*", "/API/state/1"));
/// assert!(wildcard_match("ab?d", "abcd"));
/// assert!(!wildcard_match("ab?d", "abd"));
/// ```
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    if pattern.is_empty() {
        return text.is_empty();
    }
    if pattern == "*" {
        return true;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut i, mut j) = (0, 0);
    // The last `*` seen and the text position it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while i < t.len() {
        match p.get(j) {
            Some('*') => {
                star = Some((j, i));
                j += 1;
            }
            Some(&c) if c == '?' || same_letter(c, t[i]) => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((sj, si)) => {
                    // Let the star swallow one more character and retry after it.
                    star = Some((sj, si + 1));
                    i = si + 1;
                    j = sj + 1;
                }
                None => return false,
            },
        }
    }
    p[j..].iter().all(|&c| c == '*')
}

fn same_letter(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    /// One line per case: `matches!(pattern, text)` or `differs!(pattern, text)`.
    macro_rules! matches {
        ($p:expr, $t:expr) => {
            assert!(wildcard_match($p, $t), "{:?} should match {:?}", $p, $t);
        };
    }
    macro_rules! differs {
        ($p:expr, $t:expr) => {
            assert!(
                !wildcard_match($p, $t),
                "{:?} should not match {:?}",
                $p,
                $t
            );
        };
    }

    #[test]
    fn table() {
        matches!("*", "");
        matches!("*", "anything at all");
        matches!("", "");
        differs!("", "a");
        matches!("a", "a");
        matches!("a", "A");
        differs!("a", "b");
        differs!("a", "");
        matches!("?", "x");
        differs!("?", "");
        differs!("?", "xy");
        matches!("ab?d", "abcd");
        differs!("ab?d", "abd");
        matches!("Score*", "Scorekeep");
        matches!("SCORE*", "scorekeep");
        matches!("*keep", "Scorekeep");
        differs!("*keep", "Scorekeeper");
        matches!("*kee*", "Scorekeeper");
        matches!("/api/state/*", "/api/state/1");
        differs!("/api/state/*", "/api/game/1");
        matches!("a*b*c", "aXbYc");
        matches!("a*b*c", "abc");
        matches!("a*b*c", "abbbcbc");
        differs!("a*b*c", "abcb");
        matches!("**", "");
        matches!("a**", "a");
        matches!("*?", "a");
        differs!("*?", "");
        matches!("?*?", "ab");
        matches!("mississippi", "MISSISSIPPI");
        matches!("m*iss*ppi", "mississippi");
        matches!("*ss*pp?", "mississippi");
        differs!("m*ss*pq", "mississippi");
        matches!("ÄPFEL*", "äpfelbaum");
        matches!("???", "äöü");
        matches!("GET", "get");
        differs!("GET", "GETS");
    }

    /// A direct recursive definition to compare against (exponential, so small inputs).
    fn reference(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some('*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
            (Some(_), None) => false,
            (Some('?'), Some(_)) => reference(&p[1..], &t[1..]),
            (Some(a), Some(b)) => {
                a.to_lowercase().eq(b.to_lowercase()) && reference(&p[1..], &t[1..])
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_recursive_definition(p in "[ab?*]{0,8}", t in "[abAB]{0,10}") {
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            proptest::prop_assert_eq!(wildcard_match(&p, &t), reference(&pc, &tc));
        }
    }

    #[test]
    fn hostile_input_stays_fast() {
        let pattern = "*a".repeat(64);
        let text = "a".repeat(100_000);
        let start = std::time::Instant::now();
        assert!(wildcard_match(&pattern, &text));
        assert!(!wildcard_match(&format!("{pattern}b"), &text[..2_000]));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
