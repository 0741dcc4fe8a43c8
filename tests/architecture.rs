//! The module structure the code promises (src/lib.rs): the core does no
//! I/O and depends on nothing outside the core, and no two top-level
//! modules depend on each other, directly or around a cycle.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::rust_files;

/// The I/O-free core: catalogue, synthesis, checks and the split, formats.
const CORE: &[&str] = &[
    "catalog", "checks", "dbt", "digest", "exit", "formats", "synth",
];

/// Each top-level module of src/ and the top-level modules its non-test
/// code names through `crate::`.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "main" || module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]\nmod ").next().unwrap();
        let used = graph.entry(module.clone()).or_default();
        for name in crate_paths(code) {
            if name != module {
                used.insert(name);
            }
        }
    }
    graph
}

/// The first segment of every `crate::a::...` and `crate::{a, b::c}`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let group = match rest.strip_prefix('{') {
            Some(inner) => &inner[..inner.find('}').unwrap_or(inner.len())],
            None => rest,
        };
        for item in group.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push(name);
            }
            if !rest.starts_with('{') {
                break;
            }
        }
    }
    names
}

#[test]
fn the_core_depends_only_on_the_core() {
    let graph = dependencies();
    for module in CORE {
        let outside: Vec<_> = graph[*module]
            .iter()
            .filter(|m| !CORE.contains(&m.as_str()))
            .collect();
        assert!(outside.is_empty(), "core module {module} uses {outside:?}");
    }
}

#[test]
fn no_modules_depend_on_each_other_in_a_cycle() {
    let graph = dependencies();
    // Depth-first search; a module met again while on the path closes a cycle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| *m == module) {
            let mut cycle: Vec<String> = path[start..].iter().map(|m| m.to_string()).collect();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let cycle = visit(module, &graph, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "import cycle: {}",
            cycle.unwrap().join(" -> ")
        );
    }
}

#[test]
fn the_graph_sees_the_imports() {
    let graph = dependencies();
    assert!(graph["tasks"].contains("context"));
    assert!(graph["checks"].contains("catalog"));
    assert_eq!(
        crate_paths("use crate::{a::B, c};\nlet x = crate::d::e();"),
        ["a", "c", "d"]
    );
}
