//! Loading the derived workflow state from the event log.

use super::state::{EventView, WorkflowState};
use crate::store::{EventLog, StoreError};

/// The workflow state of every event in the log.
pub fn load(log: &EventLog) -> Result<WorkflowState, StoreError> {
    let mut state = WorkflowState::default();
    for chain in log.chains()? {
        for stored in log.walk(&chain) {
            let stored = stored?;
            state.apply(EventView::from(&stored.event));
        }
    }
    Ok(state)
}
