//! The in-process transport of an embedded client: requests go to a broker's handlers as
//! values, with no framing, encoding or copying; responses come back the same way.
//!
//! The client does not know the broker: it talks to a [`RequestHandler`], which
//! `crate::embedded` implements for it, so that neither module depends on the other.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::*;
use tokio::sync::{mpsc, oneshot};

use crate::protocol::{Reply, Request};

/// What an in-process connection hands its requests to: a broker in this process.
pub trait RequestHandler: Send + Sync + 'static {
    /// Answers one decoded request, as the broker would over a socket.
    fn handle(&self, request: Request) -> impl Future<Output = Reply> + Send;
}

/// One connection's requests, in order, each with the place its reply goes.
pub(crate) type RequestQueue = mpsc::UnboundedReceiver<(Request, oneshot::Sender<Reply>)>;

/// Serves a connection's queue with a handler of a type the client does not name.
trait Serve: Send + Sync {
    fn serve(&self, queue: RequestQueue) -> tokio::task::JoinHandle<()>;
}

struct Served<H> {
    handler: Arc<H>,
    runtime: tokio::runtime::Handle,
}

impl<H: RequestHandler> Serve for Served<H> {
    fn serve(&self, mut queue: RequestQueue) -> tokio::task::JoinHandle<()> {
        let handler = self.handler.clone();
        // Generic over the handler, so a request costs no boxing: only opening a connection
        // goes through the trait object.
        self.runtime.spawn(async move {
            while let Some((request, reply)) = queue.recv().await {
                let _ = reply.send(handler.handle(request).await);
            }
        })
    }
}

/// A request handler and the runtime its requests run on: what an in-process client keeps to
/// open connections.
#[derive(Clone)]
pub struct InProcess {
    served: Arc<dyn Serve>,
}

impl InProcess {
    /// Requests are handled by `handler` in tasks on `runtime` (the broker's, so that the broker
    /// works beside the client as it would in another process).
    pub fn new<H: RequestHandler>(handler: Arc<H>, runtime: tokio::runtime::Handle) -> InProcess {
        InProcess {
            served: Arc::new(Served { handler, runtime }),
        }
    }

    /// Starts the task that answers one connection's requests in order.
    pub(crate) fn serve(&self, queue: RequestQueue) -> tokio::task::JoinHandle<()> {
        self.served.serve(queue)
    }
}

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
