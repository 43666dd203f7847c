//! JSONPath as Chaos Toolkit's `jsonpath` tolerance reads it: the grammar
//! and semantics of the `jsonpath2` library (0.4.5) chaostoolkit-lib uses,
//! which are not RFC 9535's (so no general-purpose crate fits); the `tests`
//! package's `ctk` test checks them against the real library. Supported:
//!
//! - `$`, then steps: `.name`, `.*`, `..name`, `..*`, `..[...]`, `[...]`;
//!   names are `[_A-Za-z][_A-Za-z0-9]*`, others go in brackets: `["a-b"]`;
//! - in brackets, comma-separated: `"name"` (double quotes only), an index
//!   (`0`, `-1`), a slice (`1:3`, `:2`, `::2`, `-2:`), `*`, and a filter
//!   `?(expression)`;
//! - `length()`, `keys()`, `values()`, `entries()` (as `.length()` or
//!   `[length()]`);
//! - filter expressions: paths from the current (`@`) or root (`$`) value,
//!   JSON literals, `=` `!=` `<` `<=` `>` `>=`, `and`, `or`, `not`, and
//!   parentheses. A lone path is true when it finds anything, a lone
//!   literal when Python's `bool()` of it is. As in jsonpath2,
//!   `or` binds tighter than `and`, and a comparison holds when any pair of
//!   found values does.
//!
//! jsonpath2's semantics, kept: a filter keeps or drops the value it is
//! applied to (`$.items[*][?(@.up = true)]` walks the items first; on an
//! object, `$.svc[?(@.up)]` tests `svc` itself); a slice is Python's
//! `range(start, end, step)` over indices, a negative end counted from the
//! end, a negative start too unless it is before the front (then 0), and
//! indices below 0 wrapping around.
//!
//! Refused, each with its own message: `charAt()`/`substring()`, computed
//! subscripts (`[@.i]`), single quotes, and the other dialects' `==`, `&&`,
//! `||`, `!` and `[?@...]`. Differences: `true`/`false` are not the numbers
//! 1/0 in comparisons; string escapes in paths are decoded (jsonpath2 keeps
//! them raw); an object's keys come in sorted order (serde_json's map), not
//! document order, for `*`, `..`, `keys()`, `values()` and `entries()`.

use std::borrow::Cow;

use serde_json::Value;

/// Longer paths are refused.
pub(crate) const MAX_PATH_CHARS: usize = 4096;
/// Nesting of parentheses, `not` and literals in filters.
const MAX_NESTING: usize = 32;
/// Values visited or produced while evaluating one path (filters included);
/// past it, the evaluation stops with an error instead of exhausting memory.
pub(crate) const MAX_VISITS: usize = 100_000;

/// A parsed path, from `$`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Child(Vec<Sel>),
    Descend(Vec<Sel>),
}

#[derive(Debug, Clone, PartialEq)]
enum Sel {
    Name(String),
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    All,
    Filter(Expr),
    Length,
    Keys,
    Values,
    Entries,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Exists(Rel),
    /// A lone literal: Python's truthiness, as jsonpath2 reads `?(true)`.
    Truthy(bool),
    Cmp(Operand, Op, Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Path(Rel),
    Value(Value),
}

/// A path inside a filter: from the root (`$`) or the current value (`@`).
#[derive(Debug, Clone, PartialEq)]
struct Rel {
    from_root: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Root,
    Current,
    DotDot,
    Dot,
    Star,
    LBracket,
    RBracket,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Question,
    Op(Op),
    Id(String),
    Str(String),
    Num(String),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Root => "'$'".into(),
            Tok::Current => "'@'".into(),
            Tok::DotDot => "'..'".into(),
            Tok::Dot => "'.'".into(),
            Tok::Star => "'*'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::Comma => "','".into(),
            Tok::Colon => "':'".into(),
            Tok::Question => "'?'".into(),
            Tok::Op(op) => format!("'{}'", op_text(*op)),
            Tok::Id(s) => format!("'{s}'"),
            Tok::Str(s) => format!("the string \"{s}\""),
            Tok::Num(n) => format!("the number {n}"),
            Tok::End => "the end of the path".into(),
        }
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
    }
}

/// A parse error: what, and at which character (1-based).
struct Error {
    at: usize,
    msg: String,
}

fn err<T>(at: usize, msg: impl Into<String>) -> Result<T, Error> {
    Err(Error {
        at,
        msg: msg.into(),
    })
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, Error> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        let next = chars.get(i + 1).copied();
        let (tok, len) = match c {
            ' ' | '\t' | '\n' | '\r' => {
                i += 1;
                continue;
            }
            '$' => (Tok::Root, 1),
            '@' => (Tok::Current, 1),
            '.' if next == Some('.') => (Tok::DotDot, 2),
            '.' => (Tok::Dot, 1),
            '*' => (Tok::Star, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '{' => (Tok::LBrace, 1),
            '}' => (Tok::RBrace, 1),
            ',' => (Tok::Comma, 1),
            ':' => (Tok::Colon, 1),
            '?' => (Tok::Question, 1),
            '=' if next == Some('=') => {
                return err(at, "equality is '=' in Chaos Toolkit's JSONPath (jsonpath2), not '=='")
            }
            '=' => (Tok::Op(Op::Eq), 1),
            '!' if next == Some('=') => (Tok::Op(Op::Ne), 2),
            '!' => return err(at, "negation is 'not', not '!'"),
            '<' if next == Some('=') => (Tok::Op(Op::Le), 2),
            '<' => (Tok::Op(Op::Lt), 1),
            '>' if next == Some('=') => (Tok::Op(Op::Ge), 2),
            '>' => (Tok::Op(Op::Gt), 1),
            '&' => return err(at, "conjunction is 'and', not '&&'"),
            '|' => return err(at, "disjunction is 'or', not '||'"),
            '\'' => {
                return err(
                    at,
                    "strings take double quotes in Chaos Toolkit's JSONPath (jsonpath2): [\"name\"], not ['name']",
                )
            }
            '"' => {
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return err(at, "unterminated string"),
                        Some('\\') => j += 2,
                        Some('"') => break,
                        Some(_) => j += 1,
                    }
                }
                let raw: String = chars[i..=j].iter().collect();
                let s: String = serde_json::from_str(&raw)
                    .map_err(|e| Error {
                        at,
                        msg: format!("invalid string {raw}: {e}"),
                    })?;
                (Tok::Str(s), j + 1 - i)
            }
            '-' | '0'..='9' => {
                let mut j = i;
                if c == '-' {
                    j += 1;
                    if !chars.get(j).is_some_and(char::is_ascii_digit) {
                        let after_name = matches!(toks.last(), Some((Tok::Id(_), _)));
                        return err(
                            at,
                            if after_name {
                                "'-' cannot be part of a bare name: write [\"a-b\"] instead of .a-b"
                            } else {
                                "'-' must start a number"
                            },
                        );
                    }
                }
                let digits = |j: &mut usize| {
                    while chars.get(*j).is_some_and(char::is_ascii_digit) {
                        *j += 1;
                    }
                };
                if chars.get(j) == Some(&'0') {
                    j += 1;
                } else {
                    digits(&mut j);
                }
                if chars.get(j) == Some(&'.') && chars.get(j + 1).is_some_and(char::is_ascii_digit)
                {
                    j += 1;
                    digits(&mut j);
                }
                if matches!(chars.get(j), Some('e' | 'E')) {
                    let mut k = j + 1;
                    if matches!(chars.get(k), Some('+' | '-')) {
                        k += 1;
                    }
                    if chars.get(k).is_some_and(char::is_ascii_digit) {
                        j = k;
                        digits(&mut j);
                    }
                }
                (Tok::Num(chars[i..j].iter().collect()), j - i)
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let mut j = i;
                while chars
                    .get(j)
                    .is_some_and(|c| *c == '_' || c.is_ascii_alphanumeric())
                {
                    j += 1;
                }
                (Tok::Id(chars[i..j].iter().collect()), j - i)
            }
            other => return err(at, format!("unexpected character '{other}'")),
        };
        toks.push((tok, at));
        i += len;
    }
    toks.push((Tok::End, chars.len() + 1));
    Ok(toks)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn at(&self) -> usize {
        self.toks[self.pos].1
    }

    fn bump(&mut self) -> Tok {
        let t = self.toks[self.pos].0.clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), Error> {
        if *self.peek() == want {
            self.bump();
            Ok(())
        } else {
            err(
                self.at(),
                format!("expected {what}, found {}", self.peek().describe()),
            )
        }
    }

    fn steps(&mut self, depth: usize) -> Result<Vec<Step>, Error> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Tok::DotDot => {
                    self.bump();
                    let sels = match self.peek() {
                        Tok::LBracket => self.brackets(depth)?,
                        Tok::Id(_) | Tok::Star => vec![self.bareword()?],
                        other => {
                            return err(
                                self.at(),
                                format!(
                                    "expected a name, '*' or '[' after '..', found {}",
                                    other.describe()
                                ),
                            )
                        }
                    };
                    steps.push(Step::Descend(sels));
                }
                Tok::Dot => {
                    self.bump();
                    let sel = match self.peek() {
                        Tok::Id(_) | Tok::Star => self.bareword()?,
                        Tok::Num(n) => {
                            return err(
                                self.at(),
                                format!("an index goes in brackets: write [{n}] instead of .{n}"),
                            )
                        }
                        Tok::Str(_) => return err(
                            self.at(),
                            "a quoted name goes in brackets: write [\"name\"] instead of .\"name\"",
                        ),
                        other => {
                            return err(
                                self.at(),
                                format!(
                                    "expected a name or '*' after '.', found {}",
                                    other.describe()
                                ),
                            )
                        }
                    };
                    steps.push(Step::Child(vec![sel]));
                }
                Tok::LBracket => {
                    let sels = self.brackets(depth)?;
                    steps.push(Step::Child(sels));
                }
                _ => return Ok(steps),
            }
        }
    }

    /// `name`, `name()` or `*` after `.` or `..`.
    fn bareword(&mut self) -> Result<Sel, Error> {
        let at = self.at();
        match self.bump() {
            Tok::Star => Ok(Sel::All),
            Tok::Id(name) => {
                if *self.peek() == Tok::LParen {
                    self.call(&name, at)
                } else {
                    Ok(Sel::Name(name))
                }
            }
            other => err(at, format!("expected a name, found {}", other.describe())),
        }
    }

    /// `name(` has been seen (the `(` is next).
    fn call(&mut self, name: &str, at: usize) -> Result<Sel, Error> {
        let sel = match name {
            "length" => Sel::Length,
            "keys" => Sel::Keys,
            "values" => Sel::Values,
            "entries" => Sel::Entries,
            "charAt" | "substring" => {
                return err(
                    at,
                    format!(
                    "{name}() is not supported (supported: length(), keys(), values(), entries())"
                ),
                )
            }
            other => {
                return err(
                    at,
                    format!(
                    "unknown function {other}() (supported: length(), keys(), values(), entries())"
                ),
                )
            }
        };
        self.bump(); // (
        if *self.peek() != Tok::RParen {
            return err(self.at(), format!("{name}() takes no arguments"));
        }
        self.bump();
        Ok(sel)
    }

    fn brackets(&mut self, depth: usize) -> Result<Vec<Sel>, Error> {
        self.expect(Tok::LBracket, "'['")?;
        let mut sels = vec![self.subscript(depth)?];
        loop {
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                    sels.push(self.subscript(depth)?);
                }
                Tok::RBracket => {
                    self.bump();
                    return Ok(sels);
                }
                other => {
                    return err(
                        self.at(),
                        format!("expected ',' or ']', found {}", other.describe()),
                    )
                }
            }
        }
    }

    fn subscript(&mut self, depth: usize) -> Result<Sel, Error> {
        let at = self.at();
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(Sel::Name(s))
            }
            Tok::Num(n) => {
                self.bump();
                let start = index(&n, at)?;
                if *self.peek() == Tok::Colon {
                    self.slice(Some(start))
                } else {
                    Ok(Sel::Index(start))
                }
            }
            Tok::Colon => self.slice(None),
            Tok::Star => {
                self.bump();
                Ok(Sel::All)
            }
            Tok::Question => {
                self.bump();
                if *self.peek() != Tok::LParen {
                    return err(
                        self.at(),
                        "a filter is written ?(expression) in Chaos Toolkit's JSONPath (jsonpath2)",
                    );
                }
                self.bump();
                let e = self.expr(depth + 1)?;
                self.expect(Tok::RParen, "')' closing the filter")?;
                Ok(Sel::Filter(e))
            }
            Tok::Root | Tok::Current => err(
                at,
                "computed subscripts ([@...] or [$...]) are not supported",
            ),
            Tok::Id(name) => {
                self.bump();
                if *self.peek() == Tok::LParen {
                    self.call(&name, at)
                } else {
                    err(
                        at,
                        format!(
                            "a name in brackets takes double quotes: [\"{name}\"] (or .{name})"
                        ),
                    )
                }
            }
            other => err(
                at,
                format!(
                    "expected a \"name\", an index, a slice, '*' or ?(filter), found {}",
                    other.describe()
                ),
            ),
        }
    }

    /// `[start:end:step]` from the first `:`.
    fn slice(&mut self, start: Option<i64>) -> Result<Sel, Error> {
        self.expect(Tok::Colon, "':'")?;
        let mut end = None;
        let mut step = None;
        if let Tok::Num(n) = self.peek().clone() {
            end = Some(index(&n, self.at())?);
            self.bump();
        }
        if *self.peek() == Tok::Colon {
            self.bump();
            if let Tok::Num(n) = self.peek().clone() {
                let at = self.at();
                let s = index(&n, at)?;
                if s == 0 {
                    return err(at, "a slice's step must not be 0");
                }
                step = Some(s);
                self.bump();
            }
        }
        Ok(Sel::Slice(start, end, step))
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, Error> {
        if depth > MAX_NESTING {
            return err(
                self.at(),
                format!("a filter nests more than {MAX_NESTING} deep"),
            );
        }
        // jsonpath2: andExpression = orExpression ('and' andExpression)?
        let mut parts = vec![self.or_expr(depth)?];
        while matches!(self.peek(), Tok::Id(k) if k == "and") {
            self.bump();
            parts.push(self.or_expr(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn or_expr(&mut self, depth: usize) -> Result<Expr, Error> {
        let mut parts = vec![self.not_expr(depth)?];
        while matches!(self.peek(), Tok::Id(k) if k == "or") {
            self.bump();
            parts.push(self.not_expr(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn not_expr(&mut self, depth: usize) -> Result<Expr, Error> {
        if depth > MAX_NESTING {
            return err(
                self.at(),
                format!("a filter nests more than {MAX_NESTING} deep"),
            );
        }
        match self.peek() {
            Tok::Id(k) if k == "not" => {
                self.bump();
                Ok(Expr::Not(Box::new(self.not_expr(depth + 1)?)))
            }
            Tok::LParen => {
                self.bump();
                let e = self.expr(depth + 1)?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            _ => {
                let left = self.operand(depth)?;
                if let Tok::Op(op) = *self.peek() {
                    self.bump();
                    let right = self.operand(depth)?;
                    Ok(Expr::Cmp(left, op, right))
                } else {
                    match left {
                        Operand::Path(rel) => Ok(Expr::Exists(rel)),
                        Operand::Value(v) => Ok(Expr::Truthy(truthy(&v))),
                    }
                }
            }
        }
    }

    fn operand(&mut self, depth: usize) -> Result<Operand, Error> {
        match self.peek() {
            Tok::Root | Tok::Current => {
                let from_root = *self.peek() == Tok::Root;
                self.bump();
                let steps = self.steps(depth)?;
                Ok(Operand::Path(Rel { from_root, steps }))
            }
            _ => Ok(Operand::Value(self.value(depth)?)),
        }
    }

    /// A JSON literal.
    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_NESTING {
            return err(
                self.at(),
                format!("a filter nests more than {MAX_NESTING} deep"),
            );
        }
        let at = self.at();
        match self.bump() {
            Tok::Str(s) => Ok(Value::String(s)),
            Tok::Num(n) => serde_json::from_str::<serde_json::Number>(&n)
                .map(Value::Number)
                .or_else(|_| err(at, format!("invalid number {n}"))),
            Tok::Id(k) if k == "true" => Ok(Value::Bool(true)),
            Tok::Id(k) if k == "false" => Ok(Value::Bool(false)),
            Tok::Id(k) if k == "null" => Ok(Value::Null),
            Tok::LBracket => {
                let mut items = Vec::new();
                if *self.peek() == Tok::RBracket {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.bump() {
                        Tok::Comma => {}
                        Tok::RBracket => return Ok(Value::Array(items)),
                        other => {
                            return err(
                                self.toks[self.pos.saturating_sub(1)].1,
                                format!(
                                    "expected ',' or ']' in a list, found {}",
                                    other.describe()
                                ),
                            )
                        }
                    }
                }
            }
            Tok::LBrace => {
                let mut map = serde_json::Map::new();
                if *self.peek() == Tok::RBrace {
                    self.bump();
                    return Ok(Value::Object(map));
                }
                loop {
                    let key_at = self.at();
                    let key = match self.bump() {
                        Tok::Str(s) => s,
                        other => {
                            return err(
                                key_at,
                                format!(
                                    "expected a \"key\" in an object, found {}",
                                    other.describe()
                                ),
                            )
                        }
                    };
                    self.expect(Tok::Colon, "':' after an object key")?;
                    map.insert(key, self.value(depth + 1)?);
                    let sep_at = self.at();
                    match self.bump() {
                        Tok::Comma => {}
                        Tok::RBrace => return Ok(Value::Object(map)),
                        other => {
                            return err(
                                sep_at,
                                format!(
                                    "expected ',' or '}}' in an object, found {}",
                                    other.describe()
                                ),
                            )
                        }
                    }
                }
            }
            other => err(
                at,
                format!(
                    "expected a path (@... or $...) or a JSON value, found {}",
                    other.describe()
                ),
            ),
        }
    }
}

fn index(n: &str, at: usize) -> Result<i64, Error> {
    if n.contains(['.', 'e', 'E']) {
        return err(at, format!("an index must be a whole number, found {n}"));
    }
    n.parse::<i64>()
        .or_else(|_| err(at, format!("index {n} is out of range")))
}

impl Path {
    /// Parse a path; the error says what is wrong and at which character.
    pub(crate) fn parse(text: &str) -> Result<Path, String> {
        let chars = text.chars().count();
        if chars > MAX_PATH_CHARS {
            return Err(format!(
                "'path' is {chars} characters long, over the {MAX_PATH_CHARS}-character limit"
            ));
        }
        Self::parse_inner(text).map_err(|e| {
            format!(
                "'path' is not a valid JSONPath: {}, at character {} of \"{text}\"",
                e.msg, e.at
            )
        })
    }

    fn parse_inner(text: &str) -> Result<Path, Error> {
        let toks = lex(text)?;
        let mut p = Parser { toks, pos: 0 };
        match p.peek() {
            Tok::Root => {
                p.bump();
            }
            Tok::End => return err(1, "the path is empty"),
            other => {
                return err(
                    p.at(),
                    format!("a path starts with '$', found {}", other.describe()),
                )
            }
        }
        let steps = p.steps(0)?;
        match p.peek() {
            Tok::End => Ok(Path { steps }),
            other => err(
                p.at(),
                format!(
                    "expected '.', '..', '[' or the end of the path, found {}",
                    other.describe()
                ),
            ),
        }
    }

    /// The values the path finds in `doc`, in jsonpath2's order. Errs when
    /// the evaluation would visit more than [`MAX_VISITS`] values.
    pub(crate) fn find<'a>(&self, doc: &'a Value) -> Result<Vec<Cow<'a, Value>>, String> {
        let mut budget = MAX_VISITS;
        run(&self.steps, Cow::Borrowed(doc), doc, &mut budget)
    }
}

fn spend(budget: &mut usize, n: usize) -> Result<(), String> {
    if *budget < n {
        return Err(format!(
            "the path visits more than {MAX_VISITS} values; narrow it"
        ));
    }
    *budget -= n;
    Ok(())
}

fn run<'a>(
    steps: &[Step],
    start: Cow<'a, Value>,
    root: &'a Value,
    budget: &mut usize,
) -> Result<Vec<Cow<'a, Value>>, String> {
    let mut current = vec![start];
    for step in steps {
        let mut next = Vec::new();
        for node in &current {
            match (step, node) {
                (Step::Child(sels), Cow::Borrowed(v)) => {
                    for s in sels {
                        select(v, s, root, &mut next, budget, &Cow::Borrowed)?;
                    }
                }
                (Step::Child(sels), Cow::Owned(v)) => {
                    for s in sels {
                        select(v, s, root, &mut next, budget, &|c: &Value| {
                            Cow::Owned(c.clone())
                        })?;
                    }
                }
                (Step::Descend(sels), Cow::Borrowed(v)) => {
                    descend(v, sels, root, &mut next, budget, &Cow::Borrowed)?
                }
                (Step::Descend(sels), Cow::Owned(v)) => {
                    descend(v, sels, root, &mut next, budget, &|c: &Value| {
                        Cow::Owned(c.clone())
                    })?
                }
            }
        }
        current = next;
    }
    Ok(current)
}

/// `..sels`: the selectors at `start`, then at each descendant, depth first.
fn descend<'v, 'a: 'v>(
    start: &'v Value,
    sels: &[Sel],
    root: &'a Value,
    out: &mut Vec<Cow<'a, Value>>,
    budget: &mut usize,
    wrap: &dyn Fn(&'v Value) -> Cow<'a, Value>,
) -> Result<(), String> {
    let mut stack = vec![start];
    while let Some(v) = stack.pop() {
        spend(budget, 1)?;
        for s in sels {
            select(v, s, root, out, budget, wrap)?;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(map) => stack.extend(sorted(map).into_iter().map(|(_, v)| v).rev()),
            _ => {}
        }
    }
    Ok(())
}

fn select<'v, 'a: 'v>(
    v: &'v Value,
    sel: &Sel,
    root: &'a Value,
    out: &mut Vec<Cow<'a, Value>>,
    budget: &mut usize,
    wrap: &dyn Fn(&'v Value) -> Cow<'a, Value>,
) -> Result<(), String> {
    let before = out.len();
    match sel {
        Sel::Name(name) => {
            if let Some(c) = v.as_object().and_then(|m| m.get(name)) {
                out.push(wrap(c));
            }
        }
        Sel::Index(i) => {
            if let Some(items) = v.as_array() {
                if let Some(c) = at_index(items, *i as i128) {
                    out.push(wrap(c));
                }
            }
        }
        Sel::Slice(start, end, step) => {
            if let Some(items) = v.as_array() {
                for i in slice_indices(items.len(), *start, *end, *step) {
                    if let Some(c) = at_index(items, i) {
                        spend(budget, 1)?;
                        out.push(wrap(c));
                    }
                }
            }
        }
        Sel::All => match v {
            Value::Array(items) => out.extend(items.iter().map(wrap)),
            Value::Object(map) => out.extend(sorted(map).into_iter().map(|(_, v)| wrap(v))),
            _ => {}
        },
        Sel::Filter(e) => {
            if eval(e, root, v, budget)? {
                out.push(wrap(v));
            }
        }
        Sel::Length => match v {
            Value::Array(items) => out.push(Cow::Owned(items.len().into())),
            Value::String(s) => out.push(Cow::Owned(s.chars().count().into())),
            _ => {}
        },
        Sel::Keys => {
            if let Some(map) = v.as_object() {
                out.push(Cow::Owned(Value::Array(
                    sorted(map)
                        .into_iter()
                        .map(|(k, _)| Value::String(k.clone()))
                        .collect(),
                )));
            }
        }
        Sel::Values => {
            if let Some(map) = v.as_object() {
                out.push(Cow::Owned(Value::Array(
                    sorted(map).into_iter().map(|(_, v)| v.clone()).collect(),
                )));
            }
        }
        Sel::Entries => {
            if let Some(map) = v.as_object() {
                out.push(Cow::Owned(Value::Array(
                    sorted(map)
                        .into_iter()
                        .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), v.clone()]))
                        .collect(),
                )));
            }
        }
    }
    spend(budget, out.len() - before)
}

fn at_index(items: &[Value], i: i128) -> Option<&Value> {
    let len = items.len() as i128;
    let i = if i < 0 { i + len } else { i };
    if (0..len).contains(&i) {
        items.get(i as usize)
    } else {
        None
    }
}

/// jsonpath2's slice: Python's `range(start, end, step)` with negative
/// bounds counted from the end, then each index read as [`at_index`] does
/// (so a range that runs below 0 wraps around). Only indices that can hit
/// an item (`-len..len`) are produced.
fn slice_indices(
    len: usize,
    start: Option<i64>,
    end: Option<i64>,
    step: Option<i64>,
) -> impl Iterator<Item = i128> {
    let len = len as i128;
    // jsonpath2 0.4.5: a negative start past the front is 0; a negative
    // end is counted from the end, however far.
    let from = match start.map(i128::from) {
        Some(s) if s < 0 && -s < len => s + len,
        Some(s) if s < 0 => 0,
        Some(s) => s,
        None => 0,
    };
    let to = match end.map(i128::from) {
        Some(e) if e < 0 => e + len,
        Some(e) => e,
        None => len,
    };
    let step = step.unwrap_or(1) as i128;
    let (first, stop) = if step > 0 {
        // Skip ahead to the first index ≥ -len on the same stride.
        let lo = -len;
        let first = if from < lo {
            from + (lo - from + step - 1) / step * step
        } else {
            from
        };
        (first, to.min(len))
    } else {
        let hi = len - 1;
        let s = -step;
        let first = if from > hi {
            from - (from - hi + s - 1) / s * s
        } else {
            from
        };
        (first, to.max(-len - 1))
    };
    let mut i = first;
    std::iter::from_fn(move || {
        let more = if step > 0 { i < stop } else { i > stop };
        if !more {
            return None;
        }
        let here = i;
        i += step;
        Some(here)
    })
}

fn eval(e: &Expr, root: &Value, cur: &Value, budget: &mut usize) -> Result<bool, String> {
    Ok(match e {
        Expr::And(parts) => {
            for p in parts {
                if !eval(p, root, cur, budget)? {
                    return Ok(false);
                }
            }
            true
        }
        Expr::Or(parts) => {
            for p in parts {
                if eval(p, root, cur, budget)? {
                    return Ok(true);
                }
            }
            false
        }
        Expr::Not(inner) => !eval(inner, root, cur, budget)?,
        Expr::Exists(rel) => !resolve(rel, root, cur, budget)?.is_empty(),
        Expr::Truthy(b) => *b,
        Expr::Cmp(l, op, r) => {
            let left = operand(l, root, cur, budget)?;
            let right = operand(r, root, cur, budget)?;
            left.iter()
                .any(|a| right.iter().any(|b| compare(a, *op, b)))
        }
    })
}

fn resolve<'v>(
    rel: &Rel,
    root: &'v Value,
    cur: &'v Value,
    budget: &mut usize,
) -> Result<Vec<Cow<'v, Value>>, String> {
    let start = if rel.from_root { root } else { cur };
    run(&rel.steps, Cow::Borrowed(start), root, budget)
}

fn operand<'v>(
    o: &'v Operand,
    root: &'v Value,
    cur: &'v Value,
    budget: &mut usize,
) -> Result<Vec<Cow<'v, Value>>, String> {
    match o {
        Operand::Path(rel) => resolve(rel, root, cur, budget),
        Operand::Value(v) => Ok(vec![Cow::Borrowed(v)]),
    }
}

fn compare(a: &Value, op: Op, b: &Value) -> bool {
    match op {
        Op::Eq => py_eq(a, b),
        Op::Ne => !py_eq(a, b),
        _ => match number_order(a, b) {
            Some(ord) => match op {
                Op::Lt => ord.is_lt(),
                Op::Le => ord.is_le(),
                Op::Gt => ord.is_gt(),
                Op::Ge => ord.is_ge(),
                Op::Eq | Op::Ne => unreachable!("handled above"),
            },
            // jsonpath2 orders numbers only.
            None => false,
        },
    }
}

/// Python's `bool()` of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `==` on JSON values: numbers by value (1 == 1.0), lists and
/// objects item by item. Unlike Python, `true` is not `1`.
pub(crate) fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => number_order(a, b).is_some_and(|o| o.is_eq()),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| py_eq(p, q)))
        }
        _ => a == b,
    }
}

fn number_order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    let (Value::Number(x), Value::Number(y)) = (a, b) else {
        return None;
    };
    let int = |n: &serde_json::Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(x), int(y)) {
        (Some(p), Some(q)) => Some(p.cmp(&q)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// An object's entries by key: the same order whichever map serde_json
/// was built with (other crates of a build may turn on `preserve_order`).
fn sorted(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, doc: Value) -> Vec<Value> {
        Path::parse(path)
            .unwrap()
            .find(&doc)
            .unwrap()
            .into_iter()
            .map(Cow::into_owned)
            .collect()
    }

    fn refused(path: &str) -> String {
        Path::parse(path).unwrap_err()
    }

    #[test]
    fn names_indices_wildcards() {
        let doc = json!({"a": {"b": [1, 2, 3]}, "c-d": 4});
        assert_eq!(find("$.a.b[0]", doc.clone()), vec![json!(1)]);
        assert_eq!(find("$.a.b[-1]", doc.clone()), vec![json!(3)]);
        assert_eq!(find("$.a.b[5]", doc.clone()), Vec::<Value>::new());
        assert_eq!(
            find("$.a.b[*]", doc.clone()),
            vec![json!(1), json!(2), json!(3)]
        );
        assert_eq!(find("$[\"c-d\"]", doc.clone()), vec![json!(4)]);
        assert_eq!(find("$.a.b[0,2]", doc.clone()), vec![json!(1), json!(3)]);
        assert_eq!(find("$", doc.clone()), vec![doc.clone()]);
        assert_eq!(find(" $ . a . b [ 1 ] ", doc.clone()), vec![json!(2)]);
        assert_eq!(find("$.nope", doc), Vec::<Value>::new());
    }

    #[test]
    fn slices_follow_python_range() {
        let doc = json!([0, 1, 2, 3, 4]);
        assert_eq!(find("$[1:3]", doc.clone()), vec![json!(1), json!(2)]);
        assert_eq!(find("$[:2]", doc.clone()), vec![json!(0), json!(1)]);
        assert_eq!(find("$[-2:]", doc.clone()), vec![json!(3), json!(4)]);
        assert_eq!(
            find("$[::2]", doc.clone()),
            vec![json!(0), json!(2), json!(4)]
        );
        assert_eq!(
            find("$[3:0:-1]", doc.clone()),
            vec![json!(3), json!(2), json!(1)]
        );
        assert_eq!(find("$[0:1000000000000]", doc.clone()).len(), 5);
        // range(0, 5, -1) is empty, as in jsonpath2.
        assert_eq!(find("$[::-1]", doc.clone()), Vec::<Value>::new());
        // A start before the front is 0 (jsonpath2 0.4.5).
        assert_eq!(find("$[-7:2]", json!([0, 1, 2])), vec![json!(0), json!(1)]);
        assert_eq!(
            find("$[9:0:-1]", doc.clone()),
            vec![json!(4), json!(3), json!(2), json!(1)]
        );
        // range(2, -7, -1) runs below 0, and negative indices wrap around.
        assert_eq!(
            find("$[2:-10:-1]", json!([0, 1, 2])),
            vec![json!(2), json!(1), json!(0), json!(2), json!(1), json!(0)]
        );
        assert!(refused("$[::0]").contains("step must not be 0"));
    }

    #[test]
    fn descendants_depth_first() {
        let doc = json!({"a": {"x": 1, "b": {"x": 2}}, "x": 0});
        assert_eq!(
            find("$..x", doc.clone()),
            vec![json!(0), json!(1), json!(2)]
        );
        assert_eq!(find("$..b.x", doc.clone()), vec![json!(2)]);
        assert_eq!(find("$..[\"x\"]", doc).len(), 3);
    }

    #[test]
    fn filters_apply_to_the_value_itself_as_in_jsonpath2() {
        // chaostoolkit-lib's own test cases.
        let doc = json!({"foo": [{"baz": 1}, {"baz": 2}]});
        assert_eq!(find("$.foo.*[?(@.baz)]", doc.clone()).len(), 2);
        assert_eq!(
            find("$.foo.*[?(@.baz=2)]", doc.clone()),
            vec![json!({"baz": 2})]
        );
        assert_eq!(find("$.notsofoo.*[?(@.baz)].baz", doc), Vec::<Value>::new());
        let doc = json!({"foo": {"baz": "hello"}});
        assert_eq!(
            find("$.foo[?(@.baz)].baz", doc.clone()),
            vec![json!("hello")]
        );
        assert_eq!(find("$.foo[?(@.baz=\"hello\")]", doc.clone()).len(), 1);
        assert_eq!(find("$.foo[?(@.baz=\"bonjour\")]", doc).len(), 0);
    }

    #[test]
    fn filter_operators() {
        let doc = json!({"items": [
            {"n": 1, "up": true, "name": "a"},
            {"n": 5, "up": false, "name": "b"},
            {"n": 9.5, "name": "c"}
        ]});
        let names = |p: &str| -> Vec<Value> {
            find(p, doc.clone())
                .into_iter()
                .map(|v| v["name"].clone())
                .collect()
        };
        assert_eq!(
            names("$.items[*][?(@.n > 1)]"),
            vec![json!("b"), json!("c")]
        );
        assert_eq!(
            names("$.items[*][?(@.n >= 5 and @.n <= 5)]"),
            vec![json!("b")]
        );
        assert_eq!(
            names("$.items[*][?(@.n < 2 or @.n > 9)]"),
            vec![json!("a"), json!("c")]
        );
        assert_eq!(names("$.items[*][?(not @.up)]"), vec![json!("c")]);
        assert_eq!(names("$.items[*][?(@.up = false)]"), vec![json!("b")]);
        assert_eq!(
            names("$.items[*][?(@.n != 1)]"),
            vec![json!("b"), json!("c")]
        );
        assert_eq!(names("$.items[*][?(@.n = 1.0)]"), vec![json!("a")]);
        assert_eq!(
            names("$.items[*][?(@.name = $.items[2].name)]"),
            vec![json!("c")]
        );
        assert_eq!(names("$.items[*][?((@.n = 1))]"), vec![json!("a")]);
        // Strings do not order; true is not 1.
        assert_eq!(names("$.items[*][?(@.name < \"z\")]"), Vec::<Value>::new());
        assert_eq!(names("$.items[*][?(@.up = 1)]"), Vec::<Value>::new());
        assert_eq!(
            names("$.items[*][?(@ = {\"n\": 5, \"up\": false, \"name\": \"b\"})]"),
            vec![json!("b")]
        );
    }

    #[test]
    fn functions() {
        let doc = json!({"l": [1, 2], "s": "héllo", "o": {"b": 2, "a": 1}});
        assert_eq!(find("$.l.length()", doc.clone()), vec![json!(2)]);
        assert_eq!(find("$.s.length()", doc.clone()), vec![json!(5)]);
        assert_eq!(find("$.o.keys()", doc.clone()), vec![json!(["a", "b"])]);
        assert_eq!(find("$.o.values()", doc.clone()), vec![json!([1, 2])]);
        assert_eq!(
            find("$.o.entries()", doc.clone()),
            vec![json!([["a", 1], ["b", 2]])]
        );
        assert_eq!(find("$.o[keys()][0]", doc.clone()), vec![json!("a")]);
        assert_eq!(find("$.l[?(@.length() = 2)]", doc).len(), 1);
    }

    #[test]
    fn errors_name_the_problem_and_the_character() {
        assert_eq!(
            refused("$.foo[?(@.x == 1)]"),
            "'path' is not a valid JSONPath: equality is '=' in Chaos Toolkit's JSONPath (jsonpath2), not '==', at character 13 of \"$.foo[?(@.x == 1)]\""
        );
        assert!(refused("$['a']").contains("double quotes"));
        assert!(refused("$.a-b").contains("write [\"a-b\"]"));
        assert!(refused("foo.bar").contains("a path starts with '$', found 'foo', at character 1"));
        assert!(refused("").contains("the path is empty"));
        assert!(
            refused("$.").contains("expected a name or '*' after '.', found the end of the path")
        );
        assert!(refused("$[0").contains("expected ',' or ']'"));
        assert!(refused("$.a[?@.b]").contains("?(expression)"));
        assert!(refused("$.a[?(@.b && @.c)]").contains("'and'"));
        assert!(refused("$.a[?(@.b || @.c)]").contains("'or'"));
        assert!(refused("$.a[?(!@.b)]").contains("'not'"));
        assert!(refused("$.a[name]").contains("[\"name\"]"));
        assert!(refused("$.a[@.i]").contains("computed subscripts"));
        assert!(refused("$.a.charAt(1)").contains("charAt() is not supported"));
        assert!(refused("$.a.frob()").contains("unknown function frob()"));
        assert!(refused("$.a.length(1)").contains("takes no arguments"));
        assert!(refused("$.a[1.5]").contains("whole number"));
        assert!(refused("$.a[99999999999999999999]").contains("out of range"));
        // A lone literal is its truthiness, as in jsonpath2.
        assert_eq!(find("$[?(1)]", json!(5)), vec![json!(5)]);
        assert_eq!(find("$[?(\"\")]", json!(5)), Vec::<Value>::new());
        assert!(refused("$.a[\"x]").contains("unterminated string"));
        assert!(refused("$.0").contains("write [0]"));
        assert!(refused("$ $").contains("found '$'"));
        assert!(refused("$.a[?(@.b = )]")
            .contains("expected a path (@... or $...) or a JSON value, found ')'"));
        let deep = format!("$[?({}@.a{})]", "(".repeat(40), ")".repeat(40));
        assert!(refused(&deep).contains("nests more than 32 deep"));
        let deep = format!("$[?({}@.a)]", "not ".repeat(40));
        assert!(refused(&deep).contains("nests more than 32 deep"));
        let deep = format!("$[?(@.a = {}1{})]", "[".repeat(40), "]".repeat(40));
        assert!(refused(&deep).contains("nests more than 32 deep"));
        assert!(
            refused(&format!("${}", ".a".repeat(3000))).contains("over the 4096-character limit")
        );
    }

    #[test]
    fn evaluation_is_bounded() {
        // 120 nested lists: `..*..*..*` would produce ~120³/6 values.
        let deep = (0..120).fold(json!(1), |v, _| json!([v]));
        match Path::parse("$..*..*..*").unwrap().find(&deep) {
            Err(e) => assert!(e.contains("more than 100000 values"), "{e}"),
            Ok(found) => panic!("found {} values", found.len()),
        }
        // Long chains of steps do not recurse.
        let path = format!("${}", ".a".repeat(2000));
        assert_eq!(
            Path::parse(&path).unwrap().find(&json!({})).unwrap().len(),
            0
        );
    }
}
