//! What every actor shares: configuration lookups, the directory, the event
//! hub, the store, and (in a cluster) the bus.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use switchboard_proto::ServerFrame;

use crate::admission::Admission;
use crate::catalog::Catalog;
use crate::cluster::bus::Bus;
use crate::cluster::directory::Directory;
use crate::cluster::hub::{Hub, Published, Topic};
use crate::cluster::store::Store;
use crate::events::feed::EventSignal;
use crate::storage::Database;

pub struct EngineContext {
    pub catalog: Catalog,
    pub directory: Directory,
    pub hub: Arc<Hub>,
    pub store: Arc<dyn Store>,
    /// The system of record: search, export, records of any state.
    pub database: Database,
    pub bus: Option<Arc<Bus>>,
    /// Raised when this node created or deleted a webhook: delivery looks
    /// at the list again at once (other nodes do within a second).
    pub webhooks_changed: EventSignal,
    /// What an operator should know, found at start (a Redis without
    /// persistence): logged, and listed by `/readyz`.
    pub warnings: Vec<String>,
    /// Sheds work when the node is past its capacity.
    pub admission: Arc<Admission>,
    /// Set when the node drains: it stops renewing its heartbeat.
    resigned: AtomicBool,
    /// Set while an embedded node starts its actors again from its
    /// database: queues offer nothing until every conversation runs.
    resuming: AtomicBool,
}

impl EngineContext {
    pub fn new(
        catalog: Catalog,
        directory: Directory,
        store: Arc<dyn Store>,
        database: Database,
        bus: Option<Arc<Bus>>,
    ) -> Self {
        let admission = Admission::new(catalog.config.overload);
        for arbiter in directory.arbiters() {
            arbiter.spawn(Admission::probe(Arc::downgrade(&admission)));
        }
        Self {
            admission,
            catalog,
            directory,
            hub: Arc::new(Hub::default()),
            store,
            database,
            bus,
            webhooks_changed: EventSignal::default(),
            warnings: Vec::new(),
            resigned: AtomicBool::new(false),
            resuming: AtomicBool::new(false),
        }
    }

    pub fn publish(&self, topic: Topic, frame: ServerFrame) {
        self.hub.publish(&topic, Published::new(frame));
    }

    /// May this node's actors act (and write)? Always in one process; in a
    /// cluster, while the node's lease holds.
    pub fn lease_valid(&self) -> bool {
        self.bus
            .as_ref()
            .is_none_or(|bus| bus.placement().lease_valid())
    }

    pub fn resign(&self) {
        self.resigned.store(true, Ordering::Release);
    }

    pub fn set_resuming(&self, resuming: bool) {
        self.resuming.store(resuming, Ordering::Release);
    }

    pub fn is_resuming(&self) -> bool {
        self.resuming.load(Ordering::Acquire)
    }

    pub fn is_resigned(&self) -> bool {
        self.resigned.load(Ordering::Acquire)
    }
}
