//! The in-process transport of an embedded client: requests go to the broker's handlers as
//! values, with no framing, encoding or copying; responses come back the same way.

use kafka_protocol::messages::*;

/// A response type that can be taken out of a [`ResponseKind`].
pub trait FromResponseKind: Sized {
    /// The response, if `kind` holds one of this type.
    fn from_kind(kind: ResponseKind) -> Option<Self>;
}

macro_rules! from_response_kind {
    ($($variant:ident => $ty:ty,)*) => {
        $(
            impl FromResponseKind for $ty {
                fn from_kind(kind: ResponseKind) -> Option<Self> {
                    match kind {
                        ResponseKind::$variant(response) => Some(response),
                        _ => None,
                    }
                }
            }
        )*
    };
}

from_response_kind! { Produce => ProduceResponse, Fetch => FetchResponse, ListOffsets => ListOffsetsResponse, Metadata => MetadataResponse, OffsetCommit => OffsetCommitResponse, OffsetFetch => OffsetFetchResponse, FindCoordinator => FindCoordinatorResponse, JoinGroup => JoinGroupResponse, Heartbeat => HeartbeatResponse, LeaveGroup => LeaveGroupResponse, SyncGroup => SyncGroupResponse, DescribeGroups => DescribeGroupsResponse, ListGroups => ListGroupsResponse, SaslHandshake => SaslHandshakeResponse, ApiVersions => ApiVersionsResponse, CreateTopics => CreateTopicsResponse, DeleteTopics => DeleteTopicsResponse, DeleteRecords => DeleteRecordsResponse, InitProducerId => InitProducerIdResponse, OffsetForLeaderEpoch => OffsetForLeaderEpochResponse, AddPartitionsToTxn => AddPartitionsToTxnResponse, AddOffsetsToTxn => AddOffsetsToTxnResponse, EndTxn => EndTxnResponse, WriteTxnMarkers => WriteTxnMarkersResponse, TxnOffsetCommit => TxnOffsetCommitResponse, DescribeAcls => DescribeAclsResponse, CreateAcls => CreateAclsResponse, DeleteAcls => DeleteAclsResponse, DescribeConfigs => DescribeConfigsResponse, AlterConfigs => AlterConfigsResponse, AlterReplicaLogDirs => AlterReplicaLogDirsResponse, DescribeLogDirs => DescribeLogDirsResponse, SaslAuthenticate => SaslAuthenticateResponse, CreatePartitions => CreatePartitionsResponse, CreateDelegationToken => CreateDelegationTokenResponse, RenewDelegationToken => RenewDelegationTokenResponse, ExpireDelegationToken => ExpireDelegationTokenResponse, DescribeDelegationToken => DescribeDelegationTokenResponse, DeleteGroups => DeleteGroupsResponse, ElectLeaders => ElectLeadersResponse, IncrementalAlterConfigs => IncrementalAlterConfigsResponse, AlterPartitionReassignments => AlterPartitionReassignmentsResponse, ListPartitionReassignments => ListPartitionReassignmentsResponse, OffsetDelete => OffsetDeleteResponse, DescribeClientQuotas => DescribeClientQuotasResponse, AlterClientQuotas => AlterClientQuotasResponse, DescribeUserScramCredentials => DescribeUserScramCredentialsResponse, AlterUserScramCredentials => AlterUserScramCredentialsResponse, Vote => VoteResponse, BeginQuorumEpoch => BeginQuorumEpochResponse, EndQuorumEpoch => EndQuorumEpochResponse, DescribeQuorum => DescribeQuorumResponse, AlterPartition => AlterPartitionResponse, UpdateFeatures => UpdateFeaturesResponse, Envelope => EnvelopeResponse, FetchSnapshot => FetchSnapshotResponse, DescribeCluster => DescribeClusterResponse, DescribeProducers => DescribeProducersResponse, BrokerRegistration => BrokerRegistrationResponse, BrokerHeartbeat => BrokerHeartbeatResponse, UnregisterBroker => UnregisterBrokerResponse, DescribeTransactions => DescribeTransactionsResponse, ListTransactions => ListTransactionsResponse, AllocateProducerIds => AllocateProducerIdsResponse, ConsumerGroupHeartbeat => ConsumerGroupHeartbeatResponse, ConsumerGroupDescribe => ConsumerGroupDescribeResponse, ControllerRegistration => ControllerRegistrationResponse, GetTelemetrySubscriptions => GetTelemetrySubscriptionsResponse, PushTelemetry => PushTelemetryResponse, AssignReplicasToDirs => AssignReplicasToDirsResponse, ListConfigResources => ListConfigResourcesResponse, DescribeTopicPartitions => DescribeTopicPartitionsResponse, ShareGroupHeartbeat => ShareGroupHeartbeatResponse, ShareGroupDescribe => ShareGroupDescribeResponse, ShareFetch => ShareFetchResponse, ShareAcknowledge => ShareAcknowledgeResponse, AddRaftVoter => AddRaftVoterResponse, RemoveRaftVoter => RemoveRaftVoterResponse, UpdateRaftVoter => UpdateRaftVoterResponse, InitializeShareGroupState => InitializeShareGroupStateResponse, ReadShareGroupState => ReadShareGroupStateResponse, WriteShareGroupState => WriteShareGroupStateResponse, DeleteShareGroupState => DeleteShareGroupStateResponse, ReadShareGroupStateSummary => ReadShareGroupStateSummaryResponse, DescribeShareGroupOffsets => DescribeShareGroupOffsetsResponse, AlterShareGroupOffsets => AlterShareGroupOffsetsResponse, DeleteShareGroupOffsets => DeleteShareGroupOffsetsResponse,  }
