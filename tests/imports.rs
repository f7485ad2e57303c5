//! Imports flow one way (`docs/architecture.md`, "Imports flow one way"):
//! every top-level module of the library may import only the modules
//! listed before it in [`LAYERS`]. Leaves come first and import nothing
//! from the crate above them; the data path follows (source, router,
//! session, server), and the commands (`bench`, `cli`) sit on top.
//!
//! Test code (`tests.rs` files, `#[cfg(test)] mod tests { .. }` blocks and
//! test-only modules) may reach anywhere. Run alone with
//! `cargo test --test imports`.

use std::path::{Path, PathBuf};

/// Each layer, lowest first; a module imports only from earlier layers.
/// A new module gets a place here, or this test fails.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "clock", "epoch", "procfs", "units", "sequence", "shutdown", "stats",
        ],
    ),
    ("protocol", &["protocol"]),
    ("encoding", &["codec"]),
    ("history rings", &["history"]),
    ("symbol table", &["symbols"]),
    ("book store", &["books"]),
    ("conflation mailbox", &["conflate"]),
    ("feed formats", &["feed"]),
    ("bars", &["bars"]),
    ("sources", &["source"]),
    ("router", &["router"]),
    ("request budget", &["ratelimit"]),
    ("session", &["session"]),
    ("scale-out", &["nats"]),
    (
        "server parts",
        &[
            "assets",
            "auth",
            "feed_thread",
            "metrics",
            "origin",
            "pending",
            "readiness",
            "scheduling_lag",
            "tls",
        ],
    ),
    ("server parts using parts", &["api", "listener"]),
    ("machine-readable contract", &["contract"]),
    ("settings", &["config"]),
    ("server", &["server"]),
    ("bench command", &["bench"]),
    ("command line", &["cli"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The library code of a file: without its unit tests and comments.
fn library_code(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Modules `lib.rs` declares under `#[cfg(test)]`.
fn test_only_modules(lib: &str) -> Vec<String> {
    lib.split("#[cfg(test)]\n")
        .skip(1)
        .filter_map(|rest| rest.strip_prefix("mod "))
        .filter_map(|rest| rest.split(';').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn imports_flow_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let test_only = test_only_modules(&lib);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let is_test = relative.file_name().is_some_and(|n| n == "tests.rs");
        if ["lib", "main"].contains(&module.as_str()) || is_test || test_only.contains(&module) {
            continue;
        }
        let Some(layer) = layer_of(&module) else {
            problems.push(format!(
                "src/{}: module {module} has no layer in tests/imports.rs",
                relative.display()
            ));
            continue;
        };
        let code = library_code(&std::fs::read_to_string(&file).unwrap());
        for (at, _) in code.match_indices("crate::") {
            let used: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if used == module {
                continue;
            }
            match layer_of(&used) {
                Some(used_layer) if used_layer < layer => {}
                _ => problems.push(format!(
                    "src/{}: {module} ({}) imports crate::{used} ({}), which is not below it",
                    relative.display(),
                    LAYERS[layer].0,
                    layer_of(&used).map_or("no layer", |l| LAYERS[l].0)
                )),
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "imports must flow one way (docs/architecture.md):\n{}",
        problems.join("\n")
    );
}
