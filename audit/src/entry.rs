//! One chain entry: its fields in stored order.
//!
//! A short vector rather than a map: entries have a handful of fields, a linear scan finds one
//! faster than hashing its name, and field names are shared between rows (`Arc<str>`) instead of
//! allocated per row — at hundreds of thousands of rows a second, that allocation showed.

use std::sync::Arc;

use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry(pub Vec<(Arc<str>, Value)>);

impl Entry {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| &**k == name).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.0
            .iter_mut()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| v)
    }

    /// Fields in stored order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    /// The entry as a JSON object, fields in stored order.
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

impl From<Map<String, Value>> for Entry {
    fn from(m: Map<String, Value>) -> Entry {
        Entry(m.into_iter().map(|(k, v)| (Arc::from(k), v)).collect())
    }
}
