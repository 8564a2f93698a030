//! Jepsen/Knossos histories in EDN.
//!
//! Knossos and Jepsen write register histories as EDN: either one vector (or list) of maps,
//!
//! ```edn
//! [{:process 0, :type :invoke, :f :write, :value 1}
//!  {:process 0, :type :ok,     :f :write, :value 1}
//!  {:process 1, :type :invoke, :f :cas,   :value [1 2]}   ; expected 1, new 2
//!  {:process 1, :type :fail,   :f :cas,   :value [1 2]}]
//! ```
//!
//! or one map per line (Jepsen's `history.edn`). Each map becomes one [`Event`]:
//!
//! | EDN key | meaning |
//! |---|---|
//! | `:process` | an integer; events of other processes (`:nemesis`) are skipped |
//! | `:type` | `:invoke`, `:ok`, `:fail`, `:info` |
//! | `:f` | `:read`, `:write`, `:cas`, `:txn` (and quorate's `:get :put :delete :append`) |
//! | `:value` | `nil`, an integer, string or keyword; `[expected new]` for `:cas`; a set `#{...}` of siblings for a multi-value read |
//! | `:key` | optional: the key (any scalar) |
//! | `:time` | optional: nanoseconds (all events or none) |
//! | `:node` | optional: an integer node id (other values are ignored) |
//! | `:error` | optional: why a `:fail` or `:info` happened |
//!
//! Jepsen's own shapes are read too:
//!
//! - `jepsen.independent` tuples: without `:key`, a `:read`/`:write`/`:append` value
//!   `[k v]` (and a `:cas` value `[k [old new]]`) is key `k` and value `v`;
//! - `#jepsen.history.Op{...}` records are read as the map inside;
//! - Elle `:f :txn` operations of one micro-op become ordinary operations: `[:r k v]` a
//!   read, `[:w k v]` a write, `[:append k v]` an append of `"v;"` (a list read `[1 2]` is
//!   `"1;2;"`, as quorate's APPEND would return it). Longer transactions are refused here;
//!   [`crate::txn::parse_edn_txns`] reads them for the list-append check.
//!
//! Other keys (`:index`, ...) are ignored. Comments (`;`), commas, `#_` discards and tagged
//! literals (`#inst "..."`) are read as EDN defines them. The reader is small and hand-written
//! so that every error names its line.

use crate::history::{assign_times, Event, EventKind, HistoryError, OpValue};

/// An EDN value (only what histories need is kept apart; the rest is read and kept as text).
#[derive(Clone, PartialEq, Debug)]
pub enum Edn {
    Nil,
    Bool(bool),
    /// Integers, as written (without an `N` suffix), so big ones survive.
    Int(String),
    /// Floats, ratios, characters, symbols: kept as their text.
    Other(String),
    Str(String),
    Keyword(String),
    Vector(Vec<Edn>),
    List(Vec<Edn>),
    Set(Vec<Edn>),
    /// A map and the line it starts on.
    Map(Vec<(Edn, Edn)>, usize),
    Tagged(String, Box<Edn>),
}

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

type Parsed<T> = Result<T, HistoryError>;

impl Reader<'_> {
    fn error<T>(&self, message: impl Into<String>) -> Parsed<T> {
        Err(HistoryError {
            line: self.line,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skips whitespace, commas, comments and `#_` discarded forms.
    fn skip(&mut self) -> Parsed<()> {
        loop {
            match self.peek() {
                Some(c) if c.is_ascii_whitespace() || c == b',' => {
                    self.bump();
                }
                Some(b';') => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.bump();
                    }
                }
                Some(b'#') if self.text.get(self.at + 1) == Some(&b'_') => {
                    self.at += 2;
                    self.read()?;
                }
                _ => return Ok(()),
            }
        }
    }

    /// Reads the next form, or `None` at the end of the text.
    fn next_form(&mut self) -> Parsed<Option<Edn>> {
        self.skip()?;
        if self.peek().is_none() {
            return Ok(None);
        }
        self.read().map(Some)
    }

    fn read(&mut self) -> Parsed<Edn> {
        self.skip()?;
        let line = self.line;
        match self.peek() {
            None => self.error("the text ends inside a form"),
            Some(b'[') => Ok(Edn::Vector(self.sequence(b']')?)),
            Some(b'(') => Ok(Edn::List(self.sequence(b')')?)),
            Some(b'{') => {
                let items = self.sequence(b'}')?;
                if items.len() % 2 != 0 {
                    return Err(HistoryError {
                        line,
                        message: "a map needs an even number of forms (key value ...)".into(),
                    });
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut items = items.into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    pairs.push((k, v));
                }
                Ok(Edn::Map(pairs, line))
            }
            Some(b'#') => self.dispatch(),
            Some(b'"') => self.string(),
            Some(b')' | b']' | b'}') => self.error(format!(
                "unexpected closing {:?}",
                self.peek().map(char::from).unwrap_or_default()
            )),
            Some(b'\\') => {
                self.bump();
                let token = self.token();
                Ok(Edn::Other(format!("\\{token}")))
            }
            Some(_) => self.atom(),
        }
    }

    fn sequence(&mut self, close: u8) -> Parsed<Vec<Edn>> {
        let open_line = self.line;
        let open = self.bump().expect("an opening bracket");
        let mut items = Vec::new();
        loop {
            self.skip()?;
            match self.peek() {
                None => {
                    return Err(HistoryError {
                        line: open_line,
                        message: format!("{:?} opened here is never closed", char::from(open)),
                    })
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(_) => items.push(self.read()?),
            }
        }
    }

    fn dispatch(&mut self) -> Parsed<Edn> {
        self.bump(); // '#'
        if self.peek() == Some(b'{') {
            return Ok(Edn::Set(self.sequence(b'}')?));
        }
        let tag = self.token();
        if tag.is_empty() {
            return self.error("'#' must start a set, a discard or a tagged literal");
        }
        let value = self.read()?;
        Ok(Edn::Tagged(tag, Box::new(value)))
    }

    fn string(&mut self) -> Parsed<Edn> {
        let start_line = self.line;
        self.bump(); // opening quote
        let mut bytes = Vec::new();
        loop {
            match self.bump() {
                None => {
                    return Err(HistoryError {
                        line: start_line,
                        message: "a string opened here is never closed".into(),
                    })
                }
                Some(b'"') => break,
                Some(b'\\') => match self.bump() {
                    Some(b'n') => bytes.push(b'\n'),
                    Some(b't') => bytes.push(b'\t'),
                    Some(b'r') => bytes.push(b'\r'),
                    Some(c @ (b'"' | b'\\')) => bytes.push(c),
                    other => {
                        return self.error(format!(
                            "unknown escape \\{} in a string",
                            other.map(char::from).unwrap_or(' ')
                        ))
                    }
                },
                Some(c) => bytes.push(c),
            }
        }
        String::from_utf8(bytes)
            .map(Edn::Str)
            .or_else(|_| self.error("a string is not valid UTF-8"))
    }

    /// A run of symbol characters.
    fn token(&mut self) -> String {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| !(c.is_ascii_whitespace() || b",;()[]{}\"".contains(&c)))
        {
            self.bump();
        }
        String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
    }

    fn atom(&mut self) -> Parsed<Edn> {
        let token = self.token();
        if token.is_empty() {
            return self.error("unreadable character");
        }
        Ok(match token.as_str() {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            _ if token.starts_with(':') && token.len() > 1 => Edn::Keyword(token[1..].to_string()),
            _ if is_integer(&token) => {
                let digits = token.trim_end_matches('N').trim_start_matches('+');
                Edn::Int(digits.to_string())
            }
            _ => Edn::Other(token),
        })
    }
}

fn is_integer(token: &str) -> bool {
    let body = token.strip_suffix('N').unwrap_or(token);
    let digits = body.strip_prefix(['-', '+']).unwrap_or(body);
    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
}

/// Reads every top-level form of an EDN text.
pub fn read_all(text: &str) -> Result<Vec<Edn>, HistoryError> {
    let mut reader = Reader {
        text: text.as_bytes(),
        at: 0,
        line: 1,
    };
    let mut forms = Vec::new();
    while let Some(form) = reader.next_form()? {
        forms.push(form);
    }
    Ok(forms)
}

/// Parses an EDN history into events and the line each started on.
pub fn parse_edn(text: &str) -> Result<(Vec<Event>, Vec<usize>), HistoryError> {
    let maps = history_maps(text)?;
    let mut events = Vec::with_capacity(maps.len());
    let mut lines = Vec::with_capacity(maps.len());
    let mut times = Vec::with_capacity(maps.len());
    for (pairs, line) in &maps {
        let error = |message: String| HistoryError {
            line: *line,
            message,
        };
        if let Some((event, time)) = event_of(pairs).map_err(error)? {
            events.push(event);
            times.push((*line, time));
            lines.push(*line);
        }
    }
    assign_times(&mut events, &times)?;
    Ok((events, lines))
}

/// A map's key-value pairs.
pub(crate) type EdnMap = Vec<(Edn, Edn)>;

/// The maps of a history (one vector or list of maps, or one map per line; Jepsen's
/// `#jepsen.history.Op{...}` records are maps too), each with the line it starts on.
pub(crate) fn history_maps(text: &str) -> Result<Vec<(EdnMap, usize)>, HistoryError> {
    let forms = read_all(text)?;
    let forms: Vec<Edn> = match forms.as_slice() {
        [Edn::Vector(items)] | [Edn::List(items)] => items.clone(),
        _ => forms,
    };
    let mut maps = Vec::with_capacity(forms.len());
    for (index, form) in forms.into_iter().enumerate() {
        match form {
            Edn::Map(pairs, line) => maps.push((pairs, line)),
            Edn::Tagged(tag, inner) if tag.ends_with(".Op") && matches!(*inner, Edn::Map(..)) => {
                let Edn::Map(pairs, line) = *inner else {
                    unreachable!("matched a map")
                };
                maps.push((pairs, line));
            }
            _ => {
                return Err(HistoryError {
                    line: 1,
                    message: format!(
                        "form {} is not a map: a history is a vector of maps such as \
                         {{:process 0, :type :invoke, :f :read, :value nil}}",
                        index + 1
                    ),
                })
            }
        }
    }
    Ok(maps)
}

pub(crate) fn get<'a>(pairs: &'a [(Edn, Edn)], name: &str) -> Option<&'a Edn> {
    pairs
        .iter()
        .find(|(k, _)| matches!(k, Edn::Keyword(k) if k == name))
        .map(|(_, v)| v)
}

pub(crate) fn integer(value: &Edn, what: &str) -> Result<u64, String> {
    match value {
        Edn::Int(digits) => digits
            .parse()
            .map_err(|_| format!("{what} {digits} is not a non-negative 64-bit integer")),
        other => Err(format!("{what} must be an integer, found {}", show(other))),
    }
}

/// The `:process` of a map; `None` for non-client processes (the nemesis).
pub(crate) fn process_of(pairs: &[(Edn, Edn)]) -> Result<Option<u64>, String> {
    match get(pairs, "process") {
        Some(p @ Edn::Int(_)) => integer(p, ":process").map(Some),
        Some(_) => Ok(None),
        None => Err("missing :process".into()),
    }
}

/// The `:type` of a map.
pub(crate) fn kind_of(pairs: &[(Edn, Edn)]) -> Result<EventKind, String> {
    match get(pairs, "type") {
        Some(Edn::Keyword(k)) => match k.as_str() {
            "invoke" => Ok(EventKind::Invoke),
            "ok" => Ok(EventKind::Ok),
            "fail" => Ok(EventKind::Fail),
            "info" => Ok(EventKind::Info),
            other => Err(format!(
                ":type :{other}: expected :invoke, :ok, :fail or :info"
            )),
        },
        Some(other) => Err(format!(":type must be a keyword, found {}", show(other))),
        None => Err("missing :type".into()),
    }
}

/// Converts one map; `None` for events of non-client processes (the nemesis).
fn event_of(pairs: &[(Edn, Edn)]) -> Result<Option<(Event, Option<u64>)>, String> {
    let Some(process) = process_of(pairs)? else {
        return Ok(None);
    };
    let kind = kind_of(pairs)?;
    let f = match get(pairs, "f") {
        Some(Edn::Keyword(f)) => f.as_str(),
        Some(other) => return Err(format!(":f must be a keyword, found {}", show(other))),
        None => return Err("missing :f".into()),
    };
    let mut key = match get(pairs, "key") {
        None | Some(Edn::Nil) => None,
        Some(k) => {
            Some(scalar(k).ok_or_else(|| format!(":key must be a scalar, found {}", show(k)))?)
        }
    };
    let mut raw = get(pairs, "value").unwrap_or(&Edn::Nil);
    // jepsen.independent: the value is a [key value] tuple.
    if let (None, Edn::Vector(tuple)) = (&key, raw) {
        let inner_is_pair = matches!(&tuple.get(1), Some(Edn::Vector(p)) if p.len() == 2);
        if tuple.len() == 2 && f != "txn" && (f != "cas" || inner_is_pair) {
            key = Some(scalar(&tuple[0]).ok_or_else(|| {
                format!(
                    "an independent tuple's key must be a scalar, found {}",
                    show(&tuple[0])
                )
            })?);
            raw = &tuple[1];
        }
    }
    let value = if f == "txn" {
        let (mop_key, value) = crate::txn::single_mop(raw)?;
        key = Some(mop_key);
        value
    } else {
        op_value(f, raw)?
    };
    let time = get(pairs, "time")
        .map(|t| integer(t, ":time"))
        .transpose()?;
    let node = get(pairs, "node").and_then(|n| integer(n, ":node").ok());
    let error = get(pairs, "error").map(|e| scalar(e).unwrap_or_else(|| show(e)));
    let event = Event {
        process,
        kind,
        key,
        value,
        time: 0,
        node,
        error,
        mode: Default::default(),
    };
    Ok(Some((event, time)))
}

/// The text of a scalar value: integers and strings as written, keywords without the colon.
pub(crate) fn scalar(value: &Edn) -> Option<String> {
    match value {
        Edn::Int(t) | Edn::Str(t) | Edn::Keyword(t) | Edn::Other(t) => Some(t.clone()),
        Edn::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn optional(value: &Edn) -> Result<Option<String>, String> {
    match value {
        Edn::Nil => Ok(None),
        other => scalar(other)
            .map(Some)
            .ok_or_else(|| format!("expected a single value, found {}", show(other))),
    }
}

fn op_value(f: &str, value: &Edn) -> Result<OpValue, String> {
    let required = |v: &Edn| optional(v)?.ok_or_else(|| format!(":{f} needs a value, found nil"));
    match f {
        "read" | "get" => match value {
            Edn::Set(items) => Ok(OpValue::Siblings(
                items.iter().map(required).collect::<Result<_, _>>()?,
            )),
            other => Ok(OpValue::Get(optional(other)?)),
        },
        "write" | "put" => Ok(OpValue::Put(required(value)?)),
        "append" => Ok(OpValue::Append(required(value)?)),
        "delete" => Ok(OpValue::Delete),
        "cas" => match value {
            Edn::Vector(pair) | Edn::List(pair) if pair.len() == 2 => Ok(OpValue::Cas {
                expected: optional(&pair[0])?,
                new: required(&pair[1])?,
            }),
            other => Err(format!(":cas takes [expected new], found {}", show(other))),
        },
        other => Err(format!(
            "unknown :f :{other}: expected :read, :write, :cas or :txn (or :get :put :delete :append)"
        )),
    }
}

/// A short rendering of a value for error messages.
pub(crate) fn show(value: &Edn) -> String {
    match value {
        Edn::Nil => "nil".into(),
        Edn::Bool(b) => b.to_string(),
        Edn::Int(t) | Edn::Other(t) => t.clone(),
        Edn::Str(s) => format!("{s:?}"),
        Edn::Keyword(k) => format!(":{k}"),
        Edn::Vector(_) => "a vector".into(),
        Edn::List(_) => "a list".into(),
        Edn::Set(_) => "a set".into(),
        Edn::Map(..) => "a map".into(),
        Edn::Tagged(tag, _) => format!("#{tag} ..."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_knossos_register_history() {
        let text = r#"
; a CAS register, Knossos style
[{:process 0, :type :invoke, :f :write, :value 1}
 {:process 0, :type :ok, :f :write, :value 1}
 {:type :invoke, :process 1, :f :cas, :value [1 2]} ; keys in any order
 {:process 1 :type :fail :f :cas :value [1 2] :error :precondition-failed}
 {:process :nemesis, :type :info, :f :start-partition, :value nil}
 {:process 2, :type :invoke, :f :read, :value nil, :index 7}
 {:process 2, :type :ok, :f :read, :value #{"a" "b"}}
 #_{:process 9, :type :invoke, :f :read}
]"#;
        let (events, lines) = parse_edn(text).unwrap();
        assert_eq!(events.len(), 6);
        assert_eq!(lines, vec![3, 4, 5, 6, 8, 9]);
        assert_eq!(events[0].value, OpValue::Put("1".into()));
        assert_eq!(
            events[2].value,
            OpValue::Cas {
                expected: Some("1".into()),
                new: "2".into()
            }
        );
        assert_eq!(events[3].kind, EventKind::Fail);
        assert_eq!(events[3].error.as_deref(), Some("precondition-failed"));
        assert_eq!(events[4].value, OpValue::Get(None));
        assert_eq!(
            events[5].value,
            OpValue::Siblings(vec!["a".into(), "b".into()])
        );
        assert_eq!(events[5].time, 5, "without :time, order is time");
    }

    #[test]
    fn reads_one_map_per_line_with_times_keys_and_tags() {
        let text =
            "{:process 0, :type :invoke, :f :read, :key :x, :time 10, :at #inst \"2024-01-01\"}\n\
                    {:process 0, :type :ok, :f :read, :key :x, :value nil, :time 20}\n";
        let (events, _) = parse_edn(text).unwrap();
        assert_eq!(events[1].key.as_deref(), Some("x"));
        assert_eq!(events[1].time, 20);
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let cases = [
            (
                "[{:process 0, :type :invoke, :f :read}\n {:process 0 :type :ok :f :frob}]",
                2,
                "unknown :f",
            ),
            (
                "[{:process 0, :type :invoke, :f :read}\n {:process 0 :type}]",
                2,
                "even number",
            ),
            (
                "[{:process 0, :type :invoke,\n :f :read}",
                1,
                "never closed",
            ),
            ("[{:type :invoke, :f :read}]", 1, "missing :process"),
            ("[{:process 0, :type :begin, :f :read}]", 1, ":type :begin"),
            (
                "[{:process 0, :type :invoke, :f :cas, :value 3}]",
                1,
                "[expected new]",
            ),
            (
                "[{:process 0, :type :invoke, :f :write}]",
                1,
                "needs a value",
            ),
            ("[1 2]", 1, "not a map"),
            ("\n\n\"abc", 3, "never closed"),
            (
                "[{:process 0, :type :invoke, :f :read}}",
                1,
                "unexpected closing",
            ),
        ];
        for (text, line, fragment) in cases {
            let err = parse_edn(text).unwrap_err();
            assert_eq!(err.line, line, "{text}: {err}");
            assert!(err.message.contains(fragment), "{text}: {err}");
        }
    }
}
