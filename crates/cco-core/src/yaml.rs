//! How the reference tool's YAML library (`sigs.k8s.io/yaml`, go-yaml v2 underneath) writes a string
//! scalar, for the manifests it serialises rather than templates (IBM Cloud's Secret): plain when the
//! string reads back as the same string, double-quoted otherwise.

/// Words YAML 1.1 reads as booleans or null.
const SPECIAL: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~", "",
];

fn looks_numeric(s: &str) -> bool {
    let t = s.replace('_', "");
    let t = t.strip_prefix(['+', '-']).unwrap_or(&t);
    if t.is_empty() {
        return false;
    }
    let radix = |p: &str, r: u32| {
        t.strip_prefix(p)
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_digit(r)))
    };
    t.parse::<f64>().is_ok()
        || radix("0x", 16)
        || radix("0o", 8)
        || radix("0b", 2)
        || matches!(t.to_ascii_lowercase().as_str(), ".inf" | ".nan")
        // sexagesimal (base 60) numbers such as 1:20
        || (t.contains(':') && t.split(':').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
}

/// Whether go-yaml would write `s` without quotes.
fn plain(s: &str) -> bool {
    if SPECIAL.contains(&s) || looks_numeric(s) {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "#,[]{}&*!|>'\"%@`?:".contains(first) || (first == '-' && s.len() == 1) {
        return false;
    }
    if s.starts_with("- ") || s.ends_with(' ') || s.starts_with(' ') {
        return false;
    }
    !(s.contains(": ") || s.contains(" #") || s.ends_with(':'))
        && s.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

/// `s` as go-yaml writes a string scalar on one line.
pub fn scalar(s: &str) -> String {
    if plain(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_read_back_as_strings_stay_plain() {
        for s in ["abc", "AbC_12-x", "-abc", "openshift-machine-api", "a.b/c"] {
            assert_eq!(scalar(s), s);
        }
    }

    #[test]
    fn strings_that_would_read_back_as_something_else_are_quoted() {
        for (s, q) in [
            ("yes", "\"yes\""),
            ("123", "\"123\""),
            ("1e5", "\"1e5\""),
            ("0x1F", "\"0x1F\""),
            ("", "\"\""),
            ("a: b", "\"a: b\""),
            ("#x", "\"#x\""),
        ] {
            assert_eq!(scalar(s), q, "{s}");
        }
    }
}
