//! Wire formats: content negotiation, JSON and XML bodies, problem details, the documents beyond
//! a row (`documents`) and the sync cursor (`cursor`).
//!
//! The original serves JSON and XML from the same resource; clients of either must keep working.
//! Everything here is driven by the field table of [`crate::domain::fields`].

pub mod cursor;
pub mod documents;
pub mod json;
pub mod problem;
pub mod xml;

use axum::http::{self, HeaderMap};

use crate::domain::{JobDispatchLog, RawRecord, ValidationErrors};

/// A body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

/// The format of a response and the exact media type the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub format: Format,
    pub media_type: &'static str,
}

impl Negotiated {
    pub const JSON: Negotiated = Negotiated {
        format: Format::Json,
        media_type: "application/json",
    };
    pub const XML: Negotiated = Negotiated {
        format: Format::Xml,
        media_type: "application/xml",
    };

    /// The `Content-Type` of a response body (every response writes one, so no formatting).
    pub fn content_type(self) -> &'static str {
        match self.media_type {
            "text/json" => "text/json; charset=utf-8",
            "application/xml" => "application/xml; charset=utf-8",
            "text/xml" => "text/xml; charset=utf-8",
            _ => "application/json; charset=utf-8",
        }
    }
}

const MEDIA_TYPES: [(&str, Format); 4] = [
    ("application/json", Format::Json),
    ("text/json", Format::Json),
    ("application/xml", Format::Xml),
    ("text/xml", Format::Xml),
];

fn known_media_type(essence: &str) -> Option<(&'static str, Format)> {
    MEDIA_TYPES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(essence))
        .copied()
}

/// A `$format` value that is neither `json` nor `xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFormatOption(pub String);

/// Chooses the response format: `$format` first, then `Accept` with q-values; JSON by default.
pub fn negotiate(headers: &HeaderMap, query: Option<&str>) -> Result<Negotiated, BadFormatOption> {
    let format = query_value(query, "$format").map_err(|_| BadFormatOption(String::new()))?;
    if let Some(value) = format {
        return match value.to_ascii_lowercase().as_str() {
            "json" => Ok(Negotiated::JSON),
            "xml" => Ok(Negotiated::XML),
            other => match known_media_type(other) {
                Some((media_type, format)) => Ok(Negotiated { format, media_type }),
                None => Err(BadFormatOption(value)),
            },
        };
    }
    let mut best: Option<(f32, Negotiated)> = None;
    for (essence, q) in accept_ranges(headers) {
        if let Some((media_type, format)) = known_media_type(essence) {
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, Negotiated { format, media_type }));
            }
        }
    }
    Ok(best.map(|(_, n)| n).unwrap_or(Negotiated::JSON))
}

/// Every media range of the `Accept` headers with its q-value, ranges refused with `q=0` left
/// out.
fn accept_ranges(headers: &HeaderMap) -> impl Iterator<Item = (&str, f32)> {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|accept| accept.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';');
            let essence = parts.next().unwrap_or("").trim();
            let mut q = 1.0f32;
            for param in parts {
                if let Some((k, v)) = param.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = v.trim().parse().unwrap_or(0.0);
                    }
                }
            }
            (q > 0.0).then_some((essence, q))
        })
}

/// How an error response is written (SPEC §4.4).
///
/// Clients of the original read errors with ASP.NET Web API's formatters
/// (`ReadAsAsync<HttpError>`), which know `application/json` and `application/xml` but not the
/// RFC 9457 media types, and its XML reader expects the root `<Error>`. So the RFC 9457 form is
/// sent only to a client whose `Accept` names it; every other client gets the same members under
/// the media types (and, in XML, the root) that Web API writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemForm {
    pub format: Format,
    /// `application/problem+json` / `application/problem+xml` with root `<problem>`.
    pub rfc9457: bool,
}

impl ProblemForm {
    pub fn content_type(self) -> &'static str {
        match (self.format, self.rfc9457) {
            (Format::Json, true) => "application/problem+json; charset=utf-8",
            (Format::Json, false) => "application/json; charset=utf-8",
            (Format::Xml, true) => "application/problem+xml; charset=utf-8",
            (Format::Xml, false) => "application/xml; charset=utf-8",
        }
    }
}

const PROBLEM_MEDIA_TYPES: [(&str, Format); 2] = [
    ("application/problem+json", Format::Json),
    ("application/problem+xml", Format::Xml),
];

/// Chooses the form of an error: the format as for any response (`$format`, then `Accept`,
/// where the problem media types also count as asking for their format; JSON by default, and
/// for a bad `$format`), and the RFC 9457 media type when `Accept` names the one of that format
/// at least as strongly as that format's plain types.
pub fn negotiate_problem(headers: &HeaderMap, query: Option<&str>) -> ProblemForm {
    let forced = match negotiate(&HeaderMap::new(), query) {
        Ok(n) if matches!(query_value(query, "$format"), Ok(Some(_))) => Some(n.format),
        Ok(_) => None,
        Err(_) => Some(Format::Json),
    };
    // Per format: the best q of its plain types and of its problem type.
    let mut plain = [0.0f32; 2];
    let mut problem = [0.0f32; 2];
    let mut best: Option<(f32, Format)> = None;
    let slot = |f: Format| match f {
        Format::Json => 0,
        Format::Xml => 1,
    };
    for (essence, q) in accept_ranges(headers) {
        let (format, rfc9457) = if let Some((_, f)) = known_media_type(essence) {
            (f, false)
        } else if let Some((_, f)) = PROBLEM_MEDIA_TYPES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(essence))
        {
            (*f, true)
        } else {
            continue;
        };
        let table = if rfc9457 { &mut problem } else { &mut plain };
        table[slot(format)] = table[slot(format)].max(q);
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, format));
        }
    }
    let format = forced.unwrap_or(best.map_or(Format::Json, |(_, f)| f));
    let i = slot(format);
    ProblemForm {
        format,
        rfc9457: problem[i] > 0.0 && problem[i] >= plain[i],
    }
}

/// A query parameter whose value is not valid percent-encoded UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEscape {
    /// The parameter's name.
    pub name: String,
}

impl std::fmt::Display for BadEscape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the value of {} is not valid percent-encoded UTF-8",
            self.name
        )
    }
}

/// The decoded value of one query parameter (the first, when repeated). A value that does not
/// decode is an error, never "absent": `since=%ff` read as no `since` would hand a client the
/// whole feed from the start.
pub fn query_value(query: Option<&str>, name: &str) -> Result<Option<String>, BadEscape> {
    let Some(query) = query else {
        return Ok(None);
    };
    let found = query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k).as_deref() == Some(name)).then_some(v)
    });
    match found {
        None => Ok(None),
        Some(v) => percent_decode(v).map(Some).ok_or_else(|| BadEscape {
            name: name.to_string(),
        }),
    }
}

/// Decodes `%XX` escapes and `+` of a query component; None when not UTF-8 or malformed.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Why a request body's media type was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedMediaType(pub String);

/// The format of a request body from its `Content-Type`; none means JSON.
pub fn body_format(headers: &HeaderMap) -> Result<Format, UnsupportedMediaType> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(Format::Json);
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    known_media_type(essence)
        .map(|(_, f)| f)
        .ok_or_else(|| UnsupportedMediaType(text.to_string()))
}

/// A body that could not be read as the format it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not well-formed, or not the expected shape; the text says where and why.
    Malformed(String),
    /// Well-formed, but fields are of the wrong type (keys like `[3].sequence` in lists).
    Invalid(ValidationErrors),
    /// A list of more items than the limit given; reading stopped at the first one too many.
    TooMany(usize),
}

/// The body without a leading UTF-8 byte order mark: .NET clients writing with `Encoding.UTF8`
/// (StreamWriter, DataContractSerializer) send one, and the original accepts it.
fn without_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// Decodes a body holding one row.
pub fn decode_one(format: Format, body: &[u8]) -> Result<RawRecord, DecodeError> {
    let body = without_bom(body);
    match format {
        Format::Json => json::decode_one(body),
        Format::Xml => xml::decode_one(body),
    }
}

/// Decodes a body holding a list of at most `max` rows.
pub fn decode_list(format: Format, body: &[u8], max: usize) -> Result<Vec<RawRecord>, DecodeError> {
    let body = without_bom(body);
    match format {
        Format::Json => json::decode_list(body, max),
        Format::Xml => xml::decode_list(body, max),
    }
}

/// Encodes one row.
pub fn encode_row(format: Format, row: &JobDispatchLog) -> String {
    match format {
        Format::Json => json::encode_row(row),
        Format::Xml => xml::encode_row(row),
    }
}

/// Encodes a list of rows as a plain array (`[...]` or `ArrayOfjob_dispatch_log`).
pub fn encode_rows(format: Format, rows: &[JobDispatchLog]) -> String {
    match format {
        Format::Json => json::encode_rows(rows),
        Format::Xml => xml::encode_rows(rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn q_values_choose_the_format() {
        let n = negotiate(&accept("application/json;q=0.5, text/xml"), None).unwrap();
        assert_eq!(n.media_type, "text/xml");
        let n = negotiate(&accept("application/xml;q=0, */*"), None).unwrap();
        assert_eq!(n, Negotiated::JSON);
        let n = negotiate(&accept("image/png"), None).unwrap();
        assert_eq!(n, Negotiated::JSON);
    }

    #[test]
    fn errors_use_the_rfc_9457_media_types_only_when_accept_names_them() {
        let form = |a: &str, q: Option<&str>| {
            let h = if a.is_empty() {
                HeaderMap::new()
            } else {
                accept(a)
            };
            let f = negotiate_problem(&h, q);
            (f.format, f.rfc9457)
        };
        assert_eq!(form("", None), (Format::Json, false));
        assert_eq!(form("*/*", None), (Format::Json, false));
        assert_eq!(form("application/json", None), (Format::Json, false));
        assert_eq!(form("text/json", None), (Format::Json, false));
        assert_eq!(form("application/xml", None), (Format::Xml, false));
        assert_eq!(form("text/xml", None), (Format::Xml, false));
        assert_eq!(form("application/problem+json", None), (Format::Json, true));
        assert_eq!(form("application/problem+xml", None), (Format::Xml, true));
        assert_eq!(
            form("application/json, application/problem+json", None),
            (Format::Json, true)
        );
        assert_eq!(
            form("application/xml, application/problem+xml", None),
            (Format::Xml, true)
        );
        // Named, but less wanted than the plain type, or refused.
        assert_eq!(
            form("application/json, application/problem+json;q=0.5", None),
            (Format::Json, false)
        );
        assert_eq!(
            form("application/xml, application/problem+xml;q=0", None),
            (Format::Xml, false)
        );
        // The problem type of the other format does not count.
        assert_eq!(
            form("application/xml, application/problem+json;q=0.5", None),
            (Format::Xml, false)
        );
        assert_eq!(
            form("application/problem+xml", Some("$format=json")),
            (Format::Json, false)
        );
        assert_eq!(
            form("application/problem+xml", Some("$format=xml")),
            (Format::Xml, true)
        );
        assert_eq!(
            form("application/xml", Some("$format=bogus")),
            (Format::Json, false)
        );
    }

    #[test]
    fn the_format_option_overrides_accept() {
        let n = negotiate(&accept("application/json"), Some("a=1&%24format=xml")).unwrap();
        assert_eq!(n.format, Format::Xml);
        assert!(negotiate(&HeaderMap::new(), Some("$format=csv")).is_err());
    }
}
