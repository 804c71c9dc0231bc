//! Finds the line of a key path (`site[1].origin`) in the original TOML text.

use toml_edit::{ImDocument, Item, Table, Value};

/// 1-based line of a byte offset.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Where the walk stands: a table (top level or `[[site]]` entry), an item, or a value.
#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Item(&'a Item),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn child(&self, name: &str) -> Option<Node<'a>> {
        match *self {
            Node::Table(t) => t.get(name).map(Node::Item),
            Node::Item(Item::Table(t)) => t.get(name).map(Node::Item),
            Node::Item(Item::Value(v)) | Node::Value(v) => v
                .as_inline_table()
                .and_then(|t| t.get(name))
                .map(Node::Value),
            _ => None,
        }
    }

    fn index(&self, i: usize) -> Option<Node<'a>> {
        match *self {
            Node::Item(Item::ArrayOfTables(a)) => a.get(i).map(Node::Table),
            Node::Item(Item::Value(v)) | Node::Value(v) => {
                v.as_array().and_then(|a| a.get(i)).map(Node::Value)
            }
            _ => None,
        }
    }

    fn start(&self) -> Option<usize> {
        match self {
            Node::Table(t) => t.span().map(|s| s.start),
            Node::Item(i) => i.span().map(|s| s.start),
            Node::Value(v) => v.span().map(|s| s.start),
        }
    }
}

/// 1-based line where `key` (dotted path, `name[i]` for array entries) is defined, or of the
/// nearest parent that exists in the text.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let doc = ImDocument::parse(text).ok()?;
    let mut node = Node::Table(doc.as_table());
    let mut best = None;
    for part in key.split('.') {
        let (name, index) = split_index(part);
        let Some(next) = node.child(name) else { break };
        node = next;
        best = node.start().or(best);
        if let Some(i) = index {
            let Some(next) = node.index(i) else { break };
            node = next;
            best = node.start().or(best);
        }
    }
    best.map(|offset| line_of_offset(text, offset))
}

fn split_index(part: &str) -> (&str, Option<usize>) {
    match part.find('[') {
        Some(open) if part.ends_with(']') => {
            let index = part[open + 1..part.len() - 1].parse().ok();
            (&part[..open], index)
        }
        _ => (part, None),
    }
}
