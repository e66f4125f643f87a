//! The daemon protocol on UDP: a header line, `\n`, then one segment document.
//!
//! Every X-Ray SDK sends `{"format":"json","version":1}` byte for byte; the daemon splits
//! at the first newline (the document may contain more) and accepts any header that is
//! JSON with `format` equal to `json` (any case) and the integer `version` 1. The
//! document itself is not looked at here.

/// The header every X-Ray SDK sends, byte for byte.
pub const PROTOCOL_HEADER: &[u8] = br#"{"format":"json","version":1}"#;

/// Why a datagram was refused before its document was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    /// No newline: there is no header, or no document after it.
    #[error("datagram has no header line")]
    MissingHeader,
    /// The header is not `{"format":"json","version":1}` or an equivalent.
    #[error("datagram header is not {{\"format\":\"json\",\"version\":1}}")]
    InvalidHeader,
    /// Nothing but whitespace after the header.
    #[error("datagram has no document after its header")]
    EmptyBody,
}

impl DatagramError {
    /// The reason label counters use.
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::InvalidHeader => "invalid_header",
            Self::EmptyBody => "empty_body",
        }
    }
}

/// Splits a datagram at its first newline, checks the header and returns the document.
pub fn split_datagram(data: &[u8]) -> Result<&[u8], DatagramError> {
    let Some(nl) = data.iter().position(|b| *b == b'\n') else {
        return Err(DatagramError::MissingHeader);
    };
    let (header, body) = (&data[..nl], &data[nl + 1..]);
    if header != PROTOCOL_HEADER && !header_is_equivalent(header) {
        return Err(DatagramError::InvalidHeader);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DatagramError::EmptyBody);
    }
    Ok(body)
}

fn header_is_equivalent(header: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Header {
        format: Option<String>,
        version: Option<serde_json::Value>,
    }
    serde_json::from_slice::<Header>(header).is_ok_and(|h| {
        h.format.is_some_and(|f| f.eq_ignore_ascii_case("json"))
            && h.version.is_some_and(|v| v.as_i64() == Some(1))
    })
}

#[cfg(test)]
mod tests {
    use super::{DatagramError, split_datagram};

    #[test]
    fn daemon_header_rules() {
        let body = br#"{"a":1}"#;
        let cases: &[(&[u8], Result<(), DatagramError>)] = &[
            (b"{\"format\":\"json\",\"version\":1}\n{\"a\":1}", Ok(())),
            (b"{\"format\": \"JSON\", \"version\": 1}\n{\"a\":1}", Ok(())),
            (
                b"{\"format\":\"json\",\"version\":2}\n{\"a\":1}",
                Err(DatagramError::InvalidHeader),
            ),
            (
                b"{\"format\":\"json\",\"version\":\"1\"}\n{\"a\":1}",
                Err(DatagramError::InvalidHeader),
            ),
            (
                b"{\"format\":\"json\",\"version\":1}",
                Err(DatagramError::MissingHeader),
            ),
            (
                b"{\"format\":\"json\",\"version\":1}\n",
                Err(DatagramError::EmptyBody),
            ),
            (b"garbage\n{\"a\":1}", Err(DatagramError::InvalidHeader)),
        ];
        for (input, expected) in cases {
            let got = split_datagram(input).map(|b| assert_eq!(b, body));
            assert_eq!(got, *expected, "{}", String::from_utf8_lossy(input));
        }
        // The body is everything after the first newline, newlines included.
        assert_eq!(
            split_datagram(b"{\"format\":\"json\",\"version\":1}\n{\"a\":\"x\ny\"}"),
            Ok(&b"{\"a\":\"x\ny\"}"[..])
        );
    }
}
