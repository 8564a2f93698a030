//! RESP frames and an incremental parser that never trusts a length.
//!
//! RESP2 (the protocol of `redis-cli`, `redis-benchmark` and client libraries): `+simple`,
//! `-error`, `:integer`, `$length\r\nbulk`, `*count\r\n` followed by `count` frames, and the
//! null bulk `$-1`. Clients send commands as arrays of bulk strings; for `telnet` users, a
//! line that does not start with `*` is an *inline* command split on spaces, as Redis does.
//!
//! The parser works on the bytes received so far and answers "a frame and how many bytes it
//! used", "incomplete", or an error. Every length is checked against a limit *before* it is
//! used, so `$9999999999` or `*2000000000` is refused instead of allocated.

use bytes::Bytes;
use std::fmt;

/// One RESP value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    Null,
    /// A nil array: what `EXEC` answers when a watched key changed (`*-1` in RESP2).
    NullArray,
    Array(Vec<Frame>),
    /// Key-value pairs: a RESP3 map, or a flat array of `2n` items in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// Out-of-band data (pub/sub messages): a RESP3 push, or an array in RESP2.
    Push(Vec<Frame>),
}

/// The reply protocol of a connection: RESP2 until the client asks for RESP3 with `HELLO 3`.
/// Requests look the same in both; replies differ only in how nil and maps are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

impl Proto {
    pub fn version(self) -> i64 {
        match self {
            Proto::Resp2 => 2,
            Proto::Resp3 => 3,
        }
    }
}

impl Frame {
    pub fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    pub fn error(message: impl Into<String>) -> Frame {
        Frame::Error(message.into())
    }

    /// Appends the RESP2 wire encoding of the frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_as(Proto::Resp2, out)
    }

    /// Appends the wire encoding of the frame in `proto` to `out`.
    pub fn encode_as(&self, proto: Proto, out: &mut Vec<u8>) {
        match self {
            Frame::Simple(text) => line(out, b'+', text.as_bytes()),
            Frame::Error(text) => {
                // An error is one line: CR and LF inside would split the frame.
                let clean: String = text
                    .chars()
                    .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                    .collect();
                line(out, b'-', clean.as_bytes());
            }
            Frame::Integer(n) => line(out, b':', n.to_string().as_bytes()),
            Frame::Bulk(data) => {
                line(out, b'$', data.len().to_string().as_bytes());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Null => match proto {
                Proto::Resp2 => out.extend_from_slice(b"$-1\r\n"),
                Proto::Resp3 => out.extend_from_slice(b"_\r\n"),
            },
            Frame::NullArray => match proto {
                Proto::Resp2 => out.extend_from_slice(b"*-1\r\n"),
                Proto::Resp3 => out.extend_from_slice(b"_\r\n"),
            },
            Frame::Array(items) => {
                line(out, b'*', items.len().to_string().as_bytes());
                for item in items {
                    item.encode_as(proto, out);
                }
            }
            Frame::Push(items) => {
                let tag = match proto {
                    Proto::Resp2 => b'*',
                    Proto::Resp3 => b'>',
                };
                line(out, tag, items.len().to_string().as_bytes());
                for item in items {
                    item.encode_as(proto, out);
                }
            }
            Frame::Map(pairs) => {
                match proto {
                    Proto::Resp2 => line(out, b'*', (2 * pairs.len()).to_string().as_bytes()),
                    Proto::Resp3 => line(out, b'%', pairs.len().to_string().as_bytes()),
                }
                for (key, value) in pairs {
                    key.encode_as(proto, out);
                    value.encode_as(proto, out);
                }
            }
        }
    }
}

fn line(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Simple(s) => write!(f, "{s}"),
            Frame::Error(s) => write!(f, "(error) {s}"),
            Frame::Integer(n) => write!(f, "(integer) {n}"),
            Frame::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Frame::Null | Frame::NullArray => write!(f, "(nil)"),
            Frame::Array(items) | Frame::Push(items) => {
                let parts: Vec<String> = items.iter().map(|i| i.to_string()).collect();
                write!(f, "[{}]", parts.join(", "))
            }
            Frame::Map(pairs) => {
                let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "{{{}}}", parts.join(", "))
            }
        }
    }
}

/// Bounds on what a client may send.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest bulk string, in bytes.
    pub bulk_max: usize,
    /// Most elements in one array.
    pub array_max: usize,
    /// Longest inline command or header line.
    pub line_max: usize,
    /// Deepest nesting of arrays (commands are flat: 1).
    pub depth_max: usize,
}

impl Limits {
    pub fn for_values(value_max: usize) -> Limits {
        Limits {
            // Room for the value plus a key; the command layer enforces value_max exactly.
            bulk_max: value_max.saturating_mul(2).max(64 << 10),
            array_max: 1 << 20,
            line_max: 64 << 10,
            depth_max: 2,
        }
    }
}

/// Input that is not RESP. The connection answers `-ERR Protocol error: ...` and closes,
/// as Redis does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

type Parsed = Result<Option<(Frame, usize)>, ProtocolError>;

/// Parses one frame from the start of `buf`: `Ok(Some((frame, used)))`, `Ok(None)` when more
/// bytes are needed, or an error.
pub fn parse(buf: &[u8], limits: &Limits) -> Parsed {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_at(buf, 0, limits, 0),
        Some(_) => parse_inline(buf, limits),
    }
}

/// Parses one reply frame (replies are never inline).
pub fn parse_reply(buf: &[u8], limits: &Limits) -> Parsed {
    parse_at(buf, 0, limits, 0)
}

fn parse_at(buf: &[u8], at: usize, limits: &Limits, depth: usize) -> Parsed {
    let Some(&tag) = buf.get(at) else {
        return Ok(None);
    };
    let Some((text, next)) = read_line(buf, at + 1, limits)? else {
        return Ok(None);
    };
    match tag {
        b'+' => Ok(Some((Frame::Simple(utf8(text)?), next))),
        b'-' => Ok(Some((Frame::Error(utf8(text)?), next))),
        b':' => Ok(Some((Frame::Integer(number(text)?), next))),
        b'$' => {
            let length = number(text)?;
            if length == -1 {
                return Ok(Some((Frame::Null, next)));
            }
            let length = checked_length(length, limits.bulk_max, "bulk length")?;
            let end = next + length;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError("bulk string not followed by CRLF".into()));
            }
            Ok(Some((
                Frame::Bulk(Bytes::copy_from_slice(&buf[next..end])),
                end + 2,
            )))
        }
        b'*' => {
            if depth >= limits.depth_max {
                return Err(ProtocolError("arrays nested too deeply".into()));
            }
            let count = number(text)?;
            if count == -1 {
                return Ok(Some((Frame::NullArray, next)));
            }
            let count = checked_length(count, limits.array_max, "multibulk length")?;
            let mut items = Vec::with_capacity(count.min(1024));
            let mut at = next;
            for _ in 0..count {
                match parse_at(buf, at, limits, depth + 1)? {
                    Some((item, used)) => {
                        items.push(item);
                        at = used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Frame::Array(items), at)))
        }
        other => Err(ProtocolError(format!(
            "expected '$', '*', '+', '-' or ':', got '{}'",
            (other as char).escape_default()
        ))),
    }
}

fn parse_inline(buf: &[u8], limits: &Limits) -> Parsed {
    let Some((text, next)) = read_line(buf, 0, limits)? else {
        return Ok(None);
    };
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let words: Vec<Frame> = text
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|w| !w.is_empty())
        .map(|w| Frame::Bulk(Bytes::copy_from_slice(w)))
        .collect();
    Ok(Some((Frame::Array(words), next)))
}

/// The bytes of the line starting at `at` (without CRLF) and where the next line starts.
/// Inline commands may end in a bare LF; RESP lines need CRLF.
fn read_line<'a>(
    buf: &'a [u8],
    at: usize,
    limits: &Limits,
) -> Result<Option<(&'a [u8], usize)>, ProtocolError> {
    let rest = buf.get(at..).unwrap_or(&[]);
    match rest.iter().position(|b| *b == b'\n') {
        Some(lf) => {
            let line = &rest[..lf];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Ok(Some((line, at + lf + 1)))
        }
        None if rest.len() > limits.line_max => Err(ProtocolError(
            "too big inline request or header line".into(),
        )),
        None => Ok(None),
    }
}

fn utf8(bytes: &[u8]) -> Result<String, ProtocolError> {
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

fn number(bytes: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ProtocolError(format!(
                "invalid number {:?}",
                String::from_utf8_lossy(bytes)
            ))
        })
}

fn checked_length(value: i64, max: usize, what: &str) -> Result<usize, ProtocolError> {
    match usize::try_from(value) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(ProtocolError(format!(
            "invalid {what} {value} (limit {max})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::for_values(1024)
    }

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn a_command_parses_and_every_prefix_is_incomplete() {
        let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let (frame, used) = parse(wire, &limits()).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(
            frame,
            Frame::Array(vec![bulk("SET"), bulk("k"), bulk("hello")])
        );
        for cut in 0..wire.len() {
            assert_eq!(
                parse(&wire[..cut], &limits()),
                Ok(None),
                "prefix of {cut} bytes"
            );
        }
    }

    #[test]
    fn frames_round_trip_through_the_encoder() {
        let frames = [
            Frame::ok(),
            Frame::error("ERR no"),
            Frame::Integer(-42),
            bulk("binary\r\nsafe"),
            Frame::Null,
            Frame::Array(vec![Frame::Integer(1), bulk("x")]),
        ];
        for frame in frames {
            let mut wire = Vec::new();
            frame.encode(&mut wire);
            let (back, used) = parse_at(&wire, 0, &limits(), 0).unwrap().unwrap();
            assert_eq!((back, used), (frame, wire.len()));
        }
    }

    #[test]
    fn resp3_writes_nil_and_maps_in_its_own_types_and_resp2_flattens_maps() {
        let map = Frame::Map(vec![
            (bulk("proto"), Frame::Integer(3)),
            (bulk("gone"), Frame::Null),
        ]);
        let mut resp3 = Vec::new();
        map.encode_as(Proto::Resp3, &mut resp3);
        assert_eq!(resp3, b"%2\r\n$5\r\nproto\r\n:3\r\n$4\r\ngone\r\n_\r\n");
        let mut resp2 = Vec::new();
        map.encode_as(Proto::Resp2, &mut resp2);
        assert_eq!(resp2, b"*4\r\n$5\r\nproto\r\n:3\r\n$4\r\ngone\r\n$-1\r\n");
    }

    #[test]
    fn inline_commands_split_on_spaces() {
        let (frame, used) = parse(b"SET k  v\r\nGET k\r\n", &limits()).unwrap().unwrap();
        assert_eq!(frame, Frame::Array(vec![bulk("SET"), bulk("k"), bulk("v")]));
        assert_eq!(used, 10);
    }

    #[test]
    fn huge_or_negative_lengths_are_refused_before_allocation() {
        for wire in [
            &b"*1\r\n$99999999999\r\n"[..],
            b"*1\r\n$-7\r\n",
            b"*4294967296\r\n",
            b"*1\r\n$abc\r\n",
            b"*1\r\n$3\r\nabcXY",
            b"*1\r\n*1\r\n*1\r\n:1\r\n",
            b"*1\r\n!oops\r\n",
        ] {
            assert!(
                parse(wire, &limits()).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn an_endless_line_is_refused_at_the_limit() {
        let wire = vec![b'a'; 70 << 10];
        assert!(parse(&wire, &limits()).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut wire = Vec::new();
            let len = (state % 40) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let pick = b"*$+-:\r\n0123456789-abc";
                wire.push(pick[(state % pick.len() as u64) as usize]);
            }
            let _ = parse(&wire, &limits());
        }
    }
}
