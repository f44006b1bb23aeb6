//! One mapping of the manifest, checked against its field table: the typed questions a section reader asks of it,
//! field by field (`text`, `duration`, `choice`, ...), each answered as a [`Read`].

use super::{Read, Reader, join};
use crate::document::Node;
use crate::fields::{Field, Kind};
use fledge_core::{Duration, Percentage};
use std::collections::BTreeMap;

/// One mapping of the manifest, checked against its field table.
pub(crate) struct Entries<'n> {
    pub(super) path: String,
    pub(super) node: &'n Node,
    pub(super) entries: Vec<(&'static Field, &'n Node, &'n Node)>,
}

impl<'n> Entries<'n> {
    /// The mapping's own node.
    pub(crate) fn node(&self) -> &'n Node {
        self.node
    }

    /// The path of a field of this mapping: `gate.timeout`.
    pub(crate) fn path_of(&self, name: &str) -> String {
        join(&self.path, name)
    }

    /// The value node of a field, with the field's table entry.
    pub(crate) fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(field, _, _)| field.name == name).map(|(_, _, value)| *value)
    }

    /// The key node of a field, for errors about the field's presence.
    pub(crate) fn key(&self, name: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(field, _, _)| field.name == name).map(|(_, key, _)| *key)
    }

    fn kind(&self, name: &str) -> &'static Kind {
        let field = self.entries.iter().find(|(field, _, _)| field.name == name).map(|(field, _, _)| *field);
        &field.unwrap_or_else(|| panic!("`{name}` is read as a field of `{}` but is not in its table", self.path)).kind
    }

    fn read<T>(
        &self,
        reader: &mut Reader,
        name: &str,
        read: impl FnOnce(&mut Reader, &'n Node, &str) -> Option<T>,
    ) -> Read<T> {
        match self.get(name) {
            None => Read::Absent,
            Some(node) => match read(reader, node, &self.path_of(name)) {
                Some(value) => Read::Value(value),
                None => Read::Invalid,
            },
        }
    }

    /// Reads a field according to its kind in the table (texts, names, durations, numbers, choices ...).
    pub(crate) fn text(&self, reader: &mut Reader, name: &str) -> Read<String> {
        match self.get(name).map(|_| self.kind(name)) {
            Some(Kind::Name) => self.read(reader, name, Reader::name),
            Some(Kind::ResourceName) => self.read(reader, name, Reader::resource_name),
            Some(Kind::Image) => self.read(reader, name, Reader::image),
            Some(Kind::Url) => self.read(reader, name, Reader::url),
            Some(Kind::EnvironmentVariable) => self.read(reader, name, Reader::environment_variable),
            _ => self.read(reader, name, Reader::text),
        }
    }

    /// A path field.
    pub(crate) fn path(&self, reader: &mut Reader, name: &str) -> Read<std::path::PathBuf> {
        self.read(reader, name, Reader::path)
    }

    /// A duration field.
    pub(crate) fn duration(&self, reader: &mut Reader, name: &str) -> Read<Duration> {
        self.read(reader, name, Reader::duration)
    }

    /// A percentage field.
    pub(crate) fn percentage(&self, reader: &mut Reader, name: &str) -> Read<Percentage> {
        self.read(reader, name, Reader::percentage)
    }

    /// A whole-number field, checked against the table's range.
    pub(crate) fn integer(&self, reader: &mut Reader, name: &str) -> Read<i64> {
        let (min, max) = match self.get(name).map(|_| self.kind(name)) {
            Some(Kind::Integer { min, max }) => (*min, *max),
            _ => (i64::MIN, i64::MAX),
        };
        self.read(reader, name, |reader, node, path| reader.integer(node, path, min, max))
    }

    /// A number field.
    pub(crate) fn number(&self, reader: &mut Reader, name: &str) -> Read<f64> {
        self.read(reader, name, Reader::number)
    }

    /// A boolean field.
    pub(crate) fn bool(&self, reader: &mut Reader, name: &str) -> Read<bool> {
        self.read(reader, name, Reader::bool)
    }

    /// A field holding one of the table's words.
    pub(crate) fn choice(&self, reader: &mut Reader, name: &str) -> Read<&'static str> {
        let choices = match self.get(name).map(|_| self.kind(name)) {
            Some(Kind::Choice(choices)) => *choices,
            _ => &[],
        };
        self.read(reader, name, |reader, node, path| reader.choice(node, path, choices))
    }

    /// A list field's items.
    pub(crate) fn list(&self, reader: &mut Reader, name: &str, hint: &str) -> Read<&'n [Node]> {
        self.read(reader, name, |reader, node, path| reader.list(node, path, hint))
    }

    /// A nested mapping with its own table.
    pub(crate) fn object(&self, reader: &mut Reader, name: &str) -> Read<Entries<'n>> {
        let object = match self.get(name).map(|_| self.kind(name)) {
            Some(Kind::Object(object)) => *object,
            Some(_) | None => return self.read(reader, name, |_, _, _| None),
        };
        let key = self.key(name).expect("present when read");
        self.read(reader, name, |reader, node, path| reader.object_under(key, node, path, object))
    }

    /// A mapping of text to text.
    pub(crate) fn text_map(&self, reader: &mut Reader, name: &str) -> Read<BTreeMap<String, String>> {
        self.read(reader, name, Reader::text_map)
    }
}
