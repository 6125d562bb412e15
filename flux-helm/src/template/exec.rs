//! Executes parsed templates with Go text/template semantics.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use super::parse::{Arg, Branch, Cmd, Node, Pipe, Tree};
use crate::funcs::{self, FuncError};
use crate::value::Value;

/// A template execution error, shaped like Go's `template.ExecError` so Helm's messages can be
/// reproduced.
#[derive(Debug, Clone)]
pub struct ExecError {
    /// `file:line:col`, or just the template name when no node is known.
    pub location: String,
    /// The executing template's name.
    pub name: String,
    /// The node being evaluated (`None`: a message without `executing ... at <..>`).
    pub context: Option<String>,
    pub kind: ErrKind,
}

#[derive(Debug, Clone)]
pub enum ErrKind {
    Msg(String),
    /// `error calling FUNC: ...`
    Call {
        func: String,
        cause: Cause,
    },
}

#[derive(Debug, Clone)]
pub enum Cause {
    Msg(String),
    /// `fail`/`required`: wrapped in Helm's warning delimiters.
    Warn(String),
    Exec(Box<ExecError>),
    /// A message prefix wrapping another error (`error during tpl function execution for ...: `).
    Wrapped(String, Box<ExecError>),
}

pub const WARN_START: &str = "HELM_ERR_START";
pub const WARN_END: &str = "HELM_ERR_END";

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Msg(m) => f.write_str(m),
            Cause::Warn(m) => write!(f, "{WARN_START}{m}{WARN_END}"),
            Cause::Exec(e) => write!(f, "{e}"),
            Cause::Wrapped(prefix, e) => write!(f, "{prefix}{e}"),
        }
    }
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.context {
            Some(ctx) => write!(
                f,
                "template: {}: executing \"{}\" at <{}>: ",
                self.location, self.name, ctx
            )?,
            None => write!(f, "template: {}: ", self.location)?,
        }
        match &self.kind {
            ErrKind::Msg(m) => f.write_str(m),
            ErrKind::Call { func, cause } => write!(f, "error calling {func}: {cause}"),
        }
    }
}

impl ExecError {
    /// The messages of Go's unwrap chain (`errors.Unwrap` repeatedly), outermost first.
    pub fn chain(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(self);
        while let Some(e) = cur {
            let s = e.to_string();
            out.push(s.clone());
            out.push(s);
            cur = None;
            if let ErrKind::Call { cause, .. } = &e.kind {
                match cause {
                    Cause::Exec(inner) => cur = Some(inner),
                    Cause::Wrapped(prefix, inner) => {
                        out.push(format!("{prefix}{inner}"));
                        cur = Some(inner);
                    }
                    Cause::Msg(m) | Cause::Warn(m) => {
                        let _ = m;
                        out.push(cause.to_string());
                    }
                }
            }
        }
        out
    }
}

/// Control flow out of a list of nodes.
enum Flow {
    Normal,
    Break,
    Continue,
}

/// All named templates of a render, plus functions' shared state.
#[derive(Default)]
pub struct Templates {
    pub trees: HashMap<String, Rc<Tree>>,
}

impl Templates {
    /// Adds a parsed file: its tree and its `define`s. Later additions win, except that an
    /// empty `define` never replaces an existing one (Go's rule).
    pub fn add(&mut self, parsed: super::parse::Parsed) {
        for (name, tree) in parsed.defines {
            if tree.is_empty() && self.trees.contains_key(&name) {
                continue;
            }
            self.trees.insert(name, Rc::new(tree));
        }
        let name = parsed.main.name.clone();
        if parsed.main.is_empty() && self.trees.contains_key(&name) {
            return;
        }
        self.trees.insert(name, Rc::new(parsed.main));
    }
}

/// Settings visible to functions.
#[derive(Default)]
pub struct Context {
    /// State of the pseudo-random generator behind `randAlphaNum` and friends.
    pub rng: std::cell::Cell<u64>,
    /// The cluster behind `lookup`; `None` renders offline (`lookup` returns an empty map).
    pub lookup: Option<Rc<dyn crate::render::Lookup>>,
}

/// The executor: one per render.
pub struct Exec<'a> {
    pub templates: &'a Templates,
    /// Templates defined by `tpl` strings, searched before `templates`.
    pub overlay: Vec<HashMap<String, Rc<Tree>>>,
    pub ctx: &'a Context,
    include_depth: HashMap<String, usize>,
    /// `tpl` texts already parsed: charts call `tpl` on the same strings for every object.
    pub tpl_cache: HashMap<String, Rc<TplTemplate>>,
    /// Names shared by the trees `tpl` parses.
    pub names: super::parse::Interner,
    /// Nesting of template executions, bounded so runaway recursion errors instead of
    /// exhausting the stack.
    depth: usize,
}

/// A parsed `tpl` text: its body and the templates it defines.
#[derive(Debug)]
pub struct TplTemplate {
    pub main: Tree,
    pub defines: HashMap<String, Rc<Tree>>,
}

/// One template invocation's variables and position.
struct Frame<'t> {
    tree: &'t Tree,
    vars: Vec<(Rc<str>, Value)>,
    node_pos: usize,
    node_ctx: String,
}

type R<T> = Result<T, ExecError>;

const MAX_INCLUDE_DEPTH: usize = 1000;

/// Total nesting of `template`/`include`/`tpl` executions. Go allows 100000; a release build
/// needs well under 8 MiB of stack for this many levels.
const MAX_DEPTH: usize = 1500;

impl<'a> Exec<'a> {
    pub fn new(templates: &'a Templates, ctx: &'a Context) -> Self {
        Exec {
            templates,
            overlay: Vec::new(),
            ctx,
            include_depth: HashMap::new(),
            tpl_cache: HashMap::new(),
            names: super::parse::Interner::default(),
            depth: 0,
        }
    }

    pub fn lookup(&self, name: &str) -> Option<Rc<Tree>> {
        for layer in self.overlay.iter().rev() {
            if let Some(t) = layer.get(name) {
                return Some(t.clone());
            }
        }
        self.templates.trees.get(name).cloned()
    }

    /// Executes the named template with `dot`, returning its output.
    pub fn execute(&mut self, name: &str, dot: &Value) -> Result<String, ExecError> {
        let Some(tree) = self.lookup(name) else {
            return Err(ExecError {
                location: name.to_string(),
                name: name.to_string(),
                context: None,
                kind: ErrKind::Msg(format!(
                    "no template {name:?} associated with template \"gotpl\""
                )),
            });
        };
        let mut out = String::new();
        self.execute_tree(&tree, dot, &mut out)?;
        Ok(out)
    }

    pub fn execute_tree(&mut self, tree: &Tree, dot: &Value, out: &mut String) -> R<()> {
        if self.depth >= MAX_DEPTH {
            return Err(ExecError {
                location: tree.name.clone(),
                name: tree.name.clone(),
                context: None,
                kind: ErrKind::Msg(format!("exceeded maximum template depth ({MAX_DEPTH})")),
            });
        }
        self.depth += 1;
        let result = self.execute_tree_inner(tree, dot, out);
        self.depth -= 1;
        result
    }

    fn execute_tree_inner(&mut self, tree: &Tree, dot: &Value, out: &mut String) -> R<()> {
        let mut frame = Frame {
            tree,
            vars: vec![(Rc::from("$"), dot.clone())],
            node_pos: 0,
            node_ctx: String::new(),
        };
        self.walk_list(&mut frame, dot, &tree.root, out)?;
        Ok(())
    }

    /// `include`: executes a named template, guarding against runaway recursion.
    pub fn include(&mut self, name: &str, dot: &Value) -> Result<String, FuncError> {
        let depth = self.include_depth.entry(name.to_string()).or_insert(0);
        if *depth > MAX_INCLUDE_DEPTH {
            return Err(FuncError::Msg(format!(
                "rendering template has a nested reference name: {name}: unable to execute template"
            )));
        }
        *depth += 1;
        let result = self.execute(name, dot);
        if let Some(d) = self.include_depth.get_mut(name) {
            *d -= 1;
        }
        result.map_err(|e| FuncError::Exec(Box::new(e)))
    }

    fn error(&self, frame: &Frame<'_>, msg: impl Into<String>) -> ExecError {
        ExecError {
            location: frame.tree.location(frame.node_pos),
            name: frame.tree.name.clone(),
            context: Some(frame.node_ctx.clone()),
            kind: ErrKind::Msg(msg.into()),
        }
    }

    fn at(frame: &mut Frame<'_>, pos: usize, ctx: String) {
        frame.node_pos = pos;
        frame.node_ctx = ctx;
    }

    fn walk_list(
        &mut self,
        frame: &mut Frame<'_>,
        dot: &Value,
        nodes: &[Node],
        out: &mut String,
    ) -> R<Flow> {
        for node in nodes {
            match self.walk(frame, dot, node, out)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(
        &mut self,
        frame: &mut Frame<'_>,
        dot: &Value,
        node: &Node,
        out: &mut String,
    ) -> R<Flow> {
        match node {
            Node::Text(t) => out.push_str(frame.tree.source.get(t.clone()).unwrap_or_default()),
            Node::Action(pipe) => {
                let v = self.eval_pipe(frame, dot, pipe)?;
                if pipe.decl.is_empty() {
                    if let Value::Files(_) = v {
                        Self::at(frame, pipe.pos, pipe.to_string());
                    }
                    self.print(frame, &v, out)?;
                }
            }
            Node::If(b) | Node::With(b) => {
                let is_with = matches!(node, Node::With(_));
                let mark = frame.vars.len();
                let v = self.eval_pipe(frame, dot, &b.pipe)?;
                let flow = if v.truthy() {
                    if is_with {
                        self.walk_list(frame, &v, &b.body, out)?
                    } else {
                        self.walk_list(frame, dot, &b.body, out)?
                    }
                } else if let Some(e) = &b.else_body {
                    self.walk_list(frame, dot, e, out)?
                } else {
                    Flow::Normal
                };
                frame.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range(b) => return self.walk_range(frame, dot, b, out),
            Node::Template(call) => {
                let (pos, name, pipe) = (&call.pos, &call.name, &call.pipe);
                Self::at(frame, *pos, format!("template {name:?}"));
                let new_dot = match pipe {
                    Some(p) => self.eval_pipe(frame, dot, p)?,
                    None => Value::Nil,
                };
                let Some(tree) = self.lookup(name) else {
                    Self::at(frame, *pos, node_string(node));
                    return Err(self.error(
                        frame,
                        format!(
                            "template: no template {name:?} associated with template \"gotpl\""
                        ),
                    ));
                };
                self.execute_tree(&tree, &new_dot, out)?;
            }
            Node::Break(_) => return Ok(Flow::Break),
            Node::Continue(_) => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn print(&self, frame: &Frame<'_>, v: &Value, out: &mut String) -> R<()> {
        match v {
            Value::Files(_) => {
                return Err(self.error(frame, "can't print value of type engine.files"))
            }
            _ => out.push_str(&v.template_print()),
        }
        Ok(())
    }

    fn walk_range(
        &mut self,
        frame: &mut Frame<'_>,
        dot: &Value,
        b: &Branch,
        out: &mut String,
    ) -> R<Flow> {
        let mark = frame.vars.len();
        // Evaluate the pipeline without declaring: range declares per element.
        let v = self.eval_cmds(frame, dot, &b.pipe.cmds)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                .collect(),
            Value::ApiVersions(l) => l
                .iter()
                .enumerate()
                .map(|(i, x)| (Value::Int(i as i64), Value::str(x)))
                .collect(),
            Value::Map(m) => m
                .borrow()
                .iter()
                .map(|(k, x)| (Value::str(k), x.clone()))
                .collect(),
            Value::Files(f) => f
                .files
                .iter()
                .map(|(k, v)| {
                    (
                        Value::str(k),
                        Value::string(String::from_utf8_lossy(v).into_owned()),
                    )
                })
                .collect(),
            Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Nil => Vec::new(),
            other => {
                Self::at(frame, b.pipe.pos, b.pipe.to_string());
                return Err(self.error(
                    frame,
                    format!("range can't iterate over {}", other.go_string()),
                ));
            }
        };
        if items.is_empty() {
            frame.vars.truncate(mark);
            if let Some(e) = &b.else_body {
                let flow = self.walk_list(frame, dot, e, out)?;
                frame.vars.truncate(mark);
                return Ok(flow);
            }
            return Ok(Flow::Normal);
        }
        for (key, elem) in items {
            let inner = frame.vars.len();
            match b.pipe.decl.len() {
                1 => self.set_or_declare(frame, &b.pipe.decl[0], elem.clone(), b.pipe.is_assign),
                2 => {
                    self.set_or_declare(frame, &b.pipe.decl[0], key, b.pipe.is_assign);
                    self.set_or_declare(frame, &b.pipe.decl[1], elem.clone(), b.pipe.is_assign);
                }
                _ => {}
            }
            let flow = self.walk_list(frame, &elem, &b.body, out)?;
            frame.vars.truncate(inner);
            if let Flow::Break = flow {
                break;
            }
        }
        frame.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn set_or_declare(&self, frame: &mut Frame<'_>, name: &Rc<str>, v: Value, assign: bool) {
        if assign {
            if let Some(slot) = frame.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v;
                return;
            }
        }
        frame.vars.push((name.clone(), v));
    }

    fn eval_cmds(&mut self, frame: &mut Frame<'_>, dot: &Value, cmds: &[Cmd]) -> R<Value> {
        let mut value: Option<Value> = None;
        for cmd in cmds {
            value = Some(self.eval_cmd(frame, dot, cmd, value)?);
        }
        Ok(value.unwrap_or(Value::Nil))
    }

    fn eval_pipe(&mut self, frame: &mut Frame<'_>, dot: &Value, pipe: &Pipe) -> R<Value> {
        let v = self.eval_cmds(frame, dot, &pipe.cmds)?;
        for name in &pipe.decl {
            if pipe.is_assign {
                if let Some(slot) = frame.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                } else {
                    Self::at(frame, pipe.pos, pipe.to_string());
                    return Err(self.error(frame, format!("undefined variable: {name}")));
                }
            } else {
                frame.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn eval_cmd(
        &mut self,
        frame: &mut Frame<'_>,
        dot: &Value,
        cmd: &Cmd,
        fin: Option<Value>,
    ) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Arg::Ident(pos, name) => {
                self.call_func(frame, dot, *pos, name, cmd, &cmd.args[1..], fin)
            }
            Arg::Field(pos, fields) => {
                let receiver = dot.clone();
                self.eval_fields(
                    frame,
                    dot,
                    *pos,
                    first,
                    receiver,
                    fields,
                    &cmd.args[1..],
                    fin,
                )
            }
            Arg::Var(pos, name, fields) if !fields.is_empty() => {
                let receiver = self.var(frame, *pos, name)?;
                self.eval_fields(
                    frame,
                    dot,
                    *pos,
                    first,
                    receiver,
                    fields,
                    &cmd.args[1..],
                    fin,
                )
            }
            Arg::Chain(pos, inner, fields) => {
                let receiver = self.eval_arg(frame, dot, inner)?;
                self.eval_fields(
                    frame,
                    dot,
                    *pos,
                    first,
                    receiver,
                    fields,
                    &cmd.args[1..],
                    fin,
                )
            }
            _ => {
                if cmd.args.len() > 1 || fin.is_some() {
                    Self::at(frame, first.pos(), first.to_string());
                    return Err(self.error(
                        frame,
                        format!("can't give argument to non-function {first}"),
                    ));
                }
                self.eval_arg(frame, dot, first)
            }
        }
    }

    fn var(&self, frame: &mut Frame<'_>, pos: usize, name: &str) -> R<Value> {
        if let Some((_, v)) = frame.vars.iter().rev().find(|(n, _)| &**n == name) {
            return Ok(v.clone());
        }
        Self::at(frame, pos, name.to_string());
        Err(self.error(frame, format!("undefined variable: {name}")))
    }

    fn eval_arg(&mut self, frame: &mut Frame<'_>, dot: &Value, arg: &Arg) -> R<Value> {
        match arg {
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Ok(Value::Nil),
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Int(_, i, _) => Ok(Value::Int(*i)),
            Arg::Float(_, f, _) => Ok(Value::Float(*f)),
            Arg::Str(_, s, _) => Ok(Value::Str(s.clone())),
            Arg::Var(pos, name, fields) => {
                let v = self.var(frame, *pos, name)?;
                if fields.is_empty() {
                    Ok(v)
                } else {
                    self.eval_fields(frame, dot, *pos, arg, v, fields, &[], None)
                }
            }
            Arg::Field(pos, fields) => {
                self.eval_fields(frame, dot, *pos, arg, dot.clone(), fields, &[], None)
            }
            Arg::Chain(pos, inner, fields) => {
                let v = self.eval_arg(frame, dot, inner)?;
                self.eval_fields(frame, dot, *pos, arg, v, fields, &[], None)
            }
            Arg::Pipe(_, pipe) => {
                let mark = frame.vars.len();
                let v = self.eval_pipe(frame, dot, pipe)?;
                frame.vars.truncate(mark);
                Ok(v)
            }
            Arg::Ident(pos, name) => {
                // A function used as an argument: called with no arguments.
                let cmd = Cmd {
                    pos: *pos,
                    args: vec![arg.clone()],
                };
                self.call_func(frame, dot, *pos, name, &cmd, &[], None)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_fields(
        &mut self,
        frame: &mut Frame<'_>,
        dot: &Value,
        pos: usize,
        node: &Arg,
        mut receiver: Value,
        fields: &crate::template::parse::Fields,
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let last = fields.len() - 1;
        for (i, field) in fields.iter().enumerate() {
            let has_args = i == last && (!args.is_empty() || fin.is_some());
            // Methods of the special objects.
            match (&receiver, field) {
                (
                    Value::Files(_),
                    "Get" | "GetBytes" | "Glob" | "AsConfig" | "AsSecrets" | "Lines",
                )
                | (Value::ApiVersions(_), "Has") => {
                    let mut argv = Vec::new();
                    if i == last {
                        for a in args {
                            argv.push(self.eval_arg(frame, dot, a)?);
                        }
                        if let Some(f) = &fin {
                            argv.push(f.clone());
                        }
                    }
                    Self::at(frame, pos, node.to_string());
                    receiver =
                        funcs::call_method(&receiver, field, &argv).map_err(|e| match e {
                            FuncError::Msg(m) => {
                                self.error(frame, format!("error calling {field}: {m}"))
                            }
                            other => self.error(frame, format!("error calling {field}: {other:?}")),
                        })?;
                    continue;
                }
                _ => {}
            }
            if has_args {
                Self::at(frame, pos, node.to_string());
                return Err(self.error(
                    frame,
                    format!("{field} has arguments but cannot be invoked as function"),
                ));
            }
            receiver = match &receiver {
                Value::Map(m) => m.borrow().get(field).cloned().unwrap_or(Value::Nil),
                Value::KubeVersion(k) => match field {
                    "Version" | "GitVersion" => Value::str(&k.version),
                    "Major" => Value::str(&k.major),
                    "Minor" => Value::str(&k.minor),
                    _ => {
                        Self::at(frame, pos, node.to_string());
                        return Err(self.error(
                            frame,
                            format!("can't evaluate field {field} in type *common.KubeVersion"),
                        ));
                    }
                },
                // A nil that came out of a pipeline, variable or dot is an invalid value in Go:
                // field access on it yields nil. Only a nil found inside this chain is an error.
                Value::Nil if i == 0 => Value::Nil,
                Value::Nil => {
                    Self::at(frame, pos, node.to_string());
                    return Err(self.error(
                        frame,
                        format!("nil pointer evaluating interface {{}}.{field}"),
                    ));
                }
                other => {
                    Self::at(frame, pos, node.to_string());
                    return Err(self.error(
                        frame,
                        format!("can't evaluate field {field} in type {}", other.type_name()),
                    ));
                }
            };
        }
        Ok(receiver)
    }

    #[allow(clippy::too_many_arguments)]
    fn call_func(
        &mut self,
        frame: &mut Frame<'_>,
        dot: &Value,
        pos: usize,
        name: &str,
        cmd: &Cmd,
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        // Short-circuit boolean operators evaluate lazily.
        if name == "and" || name == "or" {
            let total = args.len() + usize::from(fin.is_some());
            if total == 0 {
                Self::at(frame, pos, cmd.to_string());
                return Err(self.error(
                    frame,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut last = Value::Nil;
            for (i, a) in args.iter().enumerate() {
                last = self.eval_arg(frame, dot, a)?;
                let is_last = i + 1 == total;
                if !is_last && (last.truthy() != (name == "and")) {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        if !funcs::exists(name) {
            Self::at(frame, pos, cmd.to_string());
            return Err(self.error(frame, format!("function {name:?} not defined")));
        }
        let mut argv = Vec::with_capacity(args.len() + 1);
        for a in args {
            argv.push(self.eval_arg(frame, dot, a)?);
        }
        if let Some(f) = fin {
            argv.push(f);
        }
        match funcs::call(self, name, argv) {
            Ok(v) => Ok(v),
            Err(e) => {
                Self::at(frame, pos, cmd.to_string());
                let cause = match e {
                    FuncError::Msg(m) => Cause::Msg(m),
                    FuncError::Warn(m) => Cause::Warn(m),
                    FuncError::Exec(inner) => Cause::Exec(inner),
                    FuncError::Wrapped(p, inner) => Cause::Wrapped(p, inner),
                    FuncError::Arg(index, m) => {
                        // Argument type errors point at the argument node.
                        if let Some(a) = args.get(index) {
                            Self::at(frame, a.pos(), a.to_string());
                        }
                        return Err(self.error(frame, m));
                    }
                };
                Err(ExecError {
                    location: frame.tree.location(frame.node_pos),
                    name: frame.tree.name.clone(),
                    context: Some(frame.node_ctx.clone()),
                    kind: ErrKind::Call {
                        func: name.to_string(),
                        cause,
                    },
                })
            }
        }
    }
}

fn node_string(node: &Node) -> String {
    match node {
        Node::Template(call) => {
            let name = &call.name;
            match &call.pipe {
                Some(p) => format!("{{{{template {name:?} {p}}}}}"),
                None => format!("{{{{template {name:?}}}}}"),
            }
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::parse::parse;

    fn render(src: &str, dot: Value) -> Result<String, ExecError> {
        let mut t = Templates::default();
        t.add(parse("t", src).expect("parse"));
        let ctx = Context {
            rng: std::cell::Cell::new(1),
            lookup: None,
        };
        let mut e = Exec::new(&t, &ctx);
        e.execute("t", &dot)
    }

    #[test]
    fn variables_assign_across_scopes() {
        let out = render(
            r"{{- $found := false }}{{- range list 1 2 3 }}{{- if eq . 2 }}{{- $found = true }}{{- end }}{{- end }}{{ $found }}",
            Value::Nil,
        )
        .expect("render");
        assert_eq!(out, "true");
    }

    #[test]
    fn break_and_continue() {
        let out = render(
            r"{{ range $i, $v := list 1 2 3 4 }}{{ if eq $v 2 }}{{ continue }}{{ end }}{{ if eq $v 4 }}{{ break }}{{ end }}{{ $i }}{{ end }}",
            Value::Nil,
        )
        .expect("render");
        assert_eq!(out, "02");
    }

    #[test]
    fn and_or_return_operands() {
        let out = render(
            r#"{{ or "" 0 "x" }}|{{ and 1 "" 3 }}|{{ and 1 2 }}"#,
            Value::Nil,
        )
        .expect("render");
        assert_eq!(out, "x||2");
    }

    #[test]
    fn nil_field_error_names_location() {
        let err = render("a\n  {{ .a.b }}", Value::new_map()).expect_err("error");
        assert_eq!(
            err.to_string(),
            "template: t:2:5: executing \"t\" at <.a.b>: nil pointer evaluating interface {}.b"
        );
    }
}
