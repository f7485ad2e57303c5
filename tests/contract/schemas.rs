//! The contract's documents as validators: a named schema of
//! `docs/asyncapi.json` or `docs/openapi.json` compiled with its
//! references, the property names a schema declares, and the assertions
//! the contract tests share.

use jsonschema::{Draft, Validator};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tickfeed::contract;

/// A file of the repository.
pub fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// One parsed document and the JSON Schema draft of its schemas.
pub struct Document {
    pub doc: Value,
    draft: Draft,
}

impl Document {
    pub fn asyncapi() -> Self {
        Self {
            doc: serde_json::from_str(contract::asyncapi_json()).unwrap(),
            draft: Draft::Draft7,
        }
    }

    pub fn openapi() -> Self {
        Self {
            doc: serde_json::from_str(contract::openapi_json()).unwrap(),
            draft: Draft::Draft202012,
        }
    }

    /// A validator for `schema`, whose `$ref`s point into this document.
    pub fn validator(&self, schema: &Value) -> Validator {
        let mut root = schema.clone();
        if let Some(object) = root.as_object_mut() {
            object.insert("components".into(), self.doc["components"].clone());
        } else {
            root = json!({ "allOf": [schema], "components": self.doc["components"] });
        }
        jsonschema::options()
            .with_draft(self.draft)
            .build(&root)
            .unwrap_or_else(|e| panic!("a schema that does not compile: {e}: {schema}"))
    }

    /// A validator for the named schema `name` of the document.
    pub fn named(&self, name: &str) -> Validator {
        assert!(
            self.doc["components"]["schemas"][name].is_object(),
            "no schema {name}"
        );
        self.validator(&json!({ "$ref": format!("#/components/schemas/{name}") }))
    }

    /// The property names `schema` declares, through `$ref`, `allOf`,
    /// `anyOf` and `oneOf`.
    pub fn declared(&self, schema: &Value, names: &mut BTreeSet<String>) {
        if let Some(pointer) = schema["$ref"].as_str() {
            let target = self
                .doc
                .pointer(pointer.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("unresolved {pointer}"));
            self.declared(target, names);
        }
        if let Some(properties) = schema["properties"].as_object() {
            names.extend(properties.keys().cloned());
        }
        for combinator in ["allOf", "anyOf", "oneOf"] {
            for part in schema[combinator].as_array().into_iter().flatten() {
                self.declared(part, names);
            }
        }
    }

    pub fn declared_by(&self, name: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        self.declared(&self.doc["components"]["schemas"][name], &mut names);
        names
    }
}

/// Fails naming every error when `instance` does not validate.
pub fn assert_valid(validator: &Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not validate: {errors:?}\n{instance}"
    );
}

/// Fails when `instance` has a field `declared` lacks: the schema would
/// not tell a client about it.
pub fn assert_declared(declared: &BTreeSet<String>, instance: &Value, what: &str) {
    for key in instance.as_object().expect("an object").keys() {
        assert!(
            declared.contains(key),
            "{what}: field {key} is not in its schema: {instance}"
        );
    }
}
