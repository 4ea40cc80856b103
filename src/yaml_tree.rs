//! YAML parsed into a tree that remembers where every node came from, so that
//! spec errors can point at file:line:column, and that keeps mapping order
//! (an index's key order is significant).

use anyhow::Result;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar's text, and whether it was quoted (quoted text is always a string).
    Scalar(String, bool),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: usize,
    /// 1-based, as editors show it.
    pub col: usize,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s, _) => Some(s),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s, false) if s.is_empty() || s == "~" || s == "null")
    }
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Value, Marker)>,
    /// Pending map keys, one per open mapping.
    keys: Vec<Option<Node>>,
    root: Option<Node>,
}

impl Builder {
    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((Value::Seq(items), _)) => items.push(node),
            Some((Value::Map(entries), _)) => {
                let slot = self.keys.last_mut().expect("a key slot per open map");
                match slot.take() {
                    None => *slot = Some(node),
                    Some(k) => entries.push((k, node)),
                }
            }
            Some((Value::Scalar(..), _)) => unreachable!("scalars are never open"),
        }
    }
}

fn node(value: Value, m: Marker) -> Node {
    Node {
        value,
        line: m.line(),
        col: m.col() + 1,
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(s, style, _, _) => {
                self.push_node(node(Value::Scalar(s, style != TScalarStyle::Plain), mark))
            }
            Event::SequenceStart(..) => self.stack.push((Value::Seq(vec![]), mark)),
            Event::MappingStart(..) => {
                self.stack.push((Value::Map(vec![]), mark));
                self.keys.push(None);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((v, m)) = self.stack.pop() {
                    if matches!(v, Value::Map(_)) {
                        self.keys.pop();
                    }
                    self.push_node(node(v, m));
                }
            }
            _ => {}
        }
    }
}

/// Parse one YAML document; syntax errors carry `file:line:column`.
pub fn parse(text: &str, file: &str) -> Result<Option<Node>> {
    let mut b = Builder::default();
    let mut p = Parser::new_from_str(text);
    if let Err(e) = p.load(&mut b, false) {
        let m = e.marker();
        return Err(crate::exit::usage(format!(
            "{file}:{}:{}: invalid YAML: {}",
            m.line(),
            m.col() + 1,
            e.info()
        )));
    }
    Ok(b.root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_positions() {
        let t = parse("a:\n  z: 1\n  b: -1\nlist:\n  - x\n", "f.yaml")
            .unwrap()
            .unwrap();
        let a = t.get("a").unwrap().as_map().unwrap();
        assert_eq!(a[0].0.as_str(), Some("z"));
        assert_eq!(a[1].0.as_str(), Some("b"));
        assert_eq!((a[1].0.line, a[1].0.col), (3, 3));
        assert_eq!(
            t.get("list").unwrap().as_seq().unwrap()[0].as_str(),
            Some("x")
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n", "f.yaml").unwrap_err().to_string();
        assert!(e.starts_with("f.yaml:"), "{e}");
    }
}
