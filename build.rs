//! Embeds the SQL and YAML files under sql/ (the dbt project, setup and
//! metadata migrations) in the binary, so a deployed image needs no files
//! beside it. dbt's own output folders are left out.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    // Read at run time: a build script compiled for a clone elsewhere (a
    // shared target directory) must not embed that clone's files.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("sql");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut out = String::from("pub(crate) static SQL_FILES: &[(&str, &str)] = &[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.strip_prefix(&root).unwrap().to_string_lossy();
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("sql_files.rs");
    std::fs::write(dest, out).unwrap();
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | "logs" | "dbt_packages") {
                collect(&path, files);
            }
        } else if path
            .extension()
            .is_some_and(|e| e == "sql" || e == "yml" || e == "yaml")
        {
            files.push(path);
        }
    }
}
