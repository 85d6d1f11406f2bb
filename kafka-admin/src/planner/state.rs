//! The planner's working state: partitions in scope as broker indices, per-broker loads, and
//! the placement and balancing steps that change them. Pure and deterministic, like its parent.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use super::{BrokerLoad, Change, Cluster, Planned, PlannerError, Report, Resolved};
use crate::plan::{Assignment, TopicPartition};

/// Runs the steps each change needs (see the module docs of `planner`).
pub(super) fn run(
    current: &Assignment,
    cluster: &Cluster,
    change: &Change,
    req: &Resolved<'_>,
) -> Result<Planned, PlannerError> {
    let mut st = State::new(current, cluster, req)?;
    let loads_before = (st.load.clone(), st.leads.clone());
    let rack_violations_before = st.parts.iter().filter(|p| st.violates(&p.replicas)).count();

    let lower_bound = match change {
        Change::Decommission(_) => {
            let bound = st.on_non_targets();
            st.evacuate();
            st.balance_leaders();
            bound
        }
        Change::Replace(_) => {
            let bound = st.on_non_targets();
            st.replace(&req.replace)?;
            bound
        }
        Change::Rebalance | Change::MoveTopics { .. } => {
            let bound = st.rebalance_bound();
            st.evacuate();
            st.fix_racks();
            st.balance_replicas();
            st.balance_leaders();
            bound
        }
    };
    Ok(st.finish(current, loads_before, rack_violations_before, lower_bound))
}

/// One partition in scope: replicas as broker indices into [`Brokers`].
struct Part<'a> {
    key: &'a TopicPartition,
    replicas: Vec<usize>,
    orig: Vec<usize>,
}

impl Part<'_> {
    fn set_changed(&self) -> bool {
        self.replicas.iter().any(|r| !self.orig.contains(r))
    }
}

/// Brokers by index: cluster brokers in id order, then brokers only seen in the assignment.
/// Index order is id order among targets, which makes "lower index" the deterministic tie-break.
struct Brokers {
    ids: Vec<i32>,
    rack: Vec<Option<usize>>,
    rack_names: Vec<String>,
    target: Vec<bool>,
    /// Distinct racks among target brokers: the most racks a partition can span.
    target_racks: usize,
}

struct State<'a> {
    b: Brokers,
    parts: Vec<Part<'a>>,
    load: Vec<usize>,
    leads: Vec<usize>,
    total_partitions: usize,
}

fn get(v: &[usize], i: usize) -> usize {
    v.get(i).copied().unwrap_or(0)
}

fn add(v: &mut [usize], i: usize, up: bool) {
    if let Some(x) = v.get_mut(i) {
        *x = if up { *x + 1 } else { x.saturating_sub(1) };
    }
}

impl<'a> State<'a> {
    fn new(
        current: &'a Assignment,
        cluster: &Cluster,
        req: &Resolved<'_>,
    ) -> Result<State<'a>, PlannerError> {
        let mut ids: Vec<i32> = cluster.brokers().into_iter().collect();
        let mut extra = BTreeSet::new();
        for ((topic, partition), replicas) in current.iter().filter(|(k, _)| req.in_scope(k)) {
            for &b in replicas {
                if cluster.contains(b) {
                    continue;
                }
                // A broker missing from the cluster may only appear where its replicas leave anyway.
                if req.removed.contains(&b) || req.topics.is_some() {
                    extra.insert(b);
                } else {
                    return Err(PlannerError::UnknownReplicaBroker {
                        topic: topic.clone(),
                        partition: *partition,
                        broker: b,
                    });
                }
            }
        }
        ids.extend(extra);
        let index: BTreeMap<i32, usize> = ids.iter().enumerate().map(|(i, b)| (*b, i)).collect();

        let mut rack_index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut rack = Vec::with_capacity(ids.len());
        for &b in &ids {
            rack.push(cluster.rack(b).map(|name| {
                let next = rack_index.len();
                *rack_index.entry(name).or_insert(next)
            }));
        }
        let mut rack_names = vec![String::new(); rack_index.len()];
        for (name, i) in &rack_index {
            if let Some(slot) = rack_names.get_mut(*i) {
                *slot = (*name).to_string();
            }
        }
        let target: Vec<bool> = ids.iter().map(|b| req.targets.contains(b)).collect();
        let target_racks = ids
            .iter()
            .zip(&rack)
            .filter(|(b, _)| req.targets.contains(b))
            .filter_map(|(_, r)| *r)
            .collect::<BTreeSet<usize>>()
            .len();
        let n_targets = target.iter().filter(|t| **t).count();

        let mut parts = Vec::new();
        let mut load = vec![0; ids.len()];
        let mut leads = vec![0; ids.len()];
        for (key, replicas) in current.iter().filter(|(k, _)| req.in_scope(k)) {
            let rs: Vec<usize> = replicas
                .iter()
                .filter_map(|b| index.get(b).copied())
                .collect();
            // Replace is one-for-one, so only the other changes need room for every replica.
            if req.replace.is_empty() && rs.len() > n_targets {
                return Err(PlannerError::NotEnoughBrokers {
                    topic: key.0.clone(),
                    partition: key.1,
                    replicas: rs.len(),
                    brokers: n_targets,
                });
            }
            for &r in &rs {
                add(&mut load, r, true);
            }
            if let Some(&l) = rs.first() {
                add(&mut leads, l, true);
            }
            parts.push(Part {
                key,
                orig: rs.clone(),
                replicas: rs,
            });
        }
        Ok(State {
            b: Brokers {
                ids,
                rack,
                rack_names,
                target,
                target_racks,
            },
            parts,
            load,
            leads,
            total_partitions: current.len(),
        })
    }

    fn rack_of(&self, b: usize) -> Option<usize> {
        self.b.rack.get(b).copied().flatten()
    }

    fn is_target(&self, b: usize) -> bool {
        self.b.target.get(b).copied().unwrap_or(false)
    }

    fn id(&self, b: usize) -> i32 {
        self.b.ids.get(b).copied().unwrap_or(-1)
    }

    fn targets(&self) -> Vec<usize> {
        (0..self.b.ids.len())
            .filter(|&b| self.is_target(b))
            .collect()
    }

    /// Racks a partition of `rf` replicas must span: all of them, or every rack there is.
    fn required_racks(&self, rf: usize) -> usize {
        rf.min(self.b.target_racks)
    }

    fn distinct_racks(&self, replicas: &[usize]) -> usize {
        replicas
            .iter()
            .filter_map(|&b| self.rack_of(b))
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn violates(&self, replicas: &[usize]) -> bool {
        self.distinct_racks(replicas) < self.required_racks(replicas.len())
    }

    /// Replicas other than the one in `slot` on `cand`'s rack. Replicas on brokers that are
    /// being emptied do not count: they are leaving, and their racks are free to reuse.
    fn rack_clash(&self, replicas: &[usize], slot: usize, cand: usize) -> usize {
        let Some(rack) = self.rack_of(cand) else {
            return 0;
        };
        replicas
            .iter()
            .enumerate()
            .filter(|&(i, &b)| i != slot && self.is_target(b) && self.rack_of(b) == Some(rack))
            .count()
    }

    /// The broker to put in `slot`: not already in the partition, fewest rack clashes, then
    /// least loaded, then lowest id.
    fn best_target(&self, replicas: &[usize], slot: usize) -> Option<usize> {
        self.targets()
            .into_iter()
            .filter(|c| !replicas.contains(c))
            .min_by_key(|&c| (self.rack_clash(replicas, slot, c), get(&self.load, c), c))
    }

    fn move_to(&mut self, p: usize, slot: usize, to: usize) -> Option<usize> {
        let part = self.parts.get_mut(p)?;
        let from = std::mem::replace(part.replicas.get_mut(slot)?, to);
        add(&mut self.load, from, false);
        add(&mut self.load, to, true);
        if slot == 0 {
            add(&mut self.leads, from, false);
            add(&mut self.leads, to, true);
        }
        Some(from)
    }

    fn on_non_targets(&self) -> usize {
        (0..self.b.ids.len())
            .filter(|&b| !self.is_target(b))
            .map(|b| get(&self.load, b))
            .sum()
    }

    fn ideal(&self, total: usize) -> (usize, usize) {
        let n = self.targets().len().max(1);
        (total / n, total.div_ceil(n))
    }

    fn total_replicas(&self) -> usize {
        self.parts.iter().map(|p| p.replicas.len()).sum()
    }

    /// Each move takes one replica off one broker and puts it on another, so no plan can do
    /// with fewer moves than the replicas above the ideal, nor than those missing below it; and
    /// each partition spanning too few racks needs one move per missing rack.
    fn rebalance_bound(&self) -> usize {
        let (lo, hi) = self.ideal(self.total_replicas());
        let (mut excess, mut deficit) = (0, 0);
        for b in 0..self.b.ids.len() {
            let c = get(&self.load, b);
            if self.is_target(b) {
                excess += c.saturating_sub(hi);
                deficit += lo.saturating_sub(c);
            } else {
                excess += c;
            }
        }
        let racks: usize = self
            .parts
            .iter()
            .map(|p| {
                self.required_racks(p.replicas.len())
                    .saturating_sub(self.distinct_racks(&p.replicas))
            })
            .sum();
        excess.max(deficit).max(racks)
    }

    /// Moves every replica on a non-target broker to the best target.
    fn evacuate(&mut self) {
        for p in 0..self.parts.len() {
            let Some(rf) = self.parts.get(p).map(|x| x.replicas.len()) else {
                continue;
            };
            for slot in 0..rf {
                let Some(part) = self.parts.get(p) else { break };
                let Some(&b) = part.replicas.get(slot) else {
                    break;
                };
                if self.is_target(b) {
                    continue;
                }
                // State::new checked that every partition fits on the targets.
                if let Some(to) = self.best_target(&part.replicas, slot) {
                    self.move_to(p, slot, to);
                }
            }
        }
    }

    fn replace(&mut self, map: &BTreeMap<i32, i32>) -> Result<(), PlannerError> {
        let index: BTreeMap<i32, usize> = self
            .b
            .ids
            .iter()
            .enumerate()
            .map(|(i, b)| (*b, i))
            .collect();
        let map: BTreeMap<usize, usize> = map
            .iter()
            .filter_map(|(o, n)| Some((*index.get(o)?, *index.get(n)?)))
            .collect();
        for p in 0..self.parts.len() {
            let Some(part) = self.parts.get(p) else { break };
            let swaps: Vec<(usize, usize)> = part
                .replicas
                .iter()
                .enumerate()
                .filter_map(|(slot, b)| Some((slot, *map.get(b)?)))
                .collect();
            for &(slot, new) in &swaps {
                if let Some(part) = self.parts.get(p) {
                    if part.replicas.contains(&new) {
                        let old = part.replicas.get(slot).copied().unwrap_or(0);
                        return Err(PlannerError::ReplacementHeld {
                            topic: part.key.0.clone(),
                            partition: part.key.1,
                            old: self.id(old),
                            new: self.id(new),
                        });
                    }
                }
                self.move_to(p, slot, new);
            }
        }
        Ok(())
    }

    /// Moves replicas that share a rack with another replica of their partition to a broker on
    /// a rack the partition lacks (the later replica moves, so the preferred leader stays).
    fn fix_racks(&mut self) {
        for p in 0..self.parts.len() {
            while let Some(part) = self.parts.get(p) {
                if !self.violates(&part.replicas) {
                    break;
                }
                let fix = (0..part.replicas.len()).rev().find_map(|slot| {
                    let b = *part.replicas.get(slot)?;
                    if self.rack_clash(&part.replicas, slot, b) == 0 {
                        return None;
                    }
                    let to = self.best_target(&part.replicas, slot)?;
                    (self.rack_clash(&part.replicas, slot, to) == 0).then_some((slot, to))
                });
                match fix {
                    Some((slot, to)) => {
                        self.move_to(p, slot, to);
                    }
                    None => break,
                }
            }
        }
    }

    /// A move that leaves the partition spanning fewer racks than it did, or than it must, is
    /// not allowed.
    fn rack_ok(&self, replicas: &[usize], slot: usize, to: usize) -> bool {
        let required = self.required_racks(replicas.len());
        if required == 0 {
            return true;
        }
        let before = self.distinct_racks(replicas);
        let mut after = replicas.to_vec();
        if let Some(s) = after.get_mut(slot) {
            *s = to;
        }
        self.distinct_racks(&after) >= before.min(required)
    }

    /// A replica of a partition on `from` that can go to `to`: a follower first (moving the
    /// preferred leader also moves leadership). Returns which list (0 followers, 1 leaders) and
    /// where in it, so the caller removes it in O(1).
    fn movable(&self, on: &[[Vec<usize>; 2]], from: usize, to: usize) -> Option<(usize, usize)> {
        let lists = on.get(from)?;
        for (which, list) in lists.iter().enumerate() {
            for (at, &p) in list.iter().enumerate().rev() {
                let Some(part) = self.parts.get(p) else {
                    continue;
                };
                if part.replicas.contains(&to) {
                    continue;
                }
                let Some(slot) = part.replicas.iter().position(|&b| b == from) else {
                    continue;
                };
                if self.rack_ok(&part.replicas, slot, to) {
                    return Some((which, at));
                }
            }
        }
        None
    }

    /// Moves one replica at a time from the fullest target broker to the emptiest while they
    /// differ by two or more (see the module docs for why this meets the bound). Brokers are
    /// kept ordered by load, and each broker's partitions split into the ones it follows and
    /// the ones it leads (this loop never reorders a list), so each move costs a few lookups
    /// rather than a sort and a scan.
    fn balance_replicas(&mut self) {
        let mut on: Vec<[Vec<usize>; 2]> = vec![[Vec::new(), Vec::new()]; self.b.ids.len()];
        for (p, part) in self.parts.iter().enumerate() {
            for (slot, &b) in part.replicas.iter().enumerate() {
                if let Some([follows, leads]) = on.get_mut(b) {
                    if slot == 0 { leads } else { follows }.push(p);
                }
            }
        }
        // Fullest first, lower id first among equals; and emptiest first, lower id first.
        let mut donors: BTreeSet<(usize, Reverse<usize>)> = BTreeSet::new();
        let mut receivers: BTreeSet<(usize, usize)> = BTreeSet::new();
        for b in self.targets() {
            donors.insert((get(&self.load, b), Reverse(b)));
            receivers.insert((get(&self.load, b), b));
        }
        loop {
            let mut found = None;
            'search: for &(dl, Reverse(d)) in donors.iter().rev() {
                for &(rl, r) in &receivers {
                    if dl < rl + 2 {
                        break;
                    }
                    if let Some((which, at)) = self.movable(&on, d, r) {
                        found = Some((d, r, which, at));
                        break 'search;
                    }
                }
            }
            let Some((d, r, which, at)) = found else {
                break;
            };
            let Some(p) = on
                .get_mut(d)
                .and_then(|l| l.get_mut(which))
                .map(|l| l.swap_remove(at))
            else {
                break;
            };
            let Some(slot) = self
                .parts
                .get(p)
                .and_then(|x| x.replicas.iter().position(|&b| b == d))
            else {
                break;
            };
            for (b, l) in [(d, get(&self.load, d)), (r, get(&self.load, r))] {
                donors.remove(&(l, Reverse(b)));
                receivers.remove(&(l, b));
            }
            self.move_to(p, slot, r);
            for b in [d, r] {
                donors.insert((get(&self.load, b), Reverse(b)));
                receivers.insert((get(&self.load, b), b));
            }
            if let Some(l) = on.get_mut(r).and_then(|l| l.get_mut(which)) {
                l.push(p);
            }
        }
    }

    /// Swaps a partition's preferred leader with one of its other replicas while that evens
    /// leader counts by two or more; partitions already in the plan are reordered first so the
    /// plan touches as few extra partitions as it can.
    fn balance_leaders(&mut self) {
        let mut order: Vec<usize> = (0..self.parts.len())
            .filter(|&p| self.parts.get(p).is_some_and(|x| x.replicas != x.orig))
            .collect();
        order.extend(
            (0..self.parts.len())
                .filter(|&p| self.parts.get(p).is_some_and(|x| x.replicas == x.orig)),
        );
        loop {
            let mut swapped = false;
            for &p in &order {
                swapped |= self.swap_leader(p);
            }
            if !swapped {
                break;
            }
        }
    }

    fn swap_leader(&mut self, p: usize) -> bool {
        let Some(part) = self.parts.get(p) else {
            return false;
        };
        let Some(&leader) = part.replicas.first() else {
            return false;
        };
        let have = get(&self.leads, leader);
        let best = part
            .replicas
            .iter()
            .enumerate()
            .skip(1)
            .filter(|&(_, &b)| self.is_target(b) && get(&self.leads, b) + 2 <= have)
            .min_by_key(|&(_, &b)| (get(&self.leads, b), b))
            .map(|(slot, &b)| (slot, b));
        let Some((slot, b)) = best else {
            return false;
        };
        if let Some(part) = self.parts.get_mut(p) {
            part.replicas.swap(0, slot);
        }
        add(&mut self.leads, leader, false);
        add(&mut self.leads, b, true);
        true
    }

    fn finish(
        self,
        current: &Assignment,
        (load_before, leads_before): (Vec<usize>, Vec<usize>),
        rack_violations_before: usize,
        lower_bound: usize,
    ) -> Planned {
        let mut target = current.clone();
        let mut changes = Assignment::new();
        let mut rollback = Assignment::new();
        let (mut replica_moves, mut leader_changes) = (0, 0);
        let mut rack_violations = Vec::new();
        for part in &self.parts {
            if part.replicas == part.orig {
                continue;
            }
            let ids: Vec<i32> = part.replicas.iter().map(|&b| self.id(b)).collect();
            replica_moves += part
                .replicas
                .iter()
                .filter(|b| !part.orig.contains(b))
                .count();
            if part.replicas.first() != part.orig.first() {
                leader_changes += 1;
            }
            // Only spreads this plan made narrower: a partition that already shared a rack and
            // still spans as many racks is not the plan's doing (it is in the "before" count).
            let floor = self
                .distinct_racks(&part.orig)
                .min(self.required_racks(part.replicas.len()));
            if part.set_changed() && self.distinct_racks(&part.replicas) < floor {
                rack_violations.push((part.key.clone(), ids.clone()));
            }
            if let Some(now) = current.get(part.key) {
                rollback.insert(part.key.clone(), now.clone());
            }
            target.insert(part.key.clone(), ids.clone());
            changes.insert(part.key.clone(), ids);
        }
        let range = |v: &[usize]| {
            let t = self.targets();
            let min = t.iter().map(|&b| get(v, b)).min().unwrap_or(0);
            let max = t.iter().map(|&b| get(v, b)).max().unwrap_or(0);
            (min, max)
        };
        let brokers = (0..self.b.ids.len())
            .map(|b| BrokerLoad {
                broker: self.id(b),
                rack: self
                    .rack_of(b)
                    .and_then(|r| self.b.rack_names.get(r).cloned()),
                target: self.is_target(b),
                replicas_before: get(&load_before, b),
                replicas_after: get(&self.load, b),
                leaders_before: get(&leads_before, b),
                leaders_after: get(&self.leads, b),
            })
            .collect();
        let report = Report {
            partitions: self.total_partitions,
            scope_partitions: self.parts.len(),
            partitions_changed: changes.len(),
            replica_moves,
            lower_bound,
            leader_changes,
            replicas_ideal: self.ideal(self.total_replicas()),
            leaders_ideal: self.ideal(self.parts.len()),
            replicas_range: range(&self.load),
            leaders_range: range(&self.leads),
            brokers,
            rack_violations_before,
            rack_violations,
        };
        Planned {
            target,
            changes,
            rollback,
            report,
        }
    }
}
