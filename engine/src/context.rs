//! What every actor shares: configuration lookups, the directory, the event
//! hub and the store.

use std::sync::Arc;
use switchboard_proto::ServerFrame;

use crate::catalog::Catalog;
use crate::cluster::directory::Directory;
use crate::cluster::hub::{Hub, Topic};
use crate::cluster::store::Store;

pub struct EngineContext {
    pub catalog: Catalog,
    pub directory: Directory,
    pub hub: Arc<Hub>,
    pub store: Arc<dyn Store>,
}

impl EngineContext {
    pub fn publish(&self, topic: Topic, frame: ServerFrame) {
        self.hub.publish(&topic, Arc::new(frame));
    }
}
