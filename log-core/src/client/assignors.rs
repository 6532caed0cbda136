//! The client-side partition assignors of the classic group protocol (Kafka's
//! `partition.assignment.strategy`): the group leader runs the one the coordinator chose over
//! every member's subscription and hands each member its partitions in SyncGroup.
//!
//! - `range` and `roundrobin` (eager): Kafka's `RangeAssignor` and `RoundRobinAssignor`.
//! - `sticky` (eager) and `cooperative-sticky` (KIP-429): a balanced assignment that keeps as
//!   many partitions as it can where they were. With `cooperative-sticky` members keep their
//!   partitions through a rebalance; a partition that moves is first only taken from its owner
//!   (which revokes it and rejoins at once), and given to its new member in the follow-up
//!   rebalance, so that no partition is ever owned twice.
//!
//! Members tell the leader what they own in the subscription metadata (consumer protocol v1
//! `owned_partitions`, v2 `generation_id`), as the Java client and librdkafka do.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{ConsumerProtocolSubscription, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::error::{Error, Result};
use crate::model::TopicPartition;

/// An assignment: member id → topic → partitions (ascending).
pub type Assignment = BTreeMap<String, BTreeMap<String, Vec<i32>>>;

/// `partition.assignment.strategy`: the assignors a member offers, in order of preference (the
/// coordinator picks the first every member supports; the leader runs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// `range` (Kafka's RangeAssignor).
    Range,
    /// `roundrobin` (Kafka's RoundRobinAssignor).
    RoundRobin,
    /// `sticky` (Kafka's StickyAssignor): balanced, keeps partitions where they were; eager.
    Sticky,
    /// `cooperative-sticky` (Kafka's CooperativeStickyAssignor): sticky, with incremental
    /// rebalancing: only partitions that move are revoked.
    CooperativeSticky,
    /// `cooperative-sticky-copartitioned`: cooperative-sticky over partition *numbers*: a
    /// member gets partition `p` of every topic it reads or of none, so co-partitioned topics
    /// (a stream and the table it joins, an input and its repartition topic) meet in one
    /// member. For applications whose instances share one topology (Sluice Streams'
    /// `KafkaStreams` uses it, in the spirit of Kafka Streams' own assignor).
    CooperativeStickyCopartitioned,
}

impl Assignor {
    /// The protocol name in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::Sticky => "sticky",
            Assignor::CooperativeSticky => "cooperative-sticky",
            Assignor::CooperativeStickyCopartitioned => "cooperative-sticky-copartitioned",
        }
    }

    /// By protocol name (also Java's class names).
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name.trim() {
            "range" | "org.apache.kafka.clients.consumer.RangeAssignor" => Some(Assignor::Range),
            "roundrobin" | "org.apache.kafka.clients.consumer.RoundRobinAssignor" => {
                Some(Assignor::RoundRobin)
            }
            "sticky" | "org.apache.kafka.clients.consumer.StickyAssignor" => Some(Assignor::Sticky),
            "cooperative-sticky"
            | "org.apache.kafka.clients.consumer.CooperativeStickyAssignor" => {
                Some(Assignor::CooperativeSticky)
            }
            "cooperative-sticky-copartitioned" => Some(Assignor::CooperativeStickyCopartitioned),
            _ => None,
        }
    }

    /// Whether members keep their partitions through a rebalance (KIP-429's COOPERATIVE
    /// protocol) instead of revoking them all before rejoining (EAGER).
    pub fn is_cooperative(self) -> bool {
        matches!(
            self,
            Assignor::CooperativeSticky | Assignor::CooperativeStickyCopartitioned
        )
    }

    /// Whether the assignor reads what members own (their subscription says it).
    fn is_sticky(self) -> bool {
        !matches!(self, Assignor::Range | Assignor::RoundRobin)
    }

    /// Runs the assignor.
    pub fn assign(
        self,
        members: &[MemberSubscription],
        partition_counts: &BTreeMap<String, i32>,
    ) -> Assignment {
        let subscriptions: Vec<(String, Vec<String>)> = members
            .iter()
            .map(|m| (m.member_id.clone(), m.topics.clone()))
            .collect();
        match self {
            Assignor::Range => range_assign(&subscriptions, partition_counts),
            Assignor::RoundRobin => roundrobin_assign(&subscriptions, partition_counts),
            Assignor::Sticky => sticky_assign(members, partition_counts),
            Assignor::CooperativeSticky => {
                withhold_moving_partitions(sticky_assign(members, partition_counts), members)
            }
            Assignor::CooperativeStickyCopartitioned => {
                copartitioned_assign(members, partition_counts)
            }
        }
    }
}

/// Cooperative-sticky over partition numbers: the units are `0..max(partitions)`, a member owns
/// unit `p` if it owns partition `p` of any topic, and each unit it gets stands for partition
/// `p` of every topic it reads that has one.
fn copartitioned_assign(
    members: &[MemberSubscription],
    partition_counts: &BTreeMap<String, i32>,
) -> Assignment {
    const UNITS: &str = "";
    let units = partition_counts.values().copied().max().unwrap_or(0);
    let as_units: Vec<MemberSubscription> = members
        .iter()
        .map(|m| {
            let mut owned: Vec<TopicPartition> = m
                .owned
                .iter()
                .map(|tp| TopicPartition::new(UNITS, tp.partition))
                .collect();
            owned.sort();
            owned.dedup();
            MemberSubscription {
                member_id: m.member_id.clone(),
                topics: vec![UNITS.to_string()],
                owned,
                generation: m.generation,
                user_data: None,
            }
        })
        .collect();
    let counts = BTreeMap::from([(UNITS.to_string(), units)]);
    let by_unit = withhold_moving_partitions(sticky_assign(&as_units, &counts), &as_units);
    members
        .iter()
        .map(|m| {
            let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            let unit_partitions = by_unit
                .get(&m.member_id)
                .and_then(|t| t.get(UNITS))
                .cloned()
                .unwrap_or_default();
            for topic in &m.topics {
                let Some(&count) = partition_counts.get(topic) else {
                    continue;
                };
                let partitions: Vec<i32> = unit_partitions
                    .iter()
                    .copied()
                    .filter(|p| *p < count)
                    .collect();
                if !partitions.is_empty() {
                    topics.insert(topic.clone(), partitions);
                }
            }
            (m.member_id.clone(), topics)
        })
        .collect()
}

/// One member's subscription, as the leader reads it from JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSubscription {
    /// The member id.
    pub member_id: String,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Partitions the member owns (consumer protocol v1+), or owned last (eager sticky).
    pub owned: Vec<TopicPartition>,
    /// The generation those partitions were assigned in (v2+), -1 when unknown.
    pub generation: i32,
    /// The subscription's user data (the assignor's business; Sluice Streams asks the group to
    /// shut down with it).
    pub user_data: Option<Bytes>,
}

/// The user data of a subscription that asks the group to shut down, and of the assignments
/// that tell every member to (Sluice's form of Kafka Streams' `SHUTDOWN_APPLICATION`).
pub const SHUTDOWN_REQUESTED: &[u8] = b"sluice:shutdown-requested";

/// The subscription metadata a member sends in JoinGroup for `assignor`: consumer protocol v0
/// (topics) for range and roundrobin, v2 (topics, owned partitions, generation) for the sticky
/// assignors.
pub fn subscription_metadata(
    assignor: Assignor,
    topics: &[String],
    owned: &[TopicPartition],
    generation: i32,
    user_data: Option<Bytes>,
) -> Result<Bytes> {
    let mut subscription = ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_user_data(user_data);
    let version = if assignor.is_sticky() {
        subscription = subscription
            .with_owned_partitions(group_by_topic(owned))
            .with_generation_id(generation);
        2
    } else {
        0
    };
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    subscription
        .encode(&mut buf, version)
        .map_err(|e| Error::Protocol(format!("encode subscription: {e}")))?;
    Ok(buf.freeze())
}

fn group_by_topic(partitions: &[TopicPartition]) -> Vec<OwnedTopic> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    by_topic
        .into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort_unstable();
            OwnedTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions)
        })
        .collect()
}

/// Reads a member's subscription metadata (any consumer protocol version; a version above the
/// ones known is read as the highest known, as Kafka's forward-compatibility rule allows).
/// Unreadable metadata is an empty subscription.
pub fn decode_subscription(member_id: &str, metadata: &Bytes) -> MemberSubscription {
    let mut member = MemberSubscription {
        member_id: member_id.to_string(),
        generation: -1,
        ..MemberSubscription::default()
    };
    if metadata.len() < 2 {
        return member;
    }
    let mut buf = metadata.slice(2..);
    let version = i16::from_be_bytes([metadata[0], metadata[1]]).clamp(0, 3);
    if let Ok(subscription) = ConsumerProtocolSubscription::decode(&mut buf, version) {
        member.topics = subscription.topics.iter().map(|t| t.to_string()).collect();
        member.owned = subscription
            .owned_partitions
            .iter()
            .flat_map(|owned| {
                let topic: Arc<str> = owned.topic.0.as_str().into();
                owned
                    .partitions
                    .iter()
                    .map(move |&partition| TopicPartition {
                        topic: topic.clone(),
                        partition,
                    })
            })
            .collect();
        member.user_data = subscription.user_data.clone();
        member.generation = if version >= 2 {
            subscription.generation_id
        } else {
            -1
        };
    }
    member
}

/// The range assignor (Kafka's `RangeAssignor`): per topic, members sorted by id get
/// consecutive ranges, the first `partitions % members` one partition more.
pub fn range_assign(
    members: &[(String, Vec<String>)],
    partition_counts: &BTreeMap<String, i32>,
) -> Assignment {
    let mut result: Assignment = members
        .iter()
        .map(|(id, _)| (id.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let mut subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(id, _)| id)
            .collect();
        subscribers.sort();
        if subscribers.is_empty() {
            continue;
        }
        let per_member = count / subscribers.len() as i32;
        let extra = count % subscribers.len() as i32;
        let mut next = 0;
        for (idx, member) in subscribers.iter().enumerate() {
            let n = per_member + i32::from((idx as i32) < extra);
            let partitions: Vec<i32> = (next..next + n).collect();
            next += n;
            if let Some(assigned) = result.get_mut(*member) {
                assigned.insert(topic.clone(), partitions);
            }
        }
    }
    result
}

/// The round-robin assignor (Kafka's `RoundRobinAssignor`): every partition of the subscribed
/// topics (topics sorted, partitions ascending) goes to the next member, in member id order,
/// that subscribes to its topic.
pub fn roundrobin_assign(
    members: &[(String, Vec<String>)],
    partition_counts: &BTreeMap<String, i32>,
) -> Assignment {
    let mut result: Assignment = members
        .iter()
        .map(|(id, _)| (id.clone(), BTreeMap::new()))
        .collect();
    let mut order: Vec<&(String, Vec<String>)> = members.iter().collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    if order.is_empty() {
        return result;
    }
    let mut next = 0;
    for (topic, &count) in partition_counts {
        if !order.iter().any(|(_, topics)| topics.contains(topic)) {
            continue;
        }
        for partition in 0..count {
            // The next member in the cycle that subscribes to this topic.
            while !order[next % order.len()].1.contains(topic) {
                next += 1;
            }
            let member = &order[next % order.len()].0;
            next += 1;
            if let Some(assigned) = result.get_mut(member) {
                assigned.entry(topic.clone()).or_default().push(partition);
            }
        }
    }
    result
}

/// The sticky assignment: every partition of a subscribed topic goes to a member subscribed to
/// it; partitions stay with the member that owned them where balance allows; no member has
/// two partitions more than another member that could take one of them.
///
/// 1. Each partition that still exists stays with the member that owns it and still
///    subscribes to its topic; when members disagree, the newest generation's claim wins (a
///    member that missed a rebalance claims what it used to own), then the lowest member id.
/// 2. Partitions left over go, in order, to the subscribed member with the fewest partitions.
/// 3. While a member has two partitions more than another member subscribed to one of them,
///    that partition moves (the most loaded member gives first: partitions handed to it in
///    step 2, then those it won in a dispute, then its own, highest first).
pub fn sticky_assign(
    members: &[MemberSubscription],
    partition_counts: &BTreeMap<String, i32>,
) -> Assignment {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let subscribes =
        |member: &MemberSubscription, topic: &str| member.topics.iter().any(|t| t == topic);
    let exists = |topic: &str, partition: i32| {
        partition_counts
            .get(topic)
            .is_some_and(|&n| (0..n).contains(&partition))
    };

    // 1. Claims, newest generation first, then member id.
    let mut owner: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    let mut by_claim: Vec<usize> = (0..sorted.len()).collect();
    by_claim.sort_by(|&a, &b| {
        sorted[b]
            .generation
            .cmp(&sorted[a].generation)
            .then_with(|| sorted[a].member_id.cmp(&sorted[b].member_id))
    });
    // How much a member minds giving a partition up: least what it was handed just now, then
    // what it won in a dispute, most what only it claimed.
    let mut claim_count: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    for member in &sorted {
        for tp in member.owned.iter().collect::<BTreeSet<_>>() {
            *claim_count.entry(tp.clone()).or_default() += 1;
        }
    }
    for &idx in &by_claim {
        for tp in &sorted[idx].owned {
            if exists(&tp.topic, tp.partition) && subscribes(sorted[idx], &tp.topic) {
                owner.entry(tp.clone()).or_insert(idx);
            }
        }
    }
    let stickiness = |tp: &TopicPartition, idx: usize| -> u8 {
        if !sorted[idx].owned.contains(tp) {
            0
        } else if claim_count.get(tp).copied().unwrap_or(0) > 1 {
            1
        } else {
            2
        }
    };
    let mut held: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); sorted.len()];
    for (tp, &idx) in &owner {
        held[idx].insert(tp.clone());
    }

    // 2. The rest, to the least loaded subscriber.
    for (topic, &count) in partition_counts {
        let name: Arc<str> = topic.as_str().into();
        for partition in 0..count {
            let tp = TopicPartition {
                topic: name.clone(),
                partition,
            };
            if owner.contains_key(&tp) {
                continue;
            }
            let least = (0..sorted.len())
                .filter(|&idx| subscribes(sorted[idx], topic))
                .min_by_key(|&idx| (held[idx].len(), idx));
            if let Some(idx) = least {
                owner.insert(tp.clone(), idx);
                held[idx].insert(tp);
            }
        }
    }

    // 3. Balance. Each move takes one partition from a member to one with at least two fewer,
    // so the sum of squares of the counts falls and the loop ends.
    'balance: loop {
        let mut by_load: Vec<usize> = (0..sorted.len()).collect();
        by_load.sort_by_key(|&idx| (held[idx].len(), idx));
        for &from in by_load.iter().rev() {
            for &to in &by_load {
                if held[to].len() + 1 >= held[from].len() {
                    // The rest are at least as loaded: nobody can take from this member.
                    break;
                }
                let movable = held[from]
                    .iter()
                    .filter(|tp| subscribes(sorted[to], &tp.topic))
                    .min_by_key(|tp| (stickiness(tp, from), std::cmp::Reverse(*tp)))
                    .cloned();
                if let Some(tp) = movable {
                    held[from].remove(&tp);
                    held[to].insert(tp);
                    continue 'balance;
                }
            }
        }
        break;
    }

    let mut result: Assignment = BTreeMap::new();
    for (idx, member) in sorted.iter().enumerate() {
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for tp in &held[idx] {
            topics
                .entry(tp.topic.to_string())
                .or_default()
                .push(tp.partition);
        }
        result.insert(member.member_id.clone(), topics);
    }
    result
}

/// KIP-429's first round: a partition that moves to another member is taken from its owner now
/// and given to the new member only in the follow-up rebalance (the owner rejoins once it has
/// revoked it), so no partition is owned by two members at once. Any other member's claim
/// holds a partition back, even a disputed one: the claimant revokes it (its assignment lacks
/// it) and claims it no more when it rejoins.
fn withhold_moving_partitions(
    mut target: Assignment,
    members: &[MemberSubscription],
) -> Assignment {
    let mut claimants: BTreeMap<TopicPartition, BTreeSet<&str>> = BTreeMap::new();
    for member in members {
        for tp in &member.owned {
            claimants
                .entry(tp.clone())
                .or_default()
                .insert(&member.member_id);
        }
    }
    for (member_id, topics) in target.iter_mut() {
        for (topic, partitions) in topics.iter_mut() {
            let name: Arc<str> = topic.as_str().into();
            partitions.retain(|&partition| {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition,
                };
                claimants
                    .get(&tp)
                    .is_none_or(|ids| ids.iter().all(|id| id == member_id))
            });
        }
        topics.retain(|_, partitions| !partitions.is_empty());
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(
        id: &str,
        topics: &[&str],
        owned: &[TopicPartition],
        generation: i32,
    ) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned: owned.to_vec(),
            generation,
            user_data: None,
        }
    }

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    fn counts(topics: &[(&str, i32)]) -> BTreeMap<String, i32> {
        topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn flat(assignment: &Assignment, member: &str) -> Vec<TopicPartition> {
        assignment[member]
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |&p| tp(t, p)))
            .collect()
    }

    /// Every partition once, each to a subscriber, and no movable imbalance.
    fn assert_valid(
        assignment: &Assignment,
        members: &[MemberSubscription],
        counts: &BTreeMap<String, i32>,
    ) {
        let mut seen = BTreeSet::new();
        for member in members {
            for got in flat(assignment, &member.member_id) {
                assert!(
                    member.topics.iter().any(|t| **t == *got.topic),
                    "{} got {got} it does not read",
                    member.member_id
                );
                assert!(seen.insert(got), "assigned twice");
            }
        }
        let expected: usize = counts.values().map(|&n| n as usize).sum();
        assert_eq!(seen.len(), expected, "every partition assigned");
        for a in members {
            for b in members {
                let (na, nb) = (
                    flat(assignment, &a.member_id).len(),
                    flat(assignment, &b.member_id).len(),
                );
                if na > nb + 1 {
                    let movable = flat(assignment, &a.member_id)
                        .iter()
                        .any(|got| b.topics.iter().any(|t| **t == *got.topic));
                    assert!(
                        !movable,
                        "{} has {na}, {} has {nb} and could take one",
                        a.member_id, b.member_id
                    );
                }
            }
        }
    }

    #[test]
    fn a_new_group_is_balanced() {
        let members = vec![
            member("c", &["t"], &[], -1),
            member("a", &["t"], &[], -1),
            member("b", &["t"], &[], -1),
        ];
        let counts = counts(&[("t", 7)]);
        let assignment = sticky_assign(&members, &counts);
        assert_valid(&assignment, &members, &counts);
        let sizes: Vec<usize> = ["a", "b", "c"]
            .iter()
            .map(|m| flat(&assignment, m).len())
            .collect();
        assert_eq!(sizes, vec![3, 2, 2]);
    }

    #[test]
    fn a_joining_member_takes_only_what_balance_needs() {
        let owned_a: Vec<TopicPartition> = (0..3).map(|p| tp("t", p)).collect();
        let owned_b: Vec<TopicPartition> = (3..6).map(|p| tp("t", p)).collect();
        let members = vec![
            member("a", &["t"], &owned_a, 4),
            member("b", &["t"], &owned_b, 4),
            member("c", &["t"], &[], -1),
        ];
        let counts = counts(&[("t", 6)]);
        let assignment = sticky_assign(&members, &counts);
        assert_valid(&assignment, &members, &counts);
        let kept_a = flat(&assignment, "a")
            .iter()
            .filter(|got| got.partition < 3)
            .count();
        let kept_b = flat(&assignment, "b")
            .iter()
            .filter(|got| got.partition >= 3)
            .count();
        assert_eq!((kept_a, kept_b), (2, 2), "{assignment:?}");
        assert_eq!(flat(&assignment, "c").len(), 2);
    }

    #[test]
    fn a_leaving_members_partitions_spread_and_the_rest_stay() {
        let members = vec![
            member("a", &["t"], &[tp("t", 0), tp("t", 1)], 2),
            member("b", &["t"], &[tp("t", 2), tp("t", 3)], 2),
        ];
        // "c" owned 4 and 5 and left.
        let counts = counts(&[("t", 6)]);
        let assignment = sticky_assign(&members, &counts);
        assert_valid(&assignment, &members, &counts);
        assert!(flat(&assignment, "a").starts_with(&[tp("t", 0), tp("t", 1)]));
        assert!(flat(&assignment, "b").starts_with(&[tp("t", 2), tp("t", 3)]));
        assert_eq!(
            flat(&assignment, "a").len() + flat(&assignment, "b").len(),
            6
        );
    }

    #[test]
    fn unequal_subscriptions_are_respected_and_balanced_where_they_can_be() {
        let members = vec![
            member("a", &["t"], &[], -1),
            member("b", &["t", "u"], &[], -1),
            member("c", &["u"], &[tp("u", 0), tp("u", 1), tp("u", 2)], 1),
        ];
        let counts = counts(&[("t", 4), ("u", 3)]);
        let assignment = sticky_assign(&members, &counts);
        assert_valid(&assignment, &members, &counts);
        assert!(flat(&assignment, "a").iter().all(|got| &*got.topic == "t"));
    }

    #[test]
    fn the_newest_generation_wins_a_disputed_partition() {
        let members = vec![
            member("a", &["t"], &[tp("t", 0), tp("t", 1)], 3),
            member("b", &["t"], &[tp("t", 1)], 5),
        ];
        let counts = counts(&[("t", 2)]);
        let assignment = sticky_assign(&members, &counts);
        assert_eq!(flat(&assignment, "b"), vec![tp("t", 1)]);
        assert_eq!(flat(&assignment, "a"), vec![tp("t", 0)]);
        // Partitions of deleted topics, of unsubscribed topics and beyond the count are dropped.
        let members = vec![member(
            "a",
            &["t"],
            &[tp("gone", 0), tp("t", 9), tp("t", 0)],
            1,
        )];
        let assignment = sticky_assign(&members, &counts);
        assert_eq!(flat(&assignment, "a"), vec![tp("t", 0), tp("t", 1)]);
    }

    #[test]
    fn cooperative_first_round_withholds_partitions_that_move() {
        let owned_a: Vec<TopicPartition> = (0..6).map(|p| tp("t", p)).collect();
        let members = vec![
            member("a", &["t"], &owned_a, 1),
            member("b", &["t"], &[], -1),
        ];
        let counts = counts(&[("t", 6)]);
        let first = Assignor::CooperativeSticky.assign(&members, &counts);
        // a keeps three and gives three up; b gets nothing yet.
        assert_eq!(flat(&first, "a").len(), 3);
        assert!(flat(&first, "b").is_empty(), "{first:?}");
        // The follow-up round: a owns three, b nothing; b gets the other three.
        let members = vec![
            member("a", &["t"], &flat(&first, "a"), 2),
            member("b", &["t"], &[], -1),
        ];
        let second = Assignor::CooperativeSticky.assign(&members, &counts);
        assert_eq!(flat(&second, "a"), flat(&first, "a"));
        assert_eq!(flat(&second, "b").len(), 3);
        assert_valid(&second, &members, &counts);
    }

    #[test]
    fn subscriptions_round_trip_with_owned_partitions_for_the_sticky_assignors() {
        let topics = vec!["t".to_string(), "u".to_string()];
        let owned = vec![tp("u", 1), tp("t", 2), tp("t", 0)];
        let metadata =
            subscription_metadata(Assignor::CooperativeSticky, &topics, &owned, 7, None).unwrap();
        assert_eq!(i16::from_be_bytes([metadata[0], metadata[1]]), 2);
        let member = decode_subscription("m", &metadata);
        assert_eq!(member.topics, topics);
        assert_eq!(member.owned, vec![tp("t", 0), tp("t", 2), tp("u", 1)]);
        assert_eq!(member.generation, 7);
        // User data travels in every version (Sluice Streams' shutdown request rides on it).
        let asking = Some(Bytes::from_static(SHUTDOWN_REQUESTED));
        let metadata =
            subscription_metadata(Assignor::Range, &topics, &owned, 7, asking.clone()).unwrap();
        assert_eq!(decode_subscription("m", &metadata).user_data, asking);
        // range and roundrobin send version 0: topics only.
        let metadata = subscription_metadata(Assignor::Range, &topics, &owned, 7, None).unwrap();
        assert_eq!(i16::from_be_bytes([metadata[0], metadata[1]]), 0);
        let member = decode_subscription("m", &metadata);
        assert_eq!(
            (member.topics, member.owned, member.generation),
            (topics, vec![], -1)
        );
        // Garbage is an empty subscription, not an error.
        assert!(decode_subscription("m", &Bytes::from_static(&[0, 1, 255]))
            .topics
            .is_empty());
    }

    #[test]
    fn copartitioned_members_get_a_partition_number_of_every_topic_or_none() {
        let topics = ["lines", "app-words-repartition"];
        let both = counts(&[("lines", 4), ("app-words-repartition", 4)]);
        let owned_a: Vec<TopicPartition> = (0..4).flat_map(|p| topics.map(|t| tp(t, p))).collect();
        let members = vec![
            member("a", &topics, &owned_a, 3),
            member("b", &topics, &[], -1),
        ];
        let first = Assignor::CooperativeStickyCopartitioned.assign(&members, &both);
        // a keeps two partition numbers (of both topics), b gets nothing until a revokes.
        assert_eq!(first["a"]["lines"], first["a"]["app-words-repartition"]);
        assert_eq!(first["a"]["lines"].len(), 2);
        assert!(first["b"].is_empty(), "{first:?}");
        let kept = flat(&first, "a");
        let members = vec![
            member("a", &topics, &kept, 4),
            member("b", &topics, &[], -1),
        ];
        let second = Assignor::CooperativeStickyCopartitioned.assign(&members, &both);
        assert_eq!(second["a"], first["a"]);
        assert_eq!(second["b"]["lines"], second["b"]["app-words-repartition"]);
        let mut all: Vec<i32> = second.values().flat_map(|t| t["lines"].clone()).collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3]);
        // Topics with fewer partitions get only the numbers they have.
        let uneven = counts(&[("wide", 4), ("narrow", 2)]);
        let members = vec![member("a", &["wide", "narrow"], &[], -1)];
        let one = Assignor::CooperativeStickyCopartitioned.assign(&members, &uneven);
        assert_eq!(one["a"]["wide"], vec![0, 1, 2, 3]);
        assert_eq!(one["a"]["narrow"], vec![0, 1]);
    }

    #[test]
    fn names_are_kafkas() {
        for assignor in [
            Assignor::Range,
            Assignor::RoundRobin,
            Assignor::Sticky,
            Assignor::CooperativeSticky,
            Assignor::CooperativeStickyCopartitioned,
        ] {
            assert_eq!(Assignor::from_name(assignor.name()), Some(assignor));
        }
        assert_eq!(
            Assignor::from_name("org.apache.kafka.clients.consumer.CooperativeStickyAssignor"),
            Some(Assignor::CooperativeSticky)
        );
        assert_eq!(Assignor::from_name("fair"), None);
    }

    proptest::proptest! {
        /// Whatever members subscribe to and claim: each partition assigned once, to a
        /// subscriber; no movable imbalance; the cooperative first round never gives a member
        /// a partition another member claims.
        #[test]
        fn sticky_assignments_are_valid_balanced_and_sticky(
            n_members in 1usize..6,
            counts_in in proptest::collection::vec(1i32..8, 1..4),
            subscriptions in proptest::collection::vec(proptest::collection::vec(proptest::bool::ANY, 3), 6),
            claims in proptest::collection::vec((0usize..6, 0usize..3, 0i32..8, 0i32..4), 0..30),
        ) {
            let topics = ["t0", "t1", "t2"];
            let counts: BTreeMap<String, i32> = counts_in
                .iter()
                .enumerate()
                .map(|(idx, n)| (topics[idx].to_string(), *n))
                .collect();
            let mut members: Vec<MemberSubscription> = (0..n_members)
                .map(|idx| {
                    let subscribed: Vec<&str> = topics
                        .iter()
                        .zip(&subscriptions[idx])
                        .filter(|(_, on)| **on)
                        .map(|(t, _)| *t)
                        .collect();
                    member(&format!("m{idx}"), if subscribed.is_empty() { &topics[..1] } else { &subscribed }, &[], 1)
                })
                .collect();
            for (owner, topic, partition, generation) in claims {
                let member = &mut members[owner % n_members];
                member.owned.push(tp(topics[topic], partition));
                member.generation = member.generation.max(generation);
            }
            let assignment = sticky_assign(&members, &counts);
            // Only partitions of existing topics somebody reads must be assigned.
            let read: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
            let relevant: BTreeMap<String, i32> = counts.iter().filter(|(t, _)| read.contains(t)).map(|(t, n)| (t.clone(), *n)).collect();
            assert_valid(&assignment, &members, &relevant);
            let first_round = Assignor::CooperativeSticky.assign(&members, &counts);
            for m in &members {
                for got in flat(&first_round, &m.member_id) {
                    let owned_by_other = members.iter().any(|o| o.member_id != m.member_id && o.owned.contains(&got));
                    proptest::prop_assert!(!owned_by_other, "{} got {got} owned by another", m.member_id);
                }
            }
        }
    }

    proptest::proptest! {
        /// When every member reads every topic, a member keeps its undisputed claims up to the
        /// balanced share (`partitions / members`, rounded down).
        #[test]
        fn members_keep_their_claims_up_to_their_share(
            n_members in 1usize..6,
            n_partitions in 1i32..20,
            claims in proptest::collection::vec((0usize..6, 0i32..20), 0..40),
        ) {
            let mut members: Vec<MemberSubscription> = (0..n_members)
                .map(|idx| member(&format!("m{idx}"), &["t"], &[], 1))
                .collect();
            for (owner, partition) in &claims {
                members[owner % n_members].owned.push(tp("t", *partition));
            }
            let counts = counts(&[("t", n_partitions)]);
            let assignment = sticky_assign(&members, &counts);
            assert_valid(&assignment, &members, &counts);
            let share = (n_partitions as usize) / n_members;
            for m in &members {
                let undisputed: BTreeSet<TopicPartition> = m
                    .owned
                    .iter()
                    .filter(|owned| owned.partition < n_partitions)
                    .filter(|tp| members.iter().all(|o| o.member_id == m.member_id || !o.owned.contains(tp)))
                    .cloned()
                    .collect();
                let kept = flat(&assignment, &m.member_id).into_iter().filter(|tp| undisputed.contains(tp)).count();
                proptest::prop_assert!(kept >= undisputed.len().min(share), "{} kept {kept} of {undisputed:?} (share {share})", m.member_id);
            }
        }
    }
}
