//! The sync cursor of `/Changes` and `/Changes/Stream`: the commit stamp of the last change a
//! client has seen, wrapped so clients treat it as opaque. The feed, the stream and the help
//! samples all write it, so it lives with the other wire formats.

use base64::Engine as _;

use crate::domain::Timestamp;

const CURSOR_TAG: &[u8] = b"dl1";

/// A `since` that is not a cursor of this service (the HTTP layer answers 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("since: '{0}' is not a cursor of this service; use the cursor of the previous page, or omit since to start from the beginning")]
pub struct BadCursor(pub String);

/// Wraps a stamp into a cursor (None: the beginning).
pub fn encode_cursor(stamp: Option<Timestamp>) -> String {
    let ticks = stamp.map(Timestamp::ticks).unwrap_or(i64::MIN);
    let mut bytes = CURSOR_TAG.to_vec();
    bytes.extend_from_slice(&ticks.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Unwraps a cursor; None for the beginning.
pub fn decode_cursor(cursor: &str) -> Result<Option<Timestamp>, BadCursor> {
    let bad = || BadCursor(cursor.to_string());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| bad())?;
    let ticks = bytes
        .strip_prefix(CURSOR_TAG)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(i64::from_be_bytes)
        .ok_or_else(bad)?;
    Ok((ticks != i64::MIN).then(|| Timestamp::from_ticks(ticks)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_decodes_to_the_stamp_it_wraps() {
        let stamp = Timestamp::from_ticks(638_720_000_000_000_000);
        assert_eq!(decode_cursor(&encode_cursor(Some(stamp))), Ok(Some(stamp)));
        assert_eq!(decode_cursor(&encode_cursor(None)), Ok(None));
        assert!(decode_cursor("not a cursor").is_err());
    }
}
