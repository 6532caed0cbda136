//! Groups with a protocol of their own (as Kafka Connect's workers use): the leader assigns
//! what the members share, heartbeats announce rebalances, a member that leaves hands its
//! share back at once.

use std::time::Duration;

use bytes::Bytes;
use sluice_log::client::membership::{GroupMemberMetadata, GroupMembership, MembershipConfig};

use super::fixtures::TestBroker;

fn config() -> MembershipConfig {
    MembershipConfig {
        group_id: "workers".into(),
        protocol_type: "connect".into(),
        session_timeout: Duration::from_secs(6),
        rebalance_timeout: Duration::from_secs(10),
        heartbeat_interval: Duration::from_millis(100),
    }
}

/// Each member gets `i/n <its own metadata>`.
fn number_members(
    _protocol: &str,
    members: &[GroupMemberMetadata],
) -> sluice_log::Result<Vec<(String, Bytes)>> {
    Ok(members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let text = format!(
                "{i}/{} {}",
                members.len(),
                String::from_utf8_lossy(&m.metadata)
            );
            (m.member_id.clone(), Bytes::from(text))
        })
        .collect())
}

fn protocols(metadata: &'static str) -> Vec<(String, Bytes)> {
    vec![(
        "sluice-1".to_string(),
        Bytes::from_static(metadata.as_bytes()),
    )]
}

#[test]
fn members_share_what_their_leader_assigns_and_rebalance_on_join_and_leave() {
    let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let scenario = async {
        let client = broker.embedded_client().await;
        let mut a = GroupMembership::new(&client, config()).await.unwrap();
        let joined = a.join(&protocols("a"), number_members).await.unwrap();
        assert_eq!(joined.leader_id, joined.member_id);
        assert_eq!(joined.protocol, "sluice-1");
        assert_eq!(joined.assignment, Bytes::from_static(b"0/1 a"));
        assert!(!a.rebalance_needed());

        // B's join holds until A, told by its heartbeat, rejoins too.
        let other = client.sibling().await.unwrap();
        let b_joins = tokio::spawn(async move {
            let mut b = GroupMembership::new(&other, config()).await.unwrap();
            let joined = b.join(&protocols("b"), number_members).await.unwrap();
            (b, joined)
        });
        a.wait_for_rebalance().await;
        let a_joined = a.join(&protocols("a"), number_members).await.unwrap();
        let (b, b_joined) = b_joins.await.unwrap();
        assert_eq!(a_joined.generation, b_joined.generation);
        assert_eq!(a_joined.leader_id, b_joined.leader_id);
        let mut shares = [
            String::from_utf8_lossy(&a_joined.assignment).to_string(),
            String::from_utf8_lossy(&b_joined.assignment).to_string(),
        ];
        assert!(
            shares[0].ends_with(" a") && shares[1].ends_with(" b"),
            "{shares:?}"
        );
        shares.sort();
        assert!(
            shares[0].starts_with("0/2") && shares[1].starts_with("1/2"),
            "{shares:?}"
        );

        // B leaves: A hears of it at its next heartbeat, not after B's session timeout.
        b.leave().await.unwrap();
        a.wait_for_rebalance().await;
        let alone = a.join(&protocols("a"), number_members).await.unwrap();
        assert_eq!(alone.assignment, Bytes::from_static(b"0/1 a"));
        assert!(alone.generation > a_joined.generation);

        // A member may ask for a rebalance itself (a leader whose shared work changed).
        a.request_rebalance();
        assert!(a.rebalance_needed());
        let again = a.join(&protocols("a"), number_members).await.unwrap();
        assert!(again.generation > alone.generation);
        a.leave().await.unwrap();
    };
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), scenario).await })
        .expect("the scenario finishes within 60 s");
}
