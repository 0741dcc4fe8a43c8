//! The order `dbt build` runs a project in, and what a failure skips.
//!
//! Nodes are sources, models and tests; a node runs after what it
//! `ref()`s or `source()`s, and, as in dbt-core's `add_test_edges`, after
//! every test of its ancestors whose own dependencies are all ancestors
//! of it. A failing test skips everything downstream of it in that graph.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use super::{NodeId, Project};
use crate::exit;

/// `--select`: model names, each with `+` before (and its ancestors)
/// and/or after (and its descendants). Tests follow the nodes they test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selector(Vec<Spec>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Spec {
    name: String,
    ancestors: bool,
    descendants: bool,
}

impl Selector {
    /// Space- or comma-free specs as `dbt build --select` takes them.
    pub(crate) fn parse(specs: &[String]) -> Result<Selector> {
        let mut parsed = Vec::new();
        for spec in specs.iter().flat_map(|s| s.split_whitespace()) {
            let (ancestors, rest) = match spec.strip_prefix('+') {
                Some(rest) => (true, rest),
                None => (false, spec),
            };
            let (descendants, name) = match rest.strip_suffix('+') {
                Some(name) => (true, name),
                None => (false, rest),
            };
            let plain =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !plain {
                return Err(exit::usage(format!(
                    "--select {spec:?}: the native runner selects model names with + before \
                     or after (a, +a, a+, +a+); not path:, tag:, source: or set operators"
                )));
            }
            parsed.push(Spec {
                name: name.to_string(),
                ancestors,
                descendants,
            });
        }
        Ok(Selector(parsed))
    }

    pub(crate) fn is_all(&self) -> bool {
        self.0.is_empty()
    }
}

/// The nodes to run, in order, and the graph failures skip along.
#[derive(Debug)]
pub(crate) struct BuildPlan {
    pub order: Vec<NodeId>,
    children: BTreeMap<NodeId, BTreeSet<NodeId>>,
}

impl BuildPlan {
    pub(crate) fn new(project: &Project, selector: &Selector) -> Result<BuildPlan> {
        let mut parents: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
        for source in &project.sources {
            parents.insert(
                NodeId::Source {
                    source: source.source.clone(),
                    table: source.table.clone(),
                },
                BTreeSet::new(),
            );
        }
        for model in &project.models {
            parents.insert(
                NodeId::Model(model.name.clone()),
                model.depends_on.iter().cloned().collect(),
            );
        }
        let tests: Vec<(NodeId, BTreeSet<NodeId>)> = project
            .tests
            .iter()
            .map(|t| {
                (
                    NodeId::Test(t.name.clone()),
                    t.depends_on.iter().cloned().collect(),
                )
            })
            .collect();

        // Test edges, computed on the graph of sources and models.
        let ancestors_of: BTreeMap<NodeId, BTreeSet<NodeId>> = parents
            .keys()
            .map(|node| (node.clone(), closure(node, &parents)))
            .collect();
        let mut augmented = parents.clone();
        for (node, ancestors) in &ancestors_of {
            for (test, depends_on) in &tests {
                if !depends_on.is_empty() && depends_on.is_subset(ancestors) {
                    augmented
                        .get_mut(node)
                        .expect("every node has parents")
                        .insert(test.clone());
                }
            }
        }
        for (test, depends_on) in &tests {
            augmented.insert(test.clone(), depends_on.clone());
        }

        let selected = select(project, selector, &parents, &tests)?;
        let order = topological(&augmented, &selected)?;
        let mut children: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
        for (node, node_parents) in &augmented {
            for parent in node_parents {
                children
                    .entry(parent.clone())
                    .or_default()
                    .insert(node.clone());
            }
        }
        Ok(BuildPlan { order, children })
    }

    /// Everything downstream of `node`, which a failure of it skips.
    pub(crate) fn downstream(&self, node: &NodeId) -> BTreeSet<NodeId> {
        closure(node, &self.children)
    }
}

/// The nodes reachable from `node` along `edges` (not `node` itself).
fn closure(node: &NodeId, edges: &BTreeMap<NodeId, BTreeSet<NodeId>>) -> BTreeSet<NodeId> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![node.clone()];
    while let Some(next) = stack.pop() {
        for n in edges.get(&next).into_iter().flatten() {
            if seen.insert(n.clone()) {
                stack.push(n.clone());
            }
        }
    }
    seen
}

fn select(
    project: &Project,
    selector: &Selector,
    parents: &BTreeMap<NodeId, BTreeSet<NodeId>>,
    tests: &[(NodeId, BTreeSet<NodeId>)],
) -> Result<BTreeSet<NodeId>> {
    let mut nodes: BTreeSet<NodeId> = BTreeSet::new();
    if selector.is_all() {
        nodes.extend(parents.keys().cloned());
    } else {
        let mut children: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
        for (node, node_parents) in parents {
            for parent in node_parents {
                children
                    .entry(parent.clone())
                    .or_default()
                    .insert(node.clone());
            }
        }
        for spec in &selector.0 {
            if project.model(&spec.name).is_none() {
                return Err(exit::usage(format!(
                    "--select {}: the project has no model of that name",
                    spec.name
                )));
            }
            let node = NodeId::Model(spec.name.clone());
            if spec.ancestors {
                nodes.extend(closure(&node, parents));
            }
            if spec.descendants {
                nodes.extend(closure(&node, &children));
            }
            nodes.insert(node);
        }
    }
    // dbt's eager indirect selection: a test runs when any node it tests does.
    for (test, depends_on) in tests {
        if depends_on.iter().any(|d| nodes.contains(d)) {
            nodes.insert(test.clone());
        }
    }
    Ok(nodes)
}

/// `selected` in an order where each node follows its parents; ties go
/// by node (sources, then models, then tests, each by name).
fn topological(
    parents: &BTreeMap<NodeId, BTreeSet<NodeId>>,
    selected: &BTreeSet<NodeId>,
) -> Result<Vec<NodeId>> {
    let mut waiting: BTreeMap<&NodeId, usize> =
        parents.iter().map(|(node, p)| (node, p.len())).collect();
    let mut children: BTreeMap<&NodeId, Vec<&NodeId>> = BTreeMap::new();
    for (node, node_parents) in parents {
        for parent in node_parents {
            children.entry(parent).or_default().push(node);
        }
    }
    let mut ready: BTreeSet<&NodeId> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(node, _)| *node)
        .collect();
    let mut order = Vec::new();
    while let Some(node) = ready.pop_first() {
        if selected.contains(node) {
            order.push(node.clone());
        }
        for child in children.get(node).into_iter().flatten() {
            let count = waiting.get_mut(child).expect("every node is counted");
            *count -= 1;
            if *count == 0 {
                ready.insert(child);
            }
        }
        waiting.remove(node);
    }
    if let Some((stuck, _)) = waiting.iter().find(|(_, n)| **n > 0) {
        return Err(exit::config(format!(
            "dbt project: a dependency cycle runs through {stuck}"
        )));
    }
    Ok(order)
}
